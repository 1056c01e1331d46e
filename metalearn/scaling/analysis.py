"""From sweep rows to fits: error against adaptation and meta-training FLOPs.

Pure functions of the rows (``sweep.collect``) and their per-episode values; no model
is ever loaded. The result is one JSON-ready dict that the report and the plots read.

* ``test_time``: the base model's error against adaptation FLOPs along test-time inner
  steps k (one evaluation pass). Every model in ``fits_lib.DEFAULT_MODELS`` is fitted,
  ranked by AIC (AICc and BIC kept), bootstrapped over episodes (paired: the same
  episodes are scored at every k) and over seeds when the base point has several, and
  tested on held-out high compute.
* ``meta_training``: error at test-time k = K_train against meta-training FLOPs, along
  the K_train and shots axes (fitted only where there are enough points).
* ``tasks``: error at the same FLOPs with more or fewer meta-training tasks (pure data).
* ``iso_flop``: at the FLOPs of each shots / tasks point, the error the base model
  reaches by spending the same FLOPs on inner steps (or on K_train), interpolated in
  log FLOPs between measured points.
"""

import math
from typing import Any, Optional, Sequence

import numpy as np

from metalearn.scaling import fits as fits_lib
from metalearn import stats

MODELS = fits_lib.DEFAULT_MODELS


def _group_rows(rows: Sequence[dict], metric: str) -> dict[str, list[dict]]:
  out: dict[str, list[dict]] = {}
  for r in rows:
    if r["metric"] == metric:
      out.setdefault(r["group"], []).append(r)
  return out


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


def _summary(v_SxExP: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Mean and 95% half-width over all (seed, episode) values, per point."""
  flat = v_SxExP.reshape(-1, v_SxExP.shape[-1])
  # One value per point has no sd; 0 keeps the inverse-variance weights finite (floored).
  return flat.mean(0), stats.half_width(flat, 0, single=0.0)


def _weights(y: np.ndarray, ci: np.ndarray) -> np.ndarray:
  """Inverse-variance weights, with a floor so a zero-variance point cannot dominate."""
  se = ci / stats.Z95
  floor = 0.01 * max(float(np.ptp(y)), 1e-12)
  return 1.0 / (se**2 + floor**2)


def _safe(fn, *args, **kw) -> dict:
  try:
    return fn(*args, **kw)
  except (ValueError, np.linalg.LinAlgError) as e:
    return {"skipped": str(e)}


def fit_curve(compute: np.ndarray, y: np.ndarray, ci: np.ndarray,
              per_episode: Any, *, n_boot: int, holdout_fraction: float,
              rng: np.random.Generator, paired: bool,
              seeds_axis: Optional[int] = None) -> dict:
  """Compares, bootstraps and extrapolation-tests every model on one curve.

  Args:
    compute: 1-D FLOPs per point.
    y: mean error per point; ci: its 95% half-width (sets the weights).
    per_episode: per-episode values for ``fits_lib.bootstrap``.
    n_boot: bootstrap replicates per model (0: none).
    holdout_fraction: fraction of the highest-compute points held out.
    rng: randomness of the bootstrap.
    paired: the same episodes are scored at every point.
    seeds_axis: seeds axis of a 3-D ``per_episode``.

  Returns:
    ``compare`` (fits, best first by AIC, with ``delta_aicc``), ``bootstrap`` and
    ``extrapolation`` per model (``{'skipped': reason}`` where a model has too many
    parameters for the points), ``n_holdout`` and ``weights``.
  """
  w = _weights(y, ci)
  models = [m for m in MODELS if len(fits_lib.get_model(m).param_names) < len(y)]
  fits = fits_lib.compare(compute, y, models=models, weights=w, criterion="aic")
  aicc = [f.aicc for f in fits if f.success and math.isfinite(f.aicc)]
  best_aicc = min(aicc) if aicc else math.nan
  compare = []
  for f in fits:
    d = f.to_dict()
    d["delta_aicc"] = (f.aicc - best_aicc if f.success and math.isfinite(f.aicc)
                       and math.isfinite(best_aicc) else None)
    compare.append(d)
  converged = {f.model for f in fits if f.success}
  n_holdout = max(1, round(holdout_fraction * len(y)))
  boot, extra = {}, {}
  grid = np.geomspace(compute.min(), compute.max(), 60)
  for m in MODELS:
    extra[m] = _safe(fits_lib.extrapolation_test, m, compute, y, n_holdout=n_holdout,
                     weights=w)
    # A model that does not converge on the data gets no interval (and its refits
    # would each fall back to the full multi-start: minutes for nothing).
    if m in converged and n_boot:
      boot[m] = _safe(lambda m=m: fits_lib.bootstrap(
          m, compute, per_episode, n_boot, rng, weights=w, compute_grid=grid,
          paired_episodes=paired, seeds_axis=seeds_axis).to_dict())
  return dict(compute=compute, y=y, y_ci95=ci, weights=w, compare=compare,
              bootstrap=boot, extrapolation=extra, n_holdout=n_holdout)


def _test_time(rows, per_episode, metric, cfg, rng) -> dict:
  k, flops = _ks(rows, "base", metric)
  v = _values(rows, per_episode, "base", metric)  # [S, E, P]
  y, ci = _summary(v)
  keep = k >= (0 if cfg["include_k0"] else 1)
  per_ep = np.moveaxis(v[:, :, keep], 1, 2)  # [S, P, E]
  seeds = per_ep.shape[0]
  out = dict(k=k, adaptation_flops=flops, mean=y, ci95=ci, n_seeds=seeds,
             episodes=v.shape[1], include_k0=cfg["include_k0"], fit_k=k[keep])
  out.update(fit_curve(flops[keep], y[keep], ci[keep],
                       per_ep if seeds > 1 else per_ep[0], n_boot=cfg["n_boot"],
                       holdout_fraction=cfg["holdout_fraction"], rng=rng, paired=True,
                       seeds_axis=0 if seeds > 1 else None))
  # Sensitivity: the same comparison with the other choice about k = 0.
  alt = k >= (1 if cfg["include_k0"] else 0)
  if alt.sum() > 3:
    w = _weights(y[alt], ci[alt])
    models = [m for m in MODELS if len(fits_lib.get_model(m).param_names) < alt.sum()]
    out["k0_sensitivity"] = dict(
        include_k0=not cfg["include_k0"],
        compare=[f.to_dict() for f in fits_lib.compare(flops[alt], y[alt], models=models,
                                                      weights=w)])
  # Does the last doubling of k still help? Paired over the same episodes.
  flat = v.reshape(-1, v.shape[-1])
  d = flat[:, -1] - flat[:, -2]
  out["last_doubling"] = dict(k_from=int(k[-2]), k_to=int(k[-1]), diff=float(d.mean()),
                              ci95=float(stats.half_width(d)))
  return out


def _at_k(rows, per_episode, group, metric, k_wanted) -> tuple[int, float, float,
                                                                 np.ndarray, float]:
  """(k, mean, ci95, per-episode values, adaptation FLOPs) of a group at the smallest
  evaluated k >= k_wanted."""
  ks, flops = _ks(rows, group, metric)
  i = int(np.searchsorted(ks, k_wanted)) if k_wanted <= ks[-1] else len(ks) - 1
  v = _values(rows, per_episode, group, metric)[:, :, i].ravel()
  ci = stats.half_width(v, single=0.0)
  return int(ks[i]), float(v.mean()), float(ci), v, float(flops[i])


def _groups(rows) -> list[dict]:
  """One dict per trained setting (seeds pooled), base first."""
  seen: dict[str, dict] = {}
  for r in rows:
    g = seen.setdefault(r["group"], dict(
        group=r["group"], axis=r["axis"], axis_value=r["axis_value"],
        k_train=r["k_train"], shots=r["shots"], tasks=r["tasks"],
        meta_training_flops=r["meta_training_flops"], seeds=set()))
    g["seeds"].add(r["seed"])
  out = sorted(seen.values(), key=lambda g: (g["axis"] != "base", g["axis"],
                                             g["axis_value"] or 0))
  for g in out:
    g["seeds"] = sorted(g["seeds"])
  return out


def _interp(x: float, xs: np.ndarray, ys: np.ndarray) -> Optional[float]:
  """Linear interpolation in log x within the measured range (None outside it)."""
  lx, lxs = math.log(x), np.log(xs)
  if lx < lxs.min() - 1e-9 or lx > lxs.max() + 1e-9:
    return None
  order = np.argsort(lxs)
  return float(np.interp(lx, lxs[order], ys[order]))


def analyse(rows: Sequence[dict], per_episode: dict[str, np.ndarray], *,
            metrics: Sequence[str], n_boot: int = 200, holdout_fraction: float = 0.3,
            include_k0: bool = False, seed: int = 0) -> dict:
  """Every fit and comparison of a sweep, JSON-ready after ``fits_lib._jsonable``.

  Args:
    rows: rows from ``sweep.collect`` (or synthetic rows of the same fields).
    per_episode: ``"{point}/{metric}" -> [episodes, P]``.
    metrics: error-like metrics to analyse, e.g. ``('error', 'loss')``.
    n_boot: bootstrap replicates per model and curve.
    holdout_fraction: fraction of the highest-compute points held out.
    include_k0: fit the test-time curve including k = 0 (no adaptation).
    seed: seed of the bootstrap's generator.

  Returns:
    A dict with ``groups`` and, per metric, ``test_time``, ``meta_training``,
    ``tasks`` and ``iso_flop`` (see the module docstring).
  """
  rng = np.random.default_rng(seed)
  cfg = dict(n_boot=n_boot, holdout_fraction=holdout_fraction, include_k0=include_k0)
  groups = _groups(rows)
  base = groups[0]
  if base["axis"] != "base":
    raise ValueError("the rows have no base point")
  out: dict[str, Any] = dict(groups=groups, metrics=list(metrics), base=base["group"],
                             holdout_fraction=holdout_fraction, n_boot=n_boot)
  for metric in metrics:
    res: dict[str, Any] = {}
    res["test_time"] = _test_time(rows, per_episode, metric, cfg, rng)
    summary = {}
    for g in groups:
      k, mean, ci, v, fl = _at_k(rows, per_episode, g["group"], metric, g["k_train"])
      summary[g["group"]] = dict(k=k, mean=mean, ci95=ci, adaptation_flops=fl, values=v)
    res["meta_training"] = {}
    for axis in ("k_train", "shots"):
      gs = [g for g in groups if g["axis"] in ("base", axis)]
      gs.sort(key=lambda g: g["meta_training_flops"])
      entry = dict(groups=[g["group"] for g in gs],
                   values=[g[axis] for g in gs],
                   meta_training_flops=[g["meta_training_flops"] for g in gs],
                   mean=[summary[g["group"]]["mean"] for g in gs],
                   ci95=[summary[g["group"]]["ci95"] for g in gs],
                   k=[summary[g["group"]]["k"] for g in gs])
      if len(gs) >= 4:
        entry["fits"] = fit_curve(
            np.array(entry["meta_training_flops"]), np.array(entry["mean"]),
            np.array(entry["ci95"]), [summary[g["group"]]["values"] for g in gs],
            n_boot=n_boot, holdout_fraction=1.0 / len(gs), rng=rng, paired=False)
      res["meta_training"][axis] = entry
    tasks = [g for g in groups if g["axis"] in ("base", "tasks")]
    res["tasks"] = []
    for g in tasks:
      k_max, mean_max, ci_max, _, _ = _at_k(rows, per_episode, g["group"], metric, 1e9)
      res["tasks"].append(dict(
          group=g["group"], tasks=g["tasks"], meta_training_flops=g["meta_training_flops"],
          k_max=k_max, k_max_mean=mean_max, k_max_ci95=ci_max,
          **{k: summary[g["group"]][k] for k in ("k", "mean", "ci95")}))
    res["iso_flop"] = _iso_flop(res, groups, summary, base)
    for s in summary.values():
      del s["values"]
    res["summary"] = summary
    out[metric] = res
  return fits_lib._jsonable(out)  # pylint: disable=protected-access


def _iso_flop(res, groups, summary, base) -> dict:
  """Spending FLOPs on shots vs on inner steps / K_train, at matched FLOPs."""
  tt = res["test_time"]
  test_time = []
  for g in groups:
    if g["axis"] != "shots":
      continue
    s = summary[g["group"]]
    steps_err = _interp(s["adaptation_flops"], tt["adaptation_flops"], tt["mean"])
    steps_ci = _interp(s["adaptation_flops"], tt["adaptation_flops"], tt["ci95"])
    k_eq = _interp(s["adaptation_flops"], tt["adaptation_flops"], tt["k"])
    test_time.append(dict(group=g["group"], shots=g["shots"], k=s["k"],
                          adaptation_flops=s["adaptation_flops"], shots_mean=s["mean"],
                          shots_ci95=s["ci95"], steps_mean=steps_err,
                          steps_ci95=steps_ci, steps_k_equivalent=k_eq))
  kt = res["meta_training"]["k_train"]
  meta = []
  for g in groups:
    if g["axis"] not in ("shots", "tasks") or len(kt["groups"]) < 2:
      continue
    s = summary[g["group"]]
    meta.append(dict(
        group=g["group"], axis=g["axis"], value=g["axis_value"],
        meta_training_flops=g["meta_training_flops"], mean=s["mean"], ci95=s["ci95"],
        k_train_mean=_interp(g["meta_training_flops"], np.array(kt["meta_training_flops"]),
                             np.array(kt["mean"])),
        k_train_ci95=_interp(g["meta_training_flops"], np.array(kt["meta_training_flops"]),
                             np.array(kt["ci95"])),
        k_train_equivalent=_interp(g["meta_training_flops"],
                                   np.array(kt["meta_training_flops"]),
                                   np.array(kt["values"], dtype=float))))
  return dict(test_time=test_time, meta_training=meta,
              base_k=summary[base["group"]]["k"])
