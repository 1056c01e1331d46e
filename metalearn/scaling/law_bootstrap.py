"""Percentile bootstrap of a two-variable law: intervals on its parameters (``bootstrap``)
and on its iso-loss lines and exchange rates (``LawBootstrap.exchange_rate``).

Each replicate resamples either the points (cases with replacement) or every point's
replicate values, and refits from the full fit of ``law_fit`` (see ``bootstrap``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from metalearn.scaling.curves import bootstrap_dict
from metalearn.scaling.curves import jsonable as _jsonable
from metalearn.scaling.law_checks import _replicate_list
from metalearn.scaling.law_fit import (_EXPONENT_BOUNDS, _GRID_KEYS, LawFit, _bounds,
                                       _grid_starts, _minimise, _select, fit)
from metalearn.scaling.law_form import (PARAM_NAMES, _from_log_public, _prepare, _to_public,
                                        exchange_rate, iso_loss_curve)

__all__ = ['LawBootstrap', 'bootstrap']


@dataclasses.dataclass(frozen=True)
class LawBootstrap:
  """Percentile bootstrap of a two-variable law.

  Attributes:
    estimate: the fit to the observed data (point means when replicates given).
    n_boot: replicates drawn.
    n_success: replicates whose refit converged; CIs use only those.
    resampled: 'points' (cases with replacement) or 'replicates' (each point's
      replicate values with replacement, independently per point).
    percentiles: the (low, high) percentiles reported.
    param_ci: ``{name: (low, high)}`` for E, A, alpha, B, beta.
    param_samples: ``[n_success, 5]`` public parameters of converged refits, in
      ``PARAM_NAMES`` order.
  """
  estimate: LawFit
  n_boot: int
  n_success: int
  resampled: str
  percentiles: tuple[float, float]
  param_ci: Mapping[str, tuple[float, float]]
  param_samples: np.ndarray = dataclasses.field(repr=False, compare=False)

  def samples(self) -> list[dict[str, float]]:
    """The converged replicates' parameters as dicts."""
    return [dict(zip(PARAM_NAMES, map(float, s))) for s in self.param_samples]

  def exchange_rate(self, loss_target: float, x: Any) -> dict[str, Any]:
    """Iso-loss Y and exchange rate at ``x`` with percentile CIs.

    Args:
      loss_target: the loss L* of the iso-loss line.
      x: X values (1-D or scalar).

    Returns:
      JSON-ready dict: ``x``, ``loss_target``, ``y`` / ``slope`` (estimate),
      ``y_ci`` / ``slope_ci`` (``[low, high]`` per x, over replicates for which
      L* is reachable at that x), ``reachable_fraction`` per x.
    """
    x = np.atleast_1d(np.asarray(x, dtype=float))
    ys, ss = [], []
    for p in self.samples():
      ys.append(iso_loss_curve(p, loss_target, x))
      ss.append(exchange_rate(p, loss_target, x))
    ys, ss = np.array(ys).reshape(-1, len(x)), np.array(ss).reshape(-1, len(x))
    ok = np.isfinite(ys)

    def ci(a):
      return [tuple(np.percentile(a[ok[:, j], j], self.percentiles)) if ok[:, j].any()
              else (math.nan, math.nan) for j in range(len(x))]

    return _jsonable({
        'x': x, 'loss_target': float(loss_target),
        'y': iso_loss_curve(self.estimate.params, loss_target, x),
        'slope': exchange_rate(self.estimate.params, loss_target, x),
        'y_ci': ci(ys), 'slope_ci': ci(ss),
        'reachable_fraction': ok.mean(axis=0) if len(ys) else np.zeros(len(x))})

  def to_dict(self, include_samples: bool = False) -> dict[str, Any]:
    """A JSON-serialisable dict; parameter samples only if asked for."""
    return bootstrap_dict(self, include_samples)


def bootstrap(x: Any, y: Any, values: Any, n_boot: int, rng: np.random.Generator, *,
              weights: Any = None, delta: float = 1e-3,
              grid: Mapping[str, Sequence[float]] | None = None, n_refine: int | None = 64,
              fallback_starts: int = 16,
              exponent_bounds: tuple[float, float] = _EXPONENT_BOUNDS, noise_sd: Any = None,
              level: float = 0.01,
              percentiles: tuple[float, float] = (2.5, 97.5)) -> LawBootstrap:
  """Percentile bootstrap CIs for every parameter.

  ``values`` is either a 1-D array of losses, one per point (each replicate then
  resamples the points with replacement, with their weights), or per-point
  replicate values, a ``[points, replicates]`` array or a list of 1-D arrays
  (each replicate then resamples every point's values with replacement and fits
  their means). Each refit starts from the full fit; if that does not converge,
  from it and the ``fallback_starts`` best grid points.

  Args:
    x: 1-D X values > 0, one per point.
    y: 1-D Y values > 0.
    values: losses, or per-point replicate losses (see above).
    n_boot: number of replicates.
    rng: the only source of randomness.
    weights: optional per-point weights, as in ``fit``.
    delta: Huber threshold, as in ``fit``.
    grid: start grid for the full fit, as in ``fit``.
    n_refine: as in ``fit``, for the full fit.
    fallback_starts: grid points tried when a warm-started refit fails.
    exponent_bounds: box for alpha and beta.
    noise_sd: optional SD of log L per point for the estimate's ``lack_of_fit``.
    level: significance level for ``lack_of_fit``.
    percentiles: low and high percentiles of the interval.

  Returns:
    A ``LawBootstrap``.
  """
  arr = values if isinstance(values, np.ndarray) else None
  if (arr.ndim == 1) if arr is not None else all(np.ndim(v) == 0 for v in values):
    loss, reps, resampled = np.asarray(values, dtype=float), None, 'points'
  else:
    reps = _replicate_list(values)
    loss, resampled = np.array([p.mean() for p in reps]), 'replicates'
  estimate = fit(x, y, loss, weights=weights, delta=delta, grid=grid, n_refine=n_refine,
                 exponent_bounds=exponent_bounds, noise_sd=noise_sd, level=level)
  d = _prepare(x, y, loss, weights)
  theta_hat = _from_log_public(np.array([estimate.log_params[k] for k in _GRID_KEYS]), d)
  starts, _, _ = _grid_starts(d, grid, loss)
  box = _bounds(d, exponent_bounds)  # The full fit's box, so at_bound means the same.
  n = len(loss)
  samples = []
  for _ in range(int(n_boot)):
    if reps is None:
      idx = rng.integers(0, n, n)
      db = dataclasses.replace(d, u=d.u[idx], v=d.v[idx], logl=d.logl[idx], w=d.w[idx])
    else:
      means = np.array([p[rng.integers(0, len(p), len(p))].mean() for p in reps])
      db = dataclasses.replace(d, logl=np.log(means))
    th, _, ok, _, _ = _minimise(db, theta_hat[None], delta, box)
    if not ok:
      more = starts[_select(db, starts, delta, fallback_starts)]
      th, _, ok, _, _ = _minimise(db, np.vstack([th[None], more]), delta, box)
    if ok:
      samples.append(list(_to_public(th, d).values()))
  samples = np.array(samples, dtype=float).reshape(-1, len(PARAM_NAMES))
  if len(samples):
    lo, hi = np.percentile(samples, percentiles, axis=0)
  else:
    lo = hi = np.full(len(PARAM_NAMES), math.nan)
  return LawBootstrap(
      estimate=estimate, n_boot=int(n_boot), n_success=len(samples), resampled=resampled,
      percentiles=tuple(map(float, percentiles)),
      param_ci={k: (float(a), float(b)) for k, a, b in zip(PARAM_NAMES, lo, hi)},
      param_samples=samples)
