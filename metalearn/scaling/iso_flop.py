"""Data or compute at equal FLOPs: the sweep's shots and tasks points against the base
model's inner steps and the K_train axis, as paired differences over whole curves.

Every comparison is a difference of means on the same evaluation episodes
(``intervals.contrast``: episodes paired, each point's training seeds independent), with
the base curve interpolated linearly in log FLOPs between its two measured neighbours;
the interpolated value is a combination of those two columns of per-episode values, so
its uncertainty enters the interval. A comparison is made only inside the measured
range, and each list says the range it covers.

* ``test_time``: for each shots point, at every test-time k >= 1 of its curve, its error
  against the base model's (base shots) at the same adaptation FLOPs per episode.
* ``meta_training``: for each shots or tasks point, its error against the K_train axis at
  the same meta-training FLOPs, at test-time k = K_train of each arm (as trained) and at
  every test-time k both arms measured (the same k on both sides).
"""

import math
from typing import Any, Callable, Optional, Sequence

import numpy as np

from metalearn.scaling import intervals
from metalearn.scaling import records

Values = Callable[[str], tuple[np.ndarray, np.ndarray, np.ndarray]]


def locate_log(x: float, xs: Sequence[float]) -> Optional[tuple[int, float]]:
  """``(j, t)`` with ``log x = (1 − t)·log xs[j] + t·log xs[j + 1]`` for ascending
  positive ``xs`` (``records.locate``); None outside ``[xs[0], xs[-1]]``."""
  xs = np.asarray(xs, dtype=float)
  if len(xs) == 0 or np.any(xs <= 0):
    return None
  return records.locate(float(x), np.log(xs))


def _common(*arrays: np.ndarray) -> list[np.ndarray]:
  """The arrays cut to their common number of episodes (axis 1)."""
  n = min(a.shape[1] for a in arrays)
  return [a[:, :n] for a in arrays]


def verdict(iv: intervals.Interval) -> str:
  """'lower', 'higher' or 'indistinguishable' for a difference's 95% interval."""
  if iv.hi < 0:
    return "lower"
  if iv.lo > 0:
    return "higher"
  return "indistinguishable"


def difference(iv: intervals.Interval, **fields) -> dict:
  """A difference's interval as a JSON-ready dict with its verdict."""
  return dict(fields, diff=float(iv.mean), ci95=float(iv.half_width), lo=float(iv.lo),
              hi=float(iv.hi), single_seed=bool(iv.single_seed), verdict=verdict(iv))


def summary(diffs: Sequence[dict], x_key: str) -> dict:
  """How many matched points were lower / higher / indistinguishable, over which range
  of ``x_key``."""
  if not diffs:
    return dict(n=0)
  xs = [d[x_key] for d in diffs]
  counts = {v: sum(d["verdict"] == v for d in diffs)
            for v in ("lower", "indistinguishable", "higher")}
  return dict(n=len(diffs), x_min=min(xs), x_max=max(xs), **counts)


def test_time(groups: Sequence[dict], values: Values, base: str) -> list[dict]:
  """Shots points (``shots``: trained and scored with those shots; ``test_shots``: the
  base model scored with them) against the base model's inner steps at equal
  adaptation FLOPs.

  Args:
    groups: the sweep's settings (``analysis._groups``).
    values: ``values(group) -> (k [P], adaptation FLOPs [P], v [S, E, P])``.
    base: the base group.

  Returns:
    One dict per shots point: its settings (``shots`` the test-time shots), ``diffs``
    (one per matched k: the shots point's error minus the base curve's at the same
    FLOPs, and the base k that costs as much) and ``summary``.
  """
  k_b, f_b, v_b = values(base)
  pos = k_b >= 1
  k_b, f_b, v_b = k_b[pos], f_b[pos], v_b[:, :, pos]
  out = []
  for g in groups:
    if g["axis"] not in ("shots", "test_shots"):
      continue
    k_g, f_g, v_g = values(g["group"])
    diffs = []
    for j in np.flatnonzero(k_g >= 1):
      loc = locate_log(float(f_g[j]), f_b)
      if loc is None:
        continue
      i, t = loc
      i1 = min(i + 1, len(f_b) - 1)
      a, b0, b1 = _common(v_g[:, :, j], v_b[:, :, i], v_b[:, :, i1])
      iv = intervals.contrast([a, (1 - t) * b0 + t * b1], [1.0, -1.0])
      diffs.append(difference(
          iv, k=int(k_g[j]), adaptation_flops=float(f_g[j]),
          base_k_equivalent=float(math.exp((1 - t) * math.log(k_b[i]) +
                                           t * math.log(k_b[i1]))),
          mean=float(a.mean()), base_mean=float(((1 - t) * b0 + t * b1).mean())))
    out.append(dict(group=g["group"], axis=g["axis"], shots=g.get("eval_shots", g["shots"]),
                    diffs=diffs,
                    summary=summary(diffs, "adaptation_flops")))
  return out


def shot_worth(groups: Sequence[dict], values: Values, base: str, k: int) -> list[dict]:
  """What one model's extra test-time shots are worth in its own inner steps.

  For each ``test_shots`` point with more shots than the base (the same trained model,
  scored with more support examples), its mean error at test-time step ``k`` is located
  on the base curve (k >= 1, the base shots): the base adaptation FLOPs, and k, that
  reach the same mean error (interpolated in log FLOPs between the first measured
  neighbours that bracket it), against the FLOPs the shots point spends at ``k``.
  ``k_equivalent_range`` does the same for the ends of the shots point's 95% interval
  (the base curve's own noise is left out). When the base curve never gets as low
  within its range, the paired difference between the base curve's lowest point and
  the shots point (``diff``: shots point minus that; ``verdict`` 'lower' when the shots
  point is significantly lower) says whether the shots are worth more than all the
  measured steps (``beyond_range``).

  Returns:
    One dict per such point: ``shots``, ``k``, ``mean``, ``ci95``, ``adaptation_flops``
    and either ``base_k_equivalent``, ``base_flops_equivalent`` and ``flops_ratio``
    (equivalent base FLOPs / the shots point's), or ``beyond_range``.
  """
  k_b, f_b, v_b = values(base)
  pos = k_b >= 1
  k_b, f_b, v_b = k_b[pos], f_b[pos], v_b[:, :, pos]
  base_shots = next(g["eval_shots"] for g in groups if g["group"] == base)
  m_b = v_b.mean((0, 1))
  out = []

  def crossing(target):
    """(k, FLOPs) where the base mean first reaches ``target``, or None."""
    below = np.flatnonzero(m_b <= target)
    if not len(below):
      return None
    i = int(below[0])
    if i == 0:
      return float(k_b[0]), float(f_b[0])
    t = (m_b[i - 1] - target) / (m_b[i - 1] - m_b[i])
    lf = (1 - t) * math.log(f_b[i - 1]) + t * math.log(f_b[i])
    lk = (1 - t) * math.log(k_b[i - 1]) + t * math.log(k_b[i])
    return math.exp(lk), math.exp(lf)

  for g in groups:
    if g["axis"] != "test_shots" or g["eval_shots"] <= base_shots:
      continue
    k_g, f_g, v_g = values(g["group"])
    col = _col(k_g, v_g, k)
    if col is None:
      continue
    iv = intervals.point_interval(col)
    f_own = float(f_g[int(np.flatnonzero(k_g == k)[0])])
    entry = dict(group=g["group"], shots=g["eval_shots"], base_shots=base_shots, k=k,
                 mean=float(iv.mean), ci95=float(iv.half_width), adaptation_flops=f_own)
    hit = crossing(float(iv.mean))
    if hit is None:
      best = int(np.argmin(m_b))
      a, b = _common(col, v_b[:, :, best])
      d = intervals.contrast([a, b], [1.0, -1.0])  # shots point − base's best
      entry["beyond_range"] = dict(
          base_k=int(k_b[best]), base_flops=float(f_b[best]),
          flops_ratio_above=float(f_b[best] / f_own), **difference(d))
    else:
      entry.update(base_k_equivalent=hit[0], base_flops_equivalent=hit[1],
                   flops_ratio=hit[1] / f_own)
    ends = [crossing(float(iv.mean + sign * iv.half_width)) for sign in (1, -1)]
    entry["k_equivalent_range"] = [None if e is None else e[0] for e in ends]
    out.append(entry)
  return out


def meta_training(groups: Sequence[dict], values: Values) -> list[dict]:
  """Shots, tasks, width and steps points against the K_train axis at equal
  meta-training FLOPs.

  Returns:
    One dict per shots / tasks point inside the K_train axis' FLOPs range: ``as_trained``
    (each arm at its own test-time k = K_train) and ``same_k`` (both arms at each
    test-time k they both measured), with the K_train the FLOPs correspond to.
  """
  axis = sorted((g for g in groups if g["axis"] in ("base", "k_train")),
                key=lambda g: g["meta_training_flops"])
  if len(axis) < 2:
    return []
  flops = [g["meta_training_flops"] for g in axis]
  curves = {g["group"]: values(g["group"]) for g in axis}
  out = []
  for g in groups:
    if g["axis"] not in ("shots", "train_shots", "tasks", "width", "steps"):
      continue
    loc = locate_log(g["meta_training_flops"], flops)
    if loc is None:
      continue
    i, t = loc
    i1 = min(i + 1, len(axis) - 1)
    lo, hi = axis[i], axis[i1]
    k_g, _, v_g = values(g["group"])
    entry = dict(group=g["group"], axis=g["axis"], value=g["axis_value"],
                 meta_training_flops=g["meta_training_flops"],
                 k_train_equivalent=float(math.exp(
                     (1 - t) * math.log(lo["k_train"]) + t * math.log(hi["k_train"]))))

    def at(group, k, _curves=curves):
      return _col(_curves[group][0], _curves[group][2], k)

    def compare(k_own, k_lo, k_hi, **fields):
      a = _col(k_g, v_g, k_own)
      b0, b1 = at(lo["group"], k_lo), at(hi["group"], k_hi)
      if a is None or b0 is None or b1 is None:
        return None
      a, b0, b1 = _common(a, b0, b1)
      iv = intervals.contrast([a, b0, b1], [1.0, -(1 - t), -t])
      return difference(iv, mean=float(a.mean()),
                        k_train_mean=float((1 - t) * b0.mean() + t * b1.mean()), **fields)

    entry["as_trained"] = compare(g["k_train"], lo["k_train"], hi["k_train"],
                                  k=int(g["k_train"]))
    shared = [int(k) for k in k_g if k >= 1 and at(lo["group"], k) is not None
              and at(hi["group"], k) is not None]
    same = [compare(k, k, k, k=k) for k in shared]
    entry["same_k"] = [d for d in same if d is not None]
    entry["same_k_summary"] = summary(entry["same_k"], "k")
    out.append(entry)
  return out


def _col(ks: np.ndarray, v: np.ndarray, k: int) -> Optional[np.ndarray]:
  hit = np.flatnonzero(ks == k)
  return None if not len(hit) else v[:, :, hit[0]]


def analyse(groups: Sequence[dict], values: Values, base: str) -> dict[str, Any]:
  """Both comparisons (module docstring)."""
  return dict(test_time=test_time(groups, values, base),
              meta_training=meta_training(groups, values))
