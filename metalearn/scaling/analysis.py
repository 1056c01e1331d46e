"""From sweep rows to fits: error against adaptation and meta-training FLOPs.

Pure functions of the rows (``sweep.collect``) and their per-episode values; no model
is ever loaded. The result is one JSON-ready dict that the report and the plots read.

* Intervals: every point's mean has a 95% interval over training seeds and the shared
  evaluation episodes (``intervals.point_interval``, seeds × episodes crossed); a point
  trained with one seed says so (``single_seed``) and its interval covers episodes only.
* ``test_time``: the base model's error against adaptation FLOPs (the inner steps' cost;
  scoring the queries is ``query_flops``, apart) for k >= 1. A curve is fitted only on
  at least 6 points over at least one decade (``standards.eligible``; otherwise the
  result says why it declined); forms with a parameter at a bound are reported but not
  ranked; extrapolation is judged at several split points against the held-out points'
  own CIs; the fitted floor and exponent are refitted on growing ranges (drift).
* ``meta_training``: error at test-time k = K_train against meta-training FLOPs along
  the K_train and shots axes (fitted only where the standards allow).
* ``tasks``: error with more or fewer meta-training tasks at the same FLOPs (data).
* ``iso_flop``: shots and tasks points against the base model's inner steps and the
  K_train axis at equal FLOPs, over whole curves, as paired differences on the shared
  episodes (``iso_flop``).
* ``frontier``: the lower envelope of error over every (setting, k) against adaptation
  FLOPs and against total FLOPs ``M + N_test·a`` at each explicit ``N_test``; on the
  K_train × k grid, the iso-error exchange rate between meta-training and test-time
  FLOPs and a two-variable law ``E + A·M^-α + B·a^-β`` (``laws``).
"""

import dataclasses
import math
from typing import Any, Optional, Sequence

import numpy as np

from metalearn.scaling import capability
from metalearn.scaling import curves
from metalearn.scaling import fit_bootstrap as boot_lib
from metalearn.scaling import fits as fits_lib
from metalearn.scaling import frontier as frontier_lib
from metalearn.scaling import intervals
from metalearn.scaling import iso_flop
from metalearn.scaling import laws
from metalearn.scaling import size_steps
from metalearn.scaling import standards

MODELS = fits_lib.DEFAULT_MODELS
# The group field that holds each sweep axis's value (``sweep.AXES``).
AXIS_FIELD = dict(k_train="k_train", shots="shots", train_shots="shots", tasks="tasks",
                  width="width", test_shots="eval_shots", steps="num_steps",
                  tuned="num_steps",
                  **{f"{a}_steps": "num_steps" for a in ("k_train", "shots",
                                                         "train_shots", "tasks", "width")})
# Axes of meta-training compute, along which error at k = K_train is fitted against
# meta-training FLOPs.
META_AXES = ("k_train", "shots", "train_shots", "steps", "width")


def _seed_points(rows: Sequence[dict], group: str) -> list[str]:
  return sorted({r["point"] for r in rows if r["group"] == group})


def _values(rows, per_episode, group: str, metric: str) -> np.ndarray:
  """``[seeds, episodes, P]`` per-episode values of a group (equal episode counts)."""
  arrays = [per_episode[f"{p}/{metric}"] for p in _seed_points(rows, group)]
  n = min(a.shape[0] for a in arrays)
  return np.stack([a[:n] for a in arrays])


def _ks(rows, group: str, metric: str) -> tuple[np.ndarray, np.ndarray]:
  """Sorted test-time steps of a group and their adaptation FLOPs."""
  first = _seed_points(rows, group)[0]
  rs = sorted((r for r in rows if r["point"] == first and r["metric"] == metric),
              key=lambda r: r["k"])
  return (np.array([r["k"] for r in rs]),
          np.array([r["adaptation_flops"] for r in rs], dtype=float))


def _interval(v_SxE) -> dict:
  """Mean, 95% half-width and interval over seeds × episodes of one point."""
  iv = intervals.point_interval(v_SxE)
  return dict(mean=float(iv.mean), ci95=float(iv.half_width), lo=float(iv.lo),
              hi=float(iv.hi), n_seeds=int(iv.n_seeds), single_seed=bool(iv.single_seed))


def _curve_intervals(v_SxExP: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
  iv = intervals.point_interval(v_SxExP)
  return (np.atleast_1d(iv.mean), np.atleast_1d(iv.half_width), bool(iv.single_seed))


def _weights(y: np.ndarray, ci: np.ndarray) -> np.ndarray:
  """Inverse-variance weights from 95% half-widths, with a floor so a zero-variance point
  cannot dominate."""
  se = ci / 1.96
  floor = 0.01 * max(float(np.ptp(y)), 1e-12)
  return 1.0 / (se**2 + floor**2)


def _pooled_ci(v_SxExP: np.ndarray) -> np.ndarray:
  """Per-point ``1.96 · sd / sqrt(S·E)`` over all S·E values: only for weights.

  Weights set the points' relative precision. Variance-components estimates rest on
  S − 1 df for the seed term, and weights that noisy add their own variance to the fit:
  simulating a power law with floor (3 seeds × 100 episodes, noise dominating), the
  delta-method interval of the floor covered 0.82 with such weights and 0.96 with these.
  """
  s, e = v_SxExP.shape[:2]
  return 1.96 * v_SxExP.reshape(s * e, -1).std(0, ddof=1) / math.sqrt(s * e)


def _safe(fn, *args, **kw) -> dict:
  try:
    return fn(*args, **kw)
  except (ValueError, np.linalg.LinAlgError) as e:
    return {"skipped": str(e)}


def fit_curve(compute: np.ndarray, y: np.ndarray, ci: np.ndarray,
              per_episode: Any, *, n_boot: int, rng: np.random.Generator, paired: bool,
              seeds_axis: Optional[int] = None,
              weights: Optional[np.ndarray] = None) -> dict:
  """Fits one curve if the standards allow it; compares, bootstraps, tests extrapolation
  at several splits and refits on growing ranges.

  Args:
    compute: 1-D FLOPs per point (> 0).
    y: mean error per point; ci: its 95% half-width (judges the held-out predictions,
      and sets the weights unless ``weights`` is given).
    per_episode: per-episode values for ``fit_bootstrap.bootstrap``.
    n_boot: bootstrap replicates per model (0: none).
    rng: randomness of the bootstrap.
    paired: the same episodes are scored at every point.
    seeds_axis: seeds axis of a 3-D ``per_episode``.
    weights: fit weights (default: inverse-variance from ``ci``).

  Returns:
    ``declined`` (the reason) when no form may be fitted; else ``compare`` (rankable
    fits first, by AIC), ``declined_models``, ``bootstrap``, ``extrapolation`` per model,
    ``shared_bias``, ``drift`` (the power law with floor on growing ranges) and
    ``residuals`` per rankable fit.
  """
  out: dict[str, Any] = dict(compute=compute, y=y, y_ci95=ci)
  ok, reason = standards.eligible(compute, 2)
  if not ok:
    return dict(out, declined=reason)
  w = _weights(y, ci) if weights is None else weights
  out["weighting"] = ("1/CI²" if weights is None else
                      "1/SE² with SE pooled over all seeds × episodes of a point")
  models, declined = [], {}
  for m in MODELS:
    ok, reason = standards.eligible(compute, len(fits_lib.get_model(m).param_names))
    (models.append(m) if ok else declined.__setitem__(m, reason))
  if not models:
    return dict(out, declined="; ".join(f"{m}: {r}" for m, r in declined.items()))
  fits = fits_lib.compare(compute, y, models=models, weights=w, criterion="aic")
  rankable = [f for f in fits if f.rankable]
  aicc = [f.aicc for f in rankable if math.isfinite(f.aicc)]
  best_aicc = min(aicc) if aicc else math.nan
  compare = []
  for f in fits:
    d = f.to_dict()
    d["delta_aicc"] = (f.aicc - best_aicc if f.rankable and math.isfinite(f.aicc)
                       and math.isfinite(best_aicc) else None)
    compare.append(d)
  boot, extra, resid = {}, {}, {}
  grid = np.geomspace(compute.min(), compute.max(), 60)
  splits = [h for h in (1, 2, 3) if standards.eligible(compute[:-h], 2)[0]] or [1]
  for f in fits:
    m = f.model
    extra[m] = _safe(standards.extrapolation_splits, m, compute, y, ci, splits=splits,
                     weights=w)
    if not f.rankable:
      continue
    resid[m] = standards.residuals(f, compute, y, ci)
    if n_boot:
      boot[m] = _safe(lambda m=m: boot_lib.bootstrap(
          m, compute, per_episode, n_boot, rng, weights=w, compute_grid=grid,
          paired_episodes=paired, seeds_axis=seeds_axis).to_dict())
  tested = [e for e in extra.values() if "summary" in e]
  drift = (_safe(standards.parameter_drift, "power_law_floor", compute, y, weights=w)
           if "power_law_floor" in models else {"skipped": declined["power_law_floor"]})
  return dict(out, weights=w, compare=compare, declined_models=declined,
              bootstrap=boot, extrapolation=extra, shared_bias=standards.shared_bias(tested),
              drift=drift, residuals=resid)


def _test_time(rows, per_episode, metric, cfg, rng, group: str = "base") -> dict:
  k, flops = _ks(rows, group, metric)
  v = _values(rows, per_episode, group, metric)  # [S, E, P]
  y, ci, single = _curve_intervals(v)
  keep = k >= 1  # k = 0 adapts nothing: zero adaptation FLOPs, off a log axis.
  per_ep = np.moveaxis(v[:, :, keep], 1, 2)  # [S, P, E]
  seeds = per_ep.shape[0]
  query = next(r.get("query_flops") for r in rows if r["group"] == group)
  out = dict(k=k, adaptation_flops=flops, query_flops=query, mean=y, ci95=ci,
             n_seeds=seeds, single_seed=single, episodes=v.shape[1], fit_k=k[keep],
             seed_means=v.mean(1))
  out.update(fit_curve(flops[keep], y[keep], ci[keep],
                       per_ep if seeds > 1 else per_ep[0], n_boot=cfg["n_boot"],
                       rng=rng, paired=True, seeds_axis=0 if seeds > 1 else None,
                       weights=_weights(y[keep], _pooled_ci(v[:, :, keep]))))
  # Does the last doubling of k still help? Paired over seeds and the same episodes.
  d = intervals.paired_difference(v[:, :, -2], v[:, :, -1], seeds_a=range(seeds),
                                  seeds_b=range(seeds))
  out["last_doubling"] = dict(k_from=int(k[-2]), k_to=int(k[-1]), diff=float(d.mean),
                              ci95=float(d.half_width), single_seed=bool(d.single_seed))
  if metric != "support_loss" and any(p.endswith("/support_loss") for p in per_episode):
    out["plateau"] = _plateau(k, v, _values(rows, per_episode, group, "support_loss"))
  lrs = {r["k"]: r.get("eval_inner_lr") for r in rows
         if r["group"] == group and r["metric"] == metric}
  out["inner_lr"] = [lrs.get(int(kk)) for kk in k]
  return out


def _predicted(tt: dict, curve: dict) -> dict:
  """Measured minus predicted at every measured k with a prediction, against the
  measured point's 95% interval (seeds × episodes; the prediction's own error is
  taken as negligible)."""
  pts = []
  for k, m, ci in zip(tt["k"], tt["mean"], tt["ci95"]):
    if int(k) in curve:
      pts.append(dict(k=int(k), predicted=float(curve[int(k)]), mean=float(m),
                      ci95=float(ci), diff=float(m - curve[int(k)]),
                      inside=bool(abs(m - curve[int(k)]) <= ci)))
  return dict(points=pts, inside=sum(p["inside"] for p in pts), n=len(pts))


def _plateau(k, v, support) -> dict:
  """Optimisation or information plateau: from the last k at which the query metric
  still falls significantly (paired steps) to the largest k, the change of the query
  metric and of the support loss, each paired over seeds and episodes."""
  s = range(v.shape[0])
  falls = [i + 1 for i in range(len(k) - 1) if k[i] >= 1 and intervals.paired_difference(
      v[:, :, i], v[:, :, i + 1], seeds_a=s, seeds_b=s).hi < 0]
  start = falls[-1] if falls else int(np.flatnonzero(k >= 1)[0])
  if start >= len(k) - 1:
    return dict(k_from=int(k[start]), k_to=int(k[-1]), skipped="the query metric still "
                "falls at the last measured step")
  q = intervals.paired_difference(v[:, :, start], v[:, :, -1], seeds_a=s, seeds_b=s)
  sup = intervals.paired_difference(support[:, :, start], support[:, :, -1], seeds_a=s,
                                    seeds_b=s)
  return dict(k_from=int(k[start]), k_to=int(k[-1]),
              query=dict(diff=float(q.mean), ci95=float(q.half_width)),
              support=dict(diff=float(sup.mean), ci95=float(sup.half_width),
                           start=float(support[:, :, start].mean()),
                           end=float(support[:, :, -1].mean())),
              support_falls=bool(sup.hi < 0), query_falls=bool(q.hi < 0))


def _at_k(rows, per_episode, group, metric, k_wanted) -> tuple[int, dict, np.ndarray,
                                                                 float]:
  """(k, interval, per-episode values [S, E], adaptation FLOPs) of a group at the
  smallest evaluated k >= k_wanted."""
  ks, flops = _ks(rows, group, metric)
  i = int(np.searchsorted(ks, k_wanted)) if k_wanted <= ks[-1] else len(ks) - 1
  v = _values(rows, per_episode, group, metric)[:, :, i]
  return int(ks[i]), _interval(v), v, float(flops[i])


def _groups(rows) -> list[dict]:
  """One dict per trained setting (seeds pooled), base first."""
  seen: dict[str, dict] = {}
  for r in rows:
    g = seen.setdefault(r["group"], dict(
        group=r["group"], axis=r["axis"], axis_value=r["axis_value"],
        k_train=r["k_train"], shots=r["shots"], tasks=r["tasks"],
        eval_shots=r.get("eval_shots") or r["shots"], num_steps=r.get("num_steps"),
        width=r.get("width"), meta_training_flops=r["meta_training_flops"],
        seeds=set()))
    g["seeds"].add(r["seed"])
  out = sorted(seen.values(), key=lambda g: (g["axis"] != "base", g["axis"],
                                             g["axis_value"] or 0))
  for g in out:
    g["seeds"] = sorted(g["seeds"])
  return out


def _frontier(rows, per_episode, groups, metric, cfg, rng) -> dict:
  """Envelopes over every (setting, k >= 1), and the K_train × k grid's exchange rate
  and two-variable law."""
  records = []
  for g in groups:
    if g["axis"] == "test_shots" or g["axis"].endswith("_steps"):
      continue  # Other data at test time, or checkpoints of other runs: apart.
    ks, flops = _ks(rows, g["group"], metric)
    v = _values(rows, per_episode, g["group"], metric)
    for i, k in enumerate(ks):
      if k >= 1:
        records.append(frontier_lib.Record(
            group=g["group"], k=int(k), meta_training_flops=g["meta_training_flops"],
            adaptation_flops=float(flops[i]), error=float(v[:, :, i].mean()),
            values=v[:, :, i]))
  out: dict[str, Any] = {}
  env = frontier_lib.adaptation_frontier(records)
  out["adaptation"] = [dict(group=g, k=int(k), adaptation_flops=float(c), error=float(e))
                       for g, k, c, e in zip(env.groups, env.k, env.compute, env.error)]
  out["total"] = {}
  for n_test in cfg["n_test"]:
    env = frontier_lib.total_flops_frontier(records, n_test)
    out["total"][str(n_test)] = [
        dict(group=g, k=int(k), total_flops=float(c), error=float(e))
        for g, k, c, e in zip(env.groups, env.k, env.compute, env.error)]
  # A meta-training axis with every test-time k: a grid of (meta-training, test-time)
  # FLOPs. The base run's checkpoints (steps) when they were scored, else K_train.
  grid_axis = ("steps" if sum(g["axis"] == "steps" for g in groups) >= 2 else "k_train")
  kt = [g["group"] for g in groups if g["axis"] in ("base", grid_axis)]
  grid_records = [r for r in records if r.group in kt]
  if len(kt) < 3:
    out["grid"] = {"skipped": f"{len(kt)} {grid_axis} settings: too few for a grid"}
    return out
  out["profiles"] = _profiles(grid_records, cfg, rng)
  grid = frontier_lib.error_grid_from_records(grid_records, rng=rng,
                                              n_boot=cfg["n_boot"])
  levels = np.quantile(grid.error[np.isfinite(grid.error)], [0.25, 0.5])
  rates = []
  for level in levels:
    r = _safe(lambda level=level: curves.jsonable(dataclasses.asdict(
        frontier_lib.exchange_rate(grid.meta_training_flops, grid.adaptation_flops,
                                   grid.error, float(level), error_samples=grid.samples))))
    rates.append(dict(r, level=float(level)))
  x = np.array([r.meta_training_flops for r in grid_records])
  a = np.array([r.adaptation_flops for r in grid_records])
  err = np.array([r.error for r in grid_records])
  law = _safe(lambda: laws.fit(x, a, err).to_dict())
  boot = (_safe(lambda: laws.bootstrap(x, a, [r.values.ravel() for r in grid_records],
                                       max(cfg["n_boot"] // 4, 20), rng).to_dict())
          if "skipped" not in law else {"skipped": law["skipped"]})
  out["grid"] = dict(axis=grid_axis, groups=kt, n_points=len(grid_records),
                     exchange_rates=rates,
                     law=law, law_bootstrap=boot)
  return out


def _test_shots(rows, per_episode, groups, metric, base, bayes: dict) -> list[dict]:
  """The base model scored with each number of test-time shots, at k = K_train and at
  the largest k, beside the Bayes-optimal value at those shots where it is known."""
  gs = sorted((g for g in groups if g["axis"] in ("base", "test_shots")),
              key=lambda g: g["eval_shots"])
  if len(gs) < 2:
    return []
  bayes = {int(k): float(v) for k, v in bayes.items()}
  out = []
  for g in gs:
    k, iv, _, fl = _at_k(rows, per_episode, g["group"], metric, base["k_train"])
    k_max, iv_max, _, fl_max = _at_k(rows, per_episode, g["group"], metric, 1e9)
    out.append(dict(group=g["group"], shots=g["eval_shots"], k=k, mean=iv["mean"],
                    ci95=iv["ci95"], adaptation_flops=fl, k_max=k_max,
                    k_max_mean=iv_max["mean"], k_max_ci95=iv_max["ci95"],
                    k_max_flops=fl_max, bayes=bayes.get(int(g["eval_shots"]))))
  return out


def _runs_along(groups, axis: str) -> list[tuple[Any, list[dict]]]:
  """(value, its groups by meta-training steps) for each value of a trained ``axis``
  whose run was scored along its steps (``<axis>_steps`` points; the base run's are the
  ``steps`` points), with at least two checkpoints; [] if none was."""
  if not any(g["axis"] == f"{axis}_steps" for g in groups):
    return []
  field = AXIS_FIELD[axis]
  runs: dict[Any, list[dict]] = {}
  for g in groups:
    if g["axis"] in ("base", "steps", axis, f"{axis}_steps"):
      runs.setdefault(g[field], []).append(g)
  return [(value, sorted(gs, key=lambda g: g["num_steps"]))
          for value, gs in sorted(runs.items(), key=lambda kv: (kv[0] == 0, kv[0]))
          if len(gs) >= 2]


def _size_steps(rows, per_episode, groups, metric, base) -> dict:
  """Model width against meta-training length at equal meta-training FLOPs, from the
  width runs scored along their steps (``size_steps``), at k = K_train."""
  runs = [size_steps.SizeRun(
      size=value, flops=tuple(g["meta_training_flops"] for g in gs),
      values=tuple(_at_k(rows, per_episode, g["group"], metric, base["k_train"])[2]
                   for g in gs)) for value, gs in _runs_along(groups, "width")]
  if len(runs) < 2:
    return {}
  points = size_steps.envelope(runs)
  return dict(k=base["k_train"], points=points, summary=size_steps.summary(points))


def _trajectories(rows, per_episode, groups, metric, base, axis: str) -> list[dict]:
  """Error at k = K_train along each run's meta-training steps, per value of a trained
  ``axis`` (its ``<axis>_steps`` points, and the base run's ``steps``), and whether a
  run overfits: its last checkpoint significantly worse than its best, paired over the
  run's seeds and the shared episodes."""
  out = []
  for value, gs in _runs_along(groups, axis):
    at = [_at_k(rows, per_episode, g["group"], metric, base["k_train"]) for g in gs]
    means = [iv["mean"] for _, iv, _, _ in at]
    best = int(np.argmin(means))
    v_best, v_last = at[best][2], at[-1][2]
    n = min(v_best.shape[1], v_last.shape[1])
    seeds = range(v_best.shape[0])
    d = intervals.paired_difference(v_best[:, :n], v_last[:, :n], seeds_a=seeds,
                                    seeds_b=seeds)
    out.append(dict(
        axis=axis, value=value, k=at[0][0], steps=[g["num_steps"] for g in gs],
        tasks_key=next((r.get("tasks_key") for r in rows), None) or "",
        groups=[g["group"] for g in gs],
        meta_training_flops=[g["meta_training_flops"] for g in gs], mean=means,
        ci95=[iv["ci95"] for _, iv, _, _ in at], best_steps=gs[best]["num_steps"],
        last_minus_best=dict(diff=float(d.mean), ci95=float(d.half_width)),
        overfits=bool(d.lo > 0)))
  return out


def _profiles(records, cfg, rng) -> dict:
  """Iso-FLOP profiles of the K_train axis at each N_test: budgets T on a log grid over
  the range where at least 3 settings can spend ``T − M`` within their measured k."""
  out = {}
  m = sorted({r.meta_training_flops for r in records})
  a = [r.adaptation_flops for r in records if r.adaptation_flops > 0]
  # One episode draw for every setting when they were scored on the same episodes (and
  # as many); otherwise independent draws.
  shared = len({r.values.shape[1] for r in records}) == 1
  for n_test in cfg["n_test"]:
    budgets = np.geomspace(m[0] + n_test * min(a), m[-1] + n_test * max(a), 24)
    profiles = [p for p in frontier_lib.iso_flop_profiles(
        records, budgets, n_test, rng=rng, n_boot=max(cfg["n_boot"] // 2, 20),
        share_episodes=shared) if sum(e is not None for e in p.error) >= 3]
    out[str(n_test)] = [dict(
        budget=p.budget, settings=sum(e is not None for e in p.error),
        bracketed=p.bracketed, optimum_fraction=p.optimum_fraction,
        optimum_fraction_ci=p.optimum_fraction_ci, optimum_error=p.optimum_error,
        optimum_meta_training_flops=p.optimum_meta_training_flops,
        lowest=p.groups[int(np.nanargmin([np.nan if e is None else e for e in p.error]))],
        censored=p.boot_censored_fraction) for p in profiles]
  return out


def analyse(rows: Sequence[dict], per_episode: dict[str, np.ndarray], *,
            metrics: Sequence[str], n_boot: int = 200,
            n_test: Sequence[float] = (100, 10_000, 1_000_000), seed: int = 0,
            failure_mse: float = 0.0,
            known_floor: Optional[dict[str, Any]] = None,
            known_floor_by_shots: Optional[dict[str, dict[int, float]]] = None,
            predicted_curve: Optional[dict[str, dict[int, float]]] = None) -> dict:
  """Every fit and comparison of a sweep, JSON-ready.

  Args:
    rows: rows from ``sweep.collect`` (or synthetic rows of the same fields).
    per_episode: ``"{point}/{metric}" -> [episodes, P]``.
    metrics: error-like metrics to analyse, e.g. ``('error', 'loss')``.
    n_boot: bootstrap replicates per model and curve.
    n_test: test episodes over which a deployment spends its adaptation FLOPs, for
      total compute ``M + N_test·a`` (explicit: the frontier depends on it).
    seed: seed of the bootstrap's generator.
    failure_mse: > 0: also analyse the failure rate ``mse>τ`` at this query-MSE
      threshold τ, derived from the per-episode loss (``capability``), a capability
      metric for regression.
    known_floor: ``{metric: (value, source)}``: the task family's Bayes-optimal value of
      a metric at the evaluated shots, against which the fitted floor is checked.
    known_floor_by_shots: ``{metric: {shots: value}}``: the same at other test-time
      shots, shown beside the ``test_shots`` points.
    predicted_curve: ``{metric: {k: value}}``: the value the base model's curve is
      predicted to take at each test-time k, checked against its intervals.

  Returns:
    A dict with ``groups`` and, per metric, ``test_time``, ``meta_training``,
    ``tasks``, ``iso_flop`` and ``frontier`` (see the module docstring).
  """
  rng = np.random.default_rng(seed)
  cfg = dict(n_boot=n_boot, n_test=tuple(n_test))
  metrics = list(metrics)
  if failure_mse:
    rows, per_episode = capability.add_failure_rate(rows, per_episode, failure_mse)
    metrics.append(capability.failure_metric(failure_mse))
  groups = _groups(rows)
  base = groups[0]
  if base["axis"] != "base":
    raise ValueError("the rows have no base point")
  out: dict[str, Any] = dict(groups=groups, metrics=list(metrics), base=base["group"],
                             n_boot=n_boot, n_test=list(n_test))
  for metric in metrics:
    res: dict[str, Any] = {}
    res["test_time"] = _test_time(rows, per_episode, metric, cfg, rng)
    if predicted_curve and metric in predicted_curve:
      res["test_time"]["predicted"] = _predicted(res["test_time"],
                                                 predicted_curve[metric])
    if any(g["group"] == "tuned" for g in groups):
      res["test_time_tuned"] = _test_time(rows, per_episode, metric, cfg, rng, "tuned")
    if known_floor and metric in known_floor:
      value, source = known_floor[metric]
      for key in ("test_time", "test_time_tuned"):
        if key in res:
          res[key]["known_floor"] = dict(value=float(value), source=str(source))
    summary = {}
    for g in groups:
      k, iv, v, fl = _at_k(rows, per_episode, g["group"], metric, g["k_train"])
      summary[g["group"]] = dict(k=k, adaptation_flops=fl, values=v, **iv)
    res["meta_training"] = {}
    for axis in META_AXES:
      if axis != "k_train" and not any(g["axis"] == axis for g in groups):
        continue
      gs = [g for g in groups if g["axis"] in ("base", axis)]
      gs.sort(key=lambda g: g["meta_training_flops"])
      entry = dict(groups=[g["group"] for g in gs],
                   values=[g[AXIS_FIELD[axis]] for g in gs],
                   meta_training_flops=[g["meta_training_flops"] for g in gs],
                   **{key: [summary[g["group"]][key] for g in gs]
                      for key in ("mean", "ci95", "k", "single_seed")})
      entry["fits"] = fit_curve(
          np.array(entry["meta_training_flops"]), np.array(entry["mean"]),
          np.array(entry["ci95"]), [summary[g["group"]]["values"].ravel() for g in gs],
          n_boot=n_boot, rng=rng, paired=False)
      res["meta_training"][axis] = entry
    res["tasks"] = []
    for g in (g for g in groups if g["axis"] in ("base", "tasks")):
      k_max, iv_max, _, _ = _at_k(rows, per_episode, g["group"], metric, 1e9)
      res["tasks"].append(dict(
          group=g["group"], tasks=g["tasks"], meta_training_flops=g["meta_training_flops"],
          k_max=k_max, k_max_mean=iv_max["mean"], k_max_ci95=iv_max["ci95"],
          **{k: summary[g["group"]][k] for k in ("k", "mean", "ci95", "single_seed")}))
    res["iso_flop"] = iso_flop.analyse(
        groups, lambda g, m=metric: (*_ks(rows, g, m), _values(rows, per_episode, g, m)),
        base["group"])
    res["iso_flop"]["base_k"] = summary[base["group"]]["k"]
    res["iso_flop"]["shot_worth"] = iso_flop.shot_worth(
        groups, lambda g, m=metric: (*_ks(rows, g, m), _values(rows, per_episode, g, m)),
        base["group"], summary[base["group"]]["k"])
    res["trajectories"] = {
        axis: t for axis in ("tasks", "width", "k_train", "train_shots", "shots")
        if (t := _trajectories(rows, per_episode, groups, metric, base, axis))}
    res["size_steps"] = _size_steps(rows, per_episode, groups, metric, base)
    res["test_shots"] = _test_shots(rows, per_episode, groups, metric, base,
                                    (known_floor_by_shots or {}).get(metric, {}))
    res["frontier"] = _frontier(rows, per_episode, groups, metric, cfg, rng)
    res["curves"] = {}  # Every setting's k-curve, with the same intervals (plots).
    for g in groups:
      ks, fl = _ks(rows, g["group"], metric)
      v = _values(rows, per_episode, g["group"], metric)
      mean, ci, single = _curve_intervals(v)
      res["curves"][g["group"]] = dict(k=ks, adaptation_flops=fl, mean=mean, ci95=ci,
                                       single_seed=single, seed_means=v.mean(1))
    for s in summary.values():
      del s["values"]
    res["summary"] = summary
    out[metric] = res
  pair = [m for m in metrics if m != "loss"][:1]
  if "loss" in metrics and pair:
    def values(m):
      return lambda g: (*_ks(rows, g, m), _values(rows, per_episode, g, m))
    seeds = {r["point"]: r["seed"] for r in rows}
    out["agreement"] = dict(metrics=[pair[0], "loss"], settings=capability.agreement(
        groups, values(pair[0]), values("loss"),
        lambda g: [seeds[p] for p in _seed_points(rows, g)]))
  return curves.jsonable(out)
