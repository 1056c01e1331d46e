"""Loss against capability: does the metric a curve is fitted on tell the same story as
the one a user cares about?

Accuracy is the capability of a classifier. A regression model has no accuracy, so its
capability here is the fraction of tasks it solves to a stated MSE: the failure rate
``mse>τ``, the fraction of evaluation tasks whose query MSE exceeds τ (an error-like
metric in [0, 1], per episode 0 or 1, so it gets the same intervals, fits and plots as
the loss). Averages of the loss can fall while fewer tasks get solved (a few bad tasks
improving a lot) and the reverse, so both are fitted and compared step by step.

* ``add_failure_rate``: derives the ``mse>τ`` rows and per-episode values from the loss.
* ``agreement``: along every setting's test-time curve, each step from one k to the next
  as two paired differences (same seeds, same episodes), one per metric, classified as
  agreeing or not.
"""

from typing import Callable, Sequence

import numpy as np

from metalearn.scaling import intervals

Values = Callable[[str], tuple[np.ndarray, np.ndarray, np.ndarray]]


def failure_metric(threshold: float) -> str:
  """The name of the failure-rate metric at an MSE threshold."""
  return f"mse>{threshold:g}"


def add_failure_rate(rows: Sequence[dict], per_episode: dict[str, np.ndarray],
                     threshold: float, source: str = "loss"
                     ) -> tuple[list[dict], dict[str, np.ndarray]]:
  """Rows and per-episode values with ``mse>τ`` added, derived from ``source``.

  Args:
    rows: sweep rows (``sweep.collect``).
    per_episode: ``"{point}/{metric}" -> [episodes, P]``.
    threshold: τ > 0, in the units of ``source`` (query MSE).
    source: the per-episode MSE metric.

  Returns:
    New lists/dicts (inputs unchanged): each ``source`` row copied as ``mse>τ`` with its
    mean and 95% normal half-width over episodes, and each point's 0/1 values.
  """
  if not threshold > 0:
    raise ValueError(f"the MSE threshold must be > 0, got {threshold}")
  name = failure_metric(threshold)
  values = dict(per_episode)
  for key in [k for k in per_episode if k.endswith(f"/{source}")]:
    values[key[: -len(source)] + name] = (per_episode[key] > threshold).astype(np.float64)
  out = list(rows)
  for r in rows:
    if r["metric"] != source:
      continue
    v = values[f"{r['point']}/{name}"]
    ks = sorted(x["k"] for x in rows if x["point"] == r["point"] and x["metric"] == source)
    col = v[:, ks.index(r["k"])]
    out.append(dict(r, metric=name, mean=float(col.mean()),
                    ci95=float(1.96 * col.std(ddof=1) / np.sqrt(len(col)))))
  return out, values


def _verdict(iv: intervals.Interval) -> str:
  return "lower" if iv.hi < 0 else "higher" if iv.lo > 0 else "indistinguishable"


def agreement(groups: Sequence[dict], values_a: Values, values_b: Values,
              seeds: Callable[[str], Sequence[int]]) -> list[dict]:
  """Step-by-step agreement of two error-like metrics along every setting's k-curve.

  Args:
    groups: the sweep's settings (``analysis._groups``).
    values_a, values_b: ``values(group) -> (k [P], FLOPs [P], v [S, E, P])`` of each
      metric.
    seeds: the seed labels of a group's rows in ``v``.

  Returns:
    One dict per setting: ``steps`` (``k_from``, ``k_to`` and both metrics' paired
    differences and verdicts: 'lower', 'higher' or 'indistinguishable'), and counts:
    ``agree`` (same verdict), ``opposite`` (one significantly lower, the other
    significantly higher) and ``one_moves`` (one significant, the other not).
  """
  out = []
  for g in groups:
    ka, _, va = values_a(g["group"])
    kb, _, vb = values_b(g["group"])
    if not np.array_equal(ka, kb):
      raise ValueError(f"{g['group']}: the two metrics were scored at different k")
    s = list(seeds(g["group"]))
    steps = []
    for i in range(len(ka) - 1):
      da = intervals.paired_difference(va[:, :, i], va[:, :, i + 1], seeds_a=s, seeds_b=s)
      db = intervals.paired_difference(vb[:, :, i], vb[:, :, i + 1], seeds_a=s, seeds_b=s)
      steps.append(dict(k_from=int(ka[i]), k_to=int(ka[i + 1]),
                        a=dict(diff=float(da.mean), ci95=float(da.half_width),
                               verdict=_verdict(da)),
                        b=dict(diff=float(db.mean), ci95=float(db.half_width),
                               verdict=_verdict(db))))
    kinds = [_kind(st["a"]["verdict"], st["b"]["verdict"]) for st in steps]
    for st, kind in zip(steps, kinds):
      st["kind"] = kind
    out.append(dict(group=g["group"], steps=steps,
                    **{k: kinds.count(k) for k in ("agree", "opposite", "one_moves")}))
  return out


def _kind(a: str, b: str) -> str:
  if a == b:
    return "agree"
  if "indistinguishable" in (a, b):
    return "one_moves"
  return "opposite"
