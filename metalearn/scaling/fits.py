"""Curve fits for scaling experiments: few-shot error against compute C.

A fitted curve describes, it does not explain. A power law ``E + A*C^-alpha`` has
an irreducible floor ``E``; over a short range it cannot be told from part of a
saturating curve; and a good in-sample fit says nothing about extrapolation. So
every fit here is meant to be compared with alternatives (``compare``: AIC,
AICc, BIC, Akaike weights), tested on held-out high compute
(``extrapolation_test``) and given bootstrap confidence intervals over episodes
and seeds (``bootstrap``). A fit that did not converge, or with a parameter at a
bound of its box, is not an estimate: it is kept, with the reason, but not ranked.

The curve forms and their public parameters are in ``metalearn.scaling.curves``,
whose ``MODELS``, ``DEFAULT_MODELS``, ``get_model`` and ``predict`` are re-exported
here. Fits minimise (optionally weighted) squared error in err-space, so the
likelihoods, and hence information criteria, are comparable across models.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import optimize
from scipy import stats

from metalearn.scaling.curves import DEFAULT_MODELS, MODELS, bootstrap_dict, bound_hits
from metalearn.scaling.curves import get_model, predict
from metalearn.scaling.curves import jsonable as _jsonable
from metalearn.scaling import intervals

__all__ = [
    'DEFAULT_MODELS', 'MODELS', 'BootstrapResult', 'FitResult', 'bootstrap', 'compare',
    'extrapolation_test', 'fit', 'get_model', 'predict',
]


@dataclasses.dataclass(frozen=True)
class FitResult:
  """One least-squares fit.

  The likelihood is Gaussian with variance ``sigma^2 / weights`` and sigma^2
  estimated, so weights act as relative inverse variances and ``k + 1``
  parameters enter the information criteria.

  Attributes:
    model: model name.
    params: public parameters by name (see ``metalearn.scaling.curves``).
    rss: residual sum of squares, weighted if weights were given.
    n: number of points; k: number of curve parameters.
    loglik: maximised Gaussian log-likelihood.
    aic, aicc, bic: information criteria (aicc is inf when n <= k + 2).
    success: the optimiser converged (scipy ``least_squares`` status > 0).
    message: the optimiser's message.
    at_bound: public names of parameters that ended at (within a relative 1e-6
      of) a bound of the fitting box: their values are the box's, not estimates.
    rankable: converged with no parameter at a bound; only such fits are ranked.
    unranked_reason: why not, as a sentence; None when rankable.
    c_min, c_max: compute range of the data: the fit says nothing outside it
      unless ``extrapolation_test`` says otherwise.
    weighted: weights were given.
    criterion, delta_ic, ic_weight, rank: set by ``compare`` only: the
      criterion, its difference to the best rankable fit, the Akaike weight and
      the 1-based rank (None and weight 0 for a fit that is not rankable).
  """
  model: str
  params: Mapping[str, float]
  rss: float
  n: int
  k: int
  loglik: float
  aic: float
  aicc: float
  bic: float
  success: bool
  message: str
  c_min: float
  c_max: float
  weighted: bool
  at_bound: list[str] = dataclasses.field(default_factory=list)
  rankable: bool = True
  unranked_reason: str | None = None
  criterion: str | None = None
  delta_ic: float | None = None
  ic_weight: float | None = None
  rank: int | None = None

  def predict(self, compute: Any) -> np.ndarray:
    """The fitted curve at ``compute``."""
    return predict(self.model, compute, self.params)

  def to_dict(self) -> dict[str, Any]:
    """A JSON-serialisable dict of every field."""
    return _jsonable(dataclasses.asdict(self))


def _prepare(compute, y, weights):
  c = np.asarray(compute, dtype=float)
  y = np.asarray(y, dtype=float)
  if c.ndim != 1 or c.shape != y.shape:
    raise ValueError(f'compute and y must be 1-D of equal length; got {c.shape}, {y.shape}.')
  if not (np.all(np.isfinite(c)) and np.all(c > 0) and np.all(np.isfinite(y))):
    raise ValueError('compute must be finite and > 0, and y finite.')
  w = np.ones_like(y) if weights is None else np.asarray(weights, dtype=float)
  if w.shape != y.shape or not np.all(np.isfinite(w) & (w > 0)):
    raise ValueError('weights must be finite, > 0 and shaped like y.')
  return c, y, w


def _least_squares(model, u, y, sw, starts, lo, hi):
  """Multi-start bounded least squares; returns (theta, rss, success, message)."""
  pad = 1e-9 * (hi - lo)
  best = None
  for th0 in starts:
    th0 = np.clip(np.nan_to_num(th0, nan=0.0), lo + pad, hi - pad)
    try:
      r = optimize.least_squares(
          lambda th: sw * (model.fn(u, th) - y), th0,
          jac=lambda th: sw[:, None] * model.jac(u, th), bounds=(lo, hi),
          method='trf', x_scale='jac', ftol=1e-12, xtol=1e-12, gtol=1e-12,
          max_nfev=400)
    except (ValueError, FloatingPointError) as e:  # pragma: no cover
      best = best or (th0, math.inf, False, str(e))
      continue
    rss = float(2.0 * r.cost)
    ok = bool(r.success) and math.isfinite(rss)
    if best is None or (ok, -rss) > (best[2], -best[1]):
      best = (r.x, rss, ok, str(r.message))
  return best


def _rank_check(model, theta, lo, hi, success, message):
  """(at_bound names, rankable, reason): a fit at a bound or unconverged is not ranked."""
  hits = bound_hits(model, theta, lo, hi)
  reasons = [] if success else [f'the optimiser did not converge ({message})']
  if hits:
    reasons.append('parameter(s) at a bound of the fitting box, so not estimated: '
                   + ', '.join(f'{n} at its {side} bound' for n, side in hits))
  reason = (f'{model.name} not ranked: ' + '; '.join(reasons) + '.') if reasons else None
  return [n for n, _ in hits], not reasons, reason


def _result(model, theta, x0, rss, n, weights, success, message, c, weighted, box):
  k = len(model.param_names)
  at_bound, rankable, reason = _rank_check(model, theta, *box, success, message)
  rss_ = max(rss, np.finfo(float).tiny)
  loglik = (-0.5 * n * (math.log(2 * math.pi * rss_ / n) + 1.0)
            + 0.5 * float(np.sum(np.log(weights))))
  p = k + 1
  aic = -2.0 * loglik + 2.0 * p
  aicc = aic + 2.0 * p * (p + 1) / (n - p - 1) if n - p - 1 > 0 else math.inf
  pub = model.to_public(theta, x0)
  return FitResult(
      model=model.name, params=dict(zip(model.param_names, map(float, pub), strict=True)),
      rss=rss, n=n, k=k, loglik=loglik, aic=aic, aicc=aicc,
      bic=-2.0 * loglik + p * math.log(n), success=success, message=message,
      c_min=float(c.min()), c_max=float(c.max()), weighted=weighted,
      at_bound=at_bound, rankable=rankable, unranked_reason=reason)


def _fit(model, c, y, w, weighted, starts=None):
  """Returns (FitResult, internal theta, x0); starts default to the model's."""
  x = np.log(c)
  x0 = float(np.mean(x))
  u = x - x0
  starts = model.starts(u, y) if starts is None else starts
  box = model.bounds(u, y)
  theta, rss, ok, msg = _least_squares(model, u, y, np.sqrt(w), starts, *box)
  return _result(model, theta, x0, rss, len(y), w, ok, msg, c, weighted, box), theta, x0


def fit(model_name: str, compute: Any, y: Any, weights: Any = None) -> FitResult:
  """Fits one model by multi-start bounded (weighted) least squares.

  Args:
    model_name: a key of ``MODELS``.
    compute: 1-D compute values C > 0.
    y: 1-D error values, same length.
    weights: optional positive weights, e.g. ``1 / se**2``; relative scale only.

  Returns:
    The best fit over all starts (successful fits preferred, then lowest rss).
  """
  c, y, w = _prepare(compute, y, weights)
  model = get_model(model_name)
  if len(y) <= len(model.param_names):
    raise ValueError(f'{model_name} needs more than {len(model.param_names)} points; got {len(y)}.')
  return _fit(model, c, y, w, weights is not None)[0]


def compare(compute: Any, y: Any, models: Sequence[str] = DEFAULT_MODELS,
            weights: Any = None, criterion: str = 'aic') -> list[FitResult]:
  """Fits several models and ranks them by an information criterion.

  Args:
    compute: 1-D compute values C > 0.
    y: 1-D error values.
    models: model names; ones with too few points for their parameters are skipped.
    weights: optional weights, as in ``fit``.
    criterion: 'aic' (default), 'aicc' or 'bic'.

  Returns:
    Every fit: the rankable ones (converged, no parameter at a bound) first, best
    first, with ``rank`` 1, 2, ... and ``ic_weight`` (Akaike weight
    ``exp(-delta/2)`` normalised over them); then the others, with rank None,
    weight 0 and their ``unranked_reason``. ``delta_ic`` is the criterion minus
    that of the best rankable fit (of the best converged one if none is
    rankable) for every converged fit, None for unconverged ones; for an
    unranked fit it is for reference only, not evidence for or against it.
  """
  if criterion not in ('aic', 'aicc', 'bic'):
    raise ValueError(f"criterion must be 'aic', 'aicc' or 'bic'; got {criterion!r}.")
  n = np.asarray(y).shape[0]
  fits = [fit(m, compute, y, weights) for m in models
          if len(get_model(m).param_names) < n]
  fits.sort(key=lambda f: (not f.rankable, not f.success, getattr(f, criterion)))
  scores = [getattr(f, criterion) for f in fits]
  ranked = [s for f, s in zip(fits, scores, strict=True) if f.rankable]
  ref = min(ranked or [s for f, s in zip(fits, scores, strict=True) if f.success]
            or [math.nan])
  rel = [math.exp(-0.5 * (s - ref)) if f.rankable else 0.0
         for f, s in zip(fits, scores, strict=True)]
  total = sum(rel)
  return [dataclasses.replace(
      f, criterion=criterion, delta_ic=s - ref if f.success else None,
      ic_weight=r / total if total > 0 else 0.0, rank=i + 1 if f.rankable else None)
          for i, (f, s, r) in enumerate(zip(fits, scores, rel, strict=True))]


def extrapolation_test(model_name: str, compute: Any, y: Any, *,
                       holdout_fraction: float | None = None,
                       n_holdout: int | None = None,
                       weights: Any = None) -> dict[str, Any]:
  """Fits on the lowest-compute points and predicts the highest-compute ones.

  Args:
    model_name: a key of ``MODELS``.
    compute: 1-D compute values C > 0 (any order).
    y: 1-D error values.
    holdout_fraction: fraction of points held out (default 0.25 if neither
      this nor ``n_holdout`` is given); rounded, at least one point.
    n_holdout: number of highest-compute points held out.
    weights: optional weights, as in ``fit`` (training part used).

  Returns:
    JSON-ready dict: ``fit`` (on the training part), ``n_train``, ``n_holdout``,
    ``c_split`` (largest training C), ``compute_holdout``, ``y_holdout``,
    ``y_pred``, ``rmse``, ``max_abs_error``, ``bias`` (mean of pred - y; > 0
    means the model predicts too high an error) and in-sample ``train_rmse``.
  """
  c, y, w = _prepare(compute, y, weights)
  if holdout_fraction is not None and n_holdout is not None:
    raise ValueError('Give holdout_fraction or n_holdout, not both.')
  if n_holdout is None:
    frac = 0.25 if holdout_fraction is None else holdout_fraction
    if not 0.0 < frac < 1.0:
      raise ValueError(f'holdout_fraction must be in (0, 1); got {frac}.')
    n_holdout = max(1, round(frac * len(y)))
  order = np.argsort(c, kind='stable')
  c, y, w = c[order], y[order], w[order]
  n_train = len(y) - int(n_holdout)
  if n_holdout < 1 or n_train <= len(get_model(model_name).param_names):
    raise ValueError(f'Cannot hold out {n_holdout} of {len(y)} points for {model_name}.')
  result = fit(model_name, c[:n_train], y[:n_train],
               None if weights is None else w[:n_train])
  pred = result.predict(c[n_train:])
  err = pred - y[n_train:]
  train_err = result.predict(c[:n_train]) - y[:n_train]
  return _jsonable({
      'model': model_name, 'fit': result.to_dict(), 'n_train': n_train,
      'n_holdout': int(n_holdout), 'c_split': c[n_train - 1],
      'compute_holdout': c[n_train:], 'y_holdout': y[n_train:], 'y_pred': pred,
      'rmse': math.sqrt(float(np.mean(err**2))),
      'max_abs_error': float(np.max(np.abs(err))), 'bias': float(np.mean(err)),
      'train_rmse': math.sqrt(float(np.mean(train_err**2))),
  })


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
    _, th, _ = _fit(model, c, y_i, w, False, starts=[theta_hat])
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
  c, _, w = _prepare(compute, np.zeros(np.shape(compute)), weights)
  obs, boot, crossed = _resampled_means(per_episode_values, int(n_boot), rng,
                                        seeds_axis, paired_episodes)
  if obs.shape != c.shape:
    raise ValueError(f'{len(c)} compute values but {len(obs)} points of episodes.')
  model = get_model(model_name)
  estimate, theta_hat, x0 = _fit(model, c, obs, w, weights is not None)
  grid = (np.geomspace(c.min(), c.max(), 50) if compute_grid is None
          else np.asarray(compute_grid, dtype=float))
  u_grid = np.log(grid) - x0
  thetas = []
  for y_b in boot:
    r, th, _ = _fit(model, c, y_b, w, False, starts=[theta_hat])
    if not r.success:
      r, th, _ = _fit(model, c, y_b, w, False)
    if r.success:
      thetas.append(th)
  k = len(model.param_names)
  samples = np.array([model.to_public(th, x0) for th in thetas]).reshape(-1, k)
  curves = np.array([model.fn(u_grid, th) for th in thetas]).reshape(-1, len(grid))
  p_est = np.array(model.to_public(theta_hat, x0))
  c_est = model.fn(u_grid, theta_hat)
  widen_p, widen_c = np.ones(k), np.ones(len(grid))
  if crossed is not None and len(thetas) > 1:
    # Percentile intervals keep their shape, scaled about the estimate to the
    # delta-method variance-components width (``CurveReplicates.delta``).
    g_p, g_c = _sensitivities(model, c, obs, w, theta_hat, x0, u_grid, p_est, c_est)
    z = float(stats.norm.ppf(1 - percentiles[0] / 100))
    for g, draws, out in ((g_p, samples, widen_p), (g_c, curves, widen_c)):
      se, mult = crossed.delta(g)
      sd = draws.std(0, ddof=1)
      out[:] = np.where(sd > 0, mult * se / (z * np.where(sd > 0, sd, 1.0)), 1.0)
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
