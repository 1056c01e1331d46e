"""Bootstrap intervals for a fitted curve's parameters and its band.

Along a test-time curve (the same episodes at every point) each replicate is a crossed
seeds × episodes replicate of the whole mean curve (``intervals.curve_replicates``) and
each parameter's percentile interval is scaled about the estimate to its delta-method
variance-components width (``CurveReplicates.delta``); for independent points episodes
are resampled per point. Each replicate curve is refitted (``fits``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from metalearn.scaling import intervals
from metalearn.scaling.curves import bootstrap_dict, get_model
from metalearn.scaling.fits import FitResult, fit_model, prepare


@dataclasses.dataclass(frozen=True)
class BootstrapResult:
  """Percentile bootstrap of a fit over episodes (and seeds).

  Attributes:
    model: model name.
    estimate: the fit to the observed mean curve.
    n_boot: bootstrap replicates drawn.
    success_fraction: fraction of replicates whose refit succeeded; intervals
      use only those.
    percentiles: the (low, high) percentiles reported.
    param_ci: ``{name: (low, high)}`` for each public parameter.
    compute_grid: C values at which the curve band is given.
    curve_estimate: ``estimate`` evaluated on the grid.
    curve_low, curve_high: pointwise percentile band of the refitted curves.
    param_samples: ``[n_success, k]`` public parameters of successful refits.
    widen: ``{name: factor}`` each parameter's percentile interval was widened by
      about the estimate to match its delta-method variance-components width
      (``intervals.CurveReplicates.delta``); None for independent points.
    single_seed: for paired points, whether there was one training seed (the
      intervals then cover evaluation episodes only); None for independent points.
  """
  model: str
  estimate: FitResult
  n_boot: int
  success_fraction: float
  percentiles: tuple[float, float]
  param_ci: Mapping[str, tuple[float, float]]
  compute_grid: np.ndarray
  curve_estimate: np.ndarray
  curve_low: np.ndarray
  curve_high: np.ndarray
  param_samples: np.ndarray = dataclasses.field(repr=False, compare=False)
  widen: Mapping[str, float] | None = None
  single_seed: bool | None = None

  def to_dict(self, include_samples: bool = False) -> dict[str, Any]:
    """A JSON-serialisable dict; parameter samples only if asked for."""
    return bootstrap_dict(self, include_samples)


def _resampled_means(values, n_boot, rng, seeds_axis, paired):
  """Observed mean curve [P], bootstrap mean curves [n_boot, P] and, for paired
  points, their ``intervals.CurveReplicates`` (None for independent points)."""
  if isinstance(values, np.ndarray) and values.ndim in (2, 3):
    v = np.asarray(values, dtype=float)
  elif isinstance(values, np.ndarray):
    raise ValueError(f'per_episode_values must be 2-D or 3-D; got {values.ndim}-D.')
  else:
    points = [np.asarray(p, dtype=float).ravel() for p in values]
    if len({len(p) for p in points}) == 1:
      v = np.stack(points)
    elif paired or seeds_axis is not None:
      raise ValueError('paired_episodes / seeds_axis need equal episode counts.')
    else:  # Ragged: one episode count per point.
      obs = np.array([p.mean() for p in points])
      boot = np.stack([p[rng.integers(0, len(p), (n_boot, len(p)))].mean(1)
                       for p in points], axis=1)
      return obs, boot, None
  if v.ndim == 3:
    v = np.moveaxis(v, 0 if seeds_axis is None else seeds_axis, 0)
  elif seeds_axis is not None:
    raise ValueError('seeds_axis given but per_episode_values has no seeds axis.')
  has_seeds = v.ndim == 3
  v = v if has_seeds else v[None]
  if not np.all(np.isfinite(v)):
    raise ValueError('per_episode_values must be finite.')
  if paired:
    # The same episodes at every point: crossed seeds × episodes replicates of the whole
    # curve, widened for few seeds.
    reps = intervals.curve_replicates(np.moveaxis(v, 1, 2), n_boot, rng)
    return reps.estimate, reps.replicates, reps
  n_seeds, n_points, n_eps = v.shape
  obs = v.mean(axis=(0, 2))
  chunk = max(1, int(4e6 // (n_seeds * n_points * n_eps)))  # Bounds memory.
  boot = []
  for start in range(0, n_boot, chunk):
    b = min(chunk, n_boot - start)
    s = (rng.integers(0, n_seeds, (b, n_seeds)) if has_seeds
         else np.zeros((b, 1), dtype=int))
    e = rng.integers(0, n_eps, (b, n_seeds, n_points, n_eps))
    p = np.arange(n_points)[None, None, :, None]
    boot.append(v[s[:, :, None, None], p, e].mean(axis=(1, 3)))
  return obs, np.concatenate(boot), None


def _sensitivities(model, c, y, w, theta_hat, x0, u_grid, p_est, c_est):
  """``d(public parameters)/dy`` ``[P, k]`` and ``d(curve on the grid)/dy`` ``[P, G]``
  by one-sided finite differences of warm-started refits (tolerances 1e-12)."""
  step = 1e-4 * max(float(np.ptp(y)), float(np.abs(y).max()), 1e-12)
  g_p, g_c = [], []
  for i in range(len(y)):
    y_i = y.copy()
    y_i[i] += step
    _, th, _ = fit_model(model, c, y_i, w, False, starts=[theta_hat])
    g_p.append((np.array(model.to_public(th, x0)) - p_est) / step)
    g_c.append((model.fn(u_grid, th) - c_est) / step)
  return np.nan_to_num(np.array(g_p)), np.nan_to_num(np.array(g_c))


def bootstrap(model_name: str, compute: Any, per_episode_values: Any,
              n_boot: int, rng: np.random.Generator, *,
              seeds_axis: int | None = None, compute_grid: Any = None,
              weights: Any = None, percentiles: tuple[float, float] = (2.5, 97.5),
              paired_episodes: bool = False) -> BootstrapResult:
  """Percentile bootstrap CIs for a model's parameters and curve.

  With ``paired_episodes`` (the same episodes scored at every point, as along a k-curve)
  each replicate is a crossed seeds × episodes replicate of the whole mean curve
  (``intervals.curve_replicates``: Rao-Wu rescaled, one draw for every point) and the
  percentile intervals are widened about the estimate by its Cochran-Cox factor, so
  that with few seeds they stay near their nominal coverage (the plain crossed
  bootstrap shrinks the seed variance by (S−1)/S and has normal tails). Otherwise
  episodes are resampled independently per point (and per resampled seed), and seeds
  with replacement if there is a seeds axis. Each replicate curve is refitted,
  warm-started from the fit to the observed means (falling back to the full
  multi-start if that fails).

  Args:
    model_name: a key of ``MODELS``.
    compute: 1-D compute values, one per point.
    per_episode_values: per-episode errors: a list (one per point) of 1-D
      arrays, possibly of different lengths; a ``[points, episodes]`` array; or
      a 3-D array with a seeds axis, ``[seeds, points, episodes]`` by default.
    n_boot: number of replicates.
    rng: the only source of randomness.
    seeds_axis: which axis of a 3-D array indexes seeds (default 0).
    compute_grid: C values for the curve band (default: 50 log-spaced points
      over the data range).
    weights: optional fixed weights for every refit, as in ``fit``.
    percentiles: low and high percentiles of the interval.
    paired_episodes: resample the same episode indices at every point (use when
      the same evaluation episodes are scored at every compute).

  Returns:
    A ``BootstrapResult``.
  """
  c, _, w = prepare(compute, np.zeros(np.shape(compute)), weights)
  obs, boot, crossed = _resampled_means(per_episode_values, int(n_boot), rng,
                                        seeds_axis, paired_episodes)
  if obs.shape != c.shape:
    raise ValueError(f'{len(c)} compute values but {len(obs)} points of episodes.')
  model = get_model(model_name)
  estimate, theta_hat, x0 = fit_model(model, c, obs, w, weights is not None)
  grid = (np.geomspace(c.min(), c.max(), 50) if compute_grid is None
          else np.asarray(compute_grid, dtype=float))
  u_grid = np.log(grid) - x0
  thetas = []
  for y_b in boot:
    r, th, _ = fit_model(model, c, y_b, w, False, starts=[theta_hat])
    if not r.success:
      r, th, _ = fit_model(model, c, y_b, w, False)
    if r.success:
      thetas.append(th)
  k = len(model.param_names)
  samples = np.array([model.to_public(th, x0) for th in thetas]).reshape(-1, k)
  curves = np.array([model.fn(u_grid, th) for th in thetas]).reshape(-1, len(grid))
  p_est = np.array(model.to_public(theta_hat, x0))
  c_est = model.fn(u_grid, theta_hat)
  widen_p, widen_c = np.ones(k), np.ones(len(grid))
  if crossed is not None and len(thetas) > 1:
    # Percentile intervals keep their shape, scaled about the estimate so that their
    # half-width is the delta-method variance-components one, multiplier × se
    # (``CurveReplicates.delta``). Scaling by the percentiles' own half-spread rather
    # than the replicates' sd keeps heavy-tailed replicates (Rao-Wu weights can be
    # negative) from shrinking the interval: with the sd, the exponent's 95% interval
    # covered 0.915 ± 0.020 in simulation (benchmarks/fit_coverage.py).
    g_p, g_c = _sensitivities(model, c, obs, w, theta_hat, x0, u_grid, p_est, c_est)
    for g, draws, out in ((g_p, samples, widen_p), (g_c, curves, widen_c)):
      se, mult = crossed.delta(g)
      lo, hi = np.percentile(draws, percentiles, axis=0)
      half = (hi - lo) / 2
      out[:] = np.where(half > 0, mult * se / np.where(half > 0, half, 1.0), 1.0)
  if thetas:
    p_lo, p_hi = np.percentile(samples, percentiles, axis=0)
    c_lo, c_hi = np.percentile(curves, percentiles, axis=0)
    p_lo, p_hi = p_est - widen_p * (p_est - p_lo), p_est + widen_p * (p_hi - p_est)
    c_lo, c_hi = c_est - widen_c * (c_est - c_lo), c_est + widen_c * (c_hi - c_est)
  else:
    p_lo = p_hi = np.full(k, math.nan)
    c_lo = c_hi = np.full(len(grid), math.nan)
  return BootstrapResult(
      model=model_name, estimate=estimate, n_boot=int(n_boot),
      success_fraction=len(thetas) / max(int(n_boot), 1),
      percentiles=tuple(map(float, percentiles)),
      param_ci={n: (float(a), float(b))
                for n, a, b in zip(model.param_names, p_lo, p_hi, strict=True)},
      compute_grid=grid, curve_estimate=model.fn(u_grid, theta_hat),
      curve_low=c_lo, curve_high=c_hi, param_samples=samples,
      widen=(None if crossed is None else
             {n: float(f) for n, f in zip(model.param_names, widen_p, strict=True)}),
      single_seed=None if crossed is None else crossed.single_seed)
