"""Fitting the two-variable law ``L(X, Y) = E + A * X**-alpha + B * Y**-beta``.

The fit follows Hoffmann et al. 2022 (Chinchilla, Approach 3) and its replication by
Besiroglu et al. 2024 ("Chinchilla Scaling: A replication attempt"):

* parametrise ``E = exp(e)``, ``A = exp(a)``, ``B = exp(b)``, so the law in log
  space is ``log L = logsumexp(a - alpha * log X, b - beta * log Y, e)``;
* minimise ``sum_i w_i * huber_delta(log L_pred_i - log L_obs_i)`` with
  ``delta = 1e-3`` by default (``huber(r) = r**2 / 2`` for ``|r| <= delta``, else
  ``delta * (|r| - delta / 2)``). With residuals much larger than delta this is
  close to least absolute deviations in log L, hence robust to outliers;
  ``delta=math.inf`` gives least squares in log L;
* run L-BFGS-B from every point of a product grid of starts and keep the best.

The optimiser works in the centred coordinates of ``law_form`` (``a_c``, ``b_c``);
reported parameters are always the public ``E, A, alpha, B, beta``.

Start grids. ``CHINCHILLA_GRID`` is the papers' grid (4500 starts, in ``e, a,
alpha, b, beta``); it suits losses of order 1 and X, Y ~ 1e8..1e12 and can miss
elsewhere. The default grid (``default_grid``) is a product grid in the centred
coordinates built from the data's loss range, 1600 starts. By default L-BFGS-B
runs from the 64 grid points with the lowest initial objective (``n_refine``;
the screen is one vectorised pass): one L-BFGS-B run costs ~10-40 ms, so every
start of a 1600-point grid takes ~20-60 s. ``n_refine=None`` runs them all, as
the papers do.

Diagnostics. Every fit carries ``at_bound`` (a parameter on its box bound: an
exponent at 0; E at its floor of 1e-4 min L, i.e. no detectable floor; ...) and
``grid_edge`` (the fitted value lies outside the range the start grid spanned in
that coordinate: widen the grid), plus ``lack_of_fit`` (see ``law_checks``).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import types
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import optimize

from metalearn.scaling.curves import jsonable as _jsonable
from metalearn.scaling.law_checks import _lack_of_fit
from metalearn.scaling.law_form import (PARAM_NAMES, _Data, _from_log_public, _log_public,
                                        _prepare, _to_public, predict)

__all__ = ['CHINCHILLA_GRID', 'LawFit', 'default_grid', 'fit']

_GRID_KEYS = ('e', 'a', 'alpha', 'b', 'beta')  # Log-space coordinates, same order.

# Hoffmann et al. 2022, Appendix D.2, also used by Besiroglu et al. 2024.
CHINCHILLA_GRID: Mapping[str, tuple[float, ...]] = types.MappingProxyType({
    'e': (-1.0, -0.5, 0.0, 0.5, 1.0),
    'a': (0.0, 5.0, 10.0, 15.0, 20.0, 25.0),
    'alpha': (0.0, 0.5, 1.0, 1.5, 2.0),
    'b': (0.0, 5.0, 10.0, 15.0, 20.0, 25.0),
    'beta': (0.0, 0.5, 1.0, 1.5, 2.0),
})
_EXPONENT_GRID = (0.1, 0.25, 0.5, 1.0, 2.0)
_EXPONENT_BOUNDS = (0.0, 5.0)
_LOG_SPAN = 25.0  # How far below log min L the terms a_c and b_c may go.
_E_FLOOR = 1e-4  # E >= _E_FLOOR * min L: below it the floor is undetectable in the data.


def _huber(r: np.ndarray, delta: float) -> np.ndarray:
  a = np.abs(r)
  return np.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta))


def _log_pred(theta: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
  """``logsumexp(e, a_c - alpha u, b_c - beta v)`` for theta ``[..., 5]``, broadcast."""
  th = np.asarray(theta, dtype=float)[..., None]
  t = np.stack(np.broadcast_arrays(th[..., 0, :], th[..., 1, :] - th[..., 2, :] * u,
                                   th[..., 3, :] - th[..., 4, :] * v))
  m = t.max(axis=0)
  return m + np.log(np.exp(t - m).sum(axis=0))


def _objective(theta: np.ndarray, d: _Data, delta: float,
               scale: float) -> tuple[float, np.ndarray]:
  """Scaled weighted Huber loss and its gradient in centred coordinates.

  Written with few numpy calls: it is the inner loop of every fit.
  """
  t = (d.design @ theta).reshape(3, -1)
  m = t.max(axis=0)
  p = np.exp(t - m)
  s = p.sum(axis=0)
  r = m + np.log(s) - d.logl
  psi = np.minimum(np.maximum(r, -delta), delta)  # huber'(r); huber(r) = psi * (r - psi / 2).
  g = (p * (d.w * psi / s)).ravel()
  return float(d.w @ (psi * (r - 0.5 * psi))) * scale, (g @ d.design) * scale


def _bounds(d: _Data, exponent_bounds: tuple[float, float]) -> np.ndarray:
  """``[5, 2]`` box for the centred coordinates, from the data's loss range."""
  lo, hi = float(d.logl.min()), float(d.logl.max())
  return np.array([[lo + math.log(_E_FLOOR), hi], [lo - _LOG_SPAN, hi + 10.0],
                   list(exponent_bounds),
                   [lo - _LOG_SPAN, hi + 10.0], list(exponent_bounds)], dtype=float)


def default_grid(loss: Any) -> dict[str, tuple[float, ...]]:
  """The default start grid, in centred coordinates, from the observed losses.

  ``e`` spans ``log(min L * {0.01, 0.3, 0.6, 0.9})``; ``a_c`` and ``b_c`` (the
  log of each term at the data's geometric centre) span ``log(mean L * {0.03,
  0.1, 0.3, 1})``; alpha and beta span ``{0.1, 0.25, 0.5, 1, 2}``: 1600 starts.

  Args:
    loss: the observed losses (> 0).

  Returns:
    ``{'e', 'a_c', 'alpha', 'b_c', 'beta'}`` to tuples of start values.
  """
  loss = np.asarray(loss, dtype=float)
  lmin, lmean = float(loss.min()), float(loss.mean())
  terms = tuple(math.log(lmean * f) for f in (0.03, 0.1, 0.3, 1.0))
  return {'e': tuple(math.log(lmin * f) for f in (0.01, 0.3, 0.6, 0.9)), 'a_c': terms,
          'alpha': _EXPONENT_GRID, 'b_c': terms, 'beta': _EXPONENT_GRID}


def _grid_starts(d: _Data, grid: Mapping[str, Sequence[float]] | None,
                 loss: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
  """Returns (starts ``[S, 5]`` centred, grid points ``[S, 5]`` in grid coords, centred?)."""
  if grid is None:
    g = default_grid(loss)
    keys, centred = ('e', 'a_c', 'alpha', 'b_c', 'beta'), True
  else:
    if set(grid) != set(_GRID_KEYS):
      raise ValueError(f'grid needs exactly the keys {_GRID_KEYS}; got {sorted(grid)}.')
    g, keys, centred = grid, _GRID_KEYS, False
  axes = [np.asarray(g[k], dtype=float).ravel() for k in keys]
  if any(a.size == 0 or not np.all(np.isfinite(a)) for a in axes):
    raise ValueError('Every grid axis needs at least one finite value.')
  points = np.array(list(itertools.product(*axes)))
  return (points if centred else _from_log_public(points, d)), points, centred


@dataclasses.dataclass(frozen=True)
class LawFit:
  """One fit of ``L = E + A * X**-alpha + B * Y**-beta``.

  Attributes:
    params: ``{'E', 'A', 'alpha', 'B', 'beta'}``.
    log_params: the same in the papers' coordinates ``{'e', 'a', 'alpha', 'b',
      'beta'}`` (``e = log E``, ``a = log A``, ``b = log B``).
    loss: the minimised objective ``sum_i w_i * huber_delta(r_i)`` with
      ``r_i = log L_pred_i - log L_obs_i``.
    delta: the Huber threshold (inf: least squares).
    n: number of points.
    converged: L-BFGS-B reported success for the winning start.
    message: its message.
    n_starts: starts run through L-BFGS-B; n_grid: size of the start grid.
    start_index: index of the winning start in the row-major product grid (keys
      in the order e, a[_c], alpha, b[_c], beta).
    start: the winning start, in the grid's coordinates.
    grid_coords: 'centred' (default grid: a_c, b_c) or 'log' (a, b as given).
    at_bound: per public parameter, 'lower' / 'upper' when it sits on its box
      bound, else None. E's lower bound is ``1e-4 * min L``: 'lower' there reads
      "no detectable floor" (the gradient in e vanishes as E -> 0, so a looser
      box would leave E at an arbitrary tiny value instead).
    grid_edge: per public parameter, True when the fitted value lies outside the
      range of the start grid in that coordinate.
    rms_log_residual, max_abs_log_residual: of ``r``.
    x_range, y_range: data ranges: the law says nothing outside them unless
      tested there.
    weighted: weights were given.
    lack_of_fit: see ``lack_of_fit``.
  """
  params: Mapping[str, float]
  log_params: Mapping[str, float]
  loss: float
  delta: float
  n: int
  converged: bool
  message: str
  n_starts: int
  n_grid: int
  start_index: int
  start: Mapping[str, float]
  grid_coords: str
  at_bound: Mapping[str, str | None]
  grid_edge: Mapping[str, bool]
  rms_log_residual: float
  max_abs_log_residual: float
  x_range: tuple[float, float]
  y_range: tuple[float, float]
  weighted: bool
  lack_of_fit: Mapping[str, Any]

  def predict(self, x: Any, y: Any) -> np.ndarray:
    """The fitted law at ``(x, y)``, broadcast."""
    return predict(self.params, x, y)

  def to_dict(self) -> dict[str, Any]:
    """A JSON-serialisable dict of every field (inf delta as None)."""
    return _jsonable(dataclasses.asdict(self))


def _lbfgsb(d: _Data, th0: np.ndarray, delta: float, scale: float, box: np.ndarray):
  th0 = np.clip(th0, box[:, 0], box[:, 1])
  r = optimize.minimize(_objective, th0, args=(d, delta, scale), jac=True, method='L-BFGS-B',
                        bounds=box, options={'maxiter': 2000, 'ftol': 1e-15, 'gtol': 1e-10})
  return np.asarray(r.x), float(r.fun), bool(r.success) and math.isfinite(r.fun), str(r.message)


def _minimise(d: _Data, starts: np.ndarray, delta: float, box: np.ndarray):
  """L-BFGS-B from each start; returns (theta, objective, success, message, index).

  Among the runs whose objective is within a relative 1e-9 of the lowest, a
  converged one wins (ties to the lowest objective); if none converged, the best
  is restarted once from where it stopped (line-search failures near the Huber
  kinks usually clear then).
  """
  scale = 1.0 / float(d.w.sum()) / min(delta, 1.0)
  runs = [_lbfgsb(d, th0, delta, scale, box) for th0 in starts]
  f = np.array([r[1] for r in runs])
  fmin = float(np.min(f))
  near = np.flatnonzero(f <= fmin + 1e-9 * abs(fmin) + 1e-300)
  ok = [i for i in near if runs[i][2]]
  i = int(min(ok, key=lambda j: f[j])) if ok else int(near[np.argmin(f[near])])
  theta, fun, success, msg = runs[i]
  if not success:
    th2, f2, ok2, msg2 = _lbfgsb(d, theta, delta, scale, box)
    if f2 <= fun + 1e-9 * abs(fun):
      theta, fun, success, msg = th2, f2, ok2, msg2
  return theta, fun / scale, success, msg, i


def _select(d: _Data, starts: np.ndarray, delta: float, n_refine: int | None) -> np.ndarray:
  """Indices of the ``n_refine`` starts with the lowest objective (all if None), sorted."""
  if n_refine is None or n_refine >= len(starts):
    return np.arange(len(starts))
  if n_refine < 1:
    raise ValueError(f'n_refine must be >= 1; got {n_refine}.')
  f = np.concatenate([(d.w * _huber(_log_pred(s, d.u, d.v) - d.logl, delta)).sum(axis=-1)
                      for s in np.array_split(starts, max(1, len(starts) // 512))])
  return np.sort(np.argsort(f, kind='stable')[:n_refine])


def fit(x: Any, y: Any, loss: Any, *, weights: Any = None, delta: float = 1e-3,
        grid: Mapping[str, Sequence[float]] | None = None, n_refine: int | None = 64,
        exponent_bounds: tuple[float, float] = _EXPONENT_BOUNDS, noise_sd: Any = None,
        level: float = 0.01) -> LawFit:
  """Fits ``L = E + A * X**-alpha + B * Y**-beta`` by multi-start Huber L-BFGS-B.

  Args:
    x: 1-D X values > 0 (e.g. meta-training FLOPs).
    y: 1-D Y values > 0 (e.g. test-time FLOPs), same length.
    loss: 1-D observed losses > 0.
    weights: optional per-point weights > 0 multiplying each Huber term.
    delta: Huber threshold on log-loss residuals (1e-3 as in the papers;
      ``math.inf`` for least squares).
    grid: start grid ``{'e', 'a', 'alpha', 'b', 'beta'}`` in the papers'
      coordinates (e.g. ``CHINCHILLA_GRID``); None for ``default_grid``.
    n_refine: run L-BFGS-B only from this many grid points with the lowest
      initial objective (the screening is one vectorised pass over the grid);
      None runs from every grid point, as the papers do, which costs about
      ``n_grid`` times one start (~10-40 ms each).
    exponent_bounds: box for alpha and beta. The rest of the box (centred
      coordinates): ``E`` in ``[1e-4 min L, max L]``, ``a_c`` and ``b_c`` in
      ``[log min L - 25, log max L + 10]``.
    noise_sd: optional SD of log L per point, for ``lack_of_fit``.
    level: significance level for ``lack_of_fit``.

  Returns:
    The best fit over all starts (lowest objective).
  """
  if not delta > 0:
    raise ValueError(f'delta must be > 0; got {delta}.')
  d = _prepare(x, y, loss, weights)
  starts, points, centred = _grid_starts(d, grid, np.exp(d.logl))
  ids = _select(d, starts, delta, n_refine)
  box = _bounds(d, exponent_bounds)
  theta, f, ok, msg, j = _minimise(d, starts[ids], delta, box)
  r = _log_pred(theta, d.u, d.v) - d.logl
  tol = 1e-6 * (box[:, 1] - box[:, 0])
  at_bound = {n: ('lower' if t <= lo + eps else 'upper' if t >= hi - eps else None)
              for n, t, (lo, hi), eps in zip(PARAM_NAMES, theta, box, tol)}
  coords = theta if centred else np.array(list(_log_public(theta, d).values()))
  g_lo, g_hi = points.min(axis=0), points.max(axis=0)
  grid_edge = {n: bool(c < lo - 1e-9 or c > hi + 1e-9)
               for n, c, lo, hi in zip(PARAM_NAMES, coords, g_lo, g_hi)}
  keys = ('e', 'a_c', 'alpha', 'b_c', 'beta') if centred else _GRID_KEYS
  return LawFit(
      params=_to_public(theta, d), log_params=_log_public(theta, d), loss=f, delta=delta,
      n=len(r), converged=ok, message=msg, n_starts=len(ids), n_grid=len(points),
      start_index=int(ids[j]), start=dict(zip(keys, map(float, points[ids[j]]))),
      grid_coords='centred' if centred else 'log', at_bound=at_bound, grid_edge=grid_edge,
      rms_log_residual=float(np.sqrt(np.mean(r**2))),
      max_abs_log_residual=float(np.max(np.abs(r))),
      x_range=(math.exp(d.u.min() + d.x0), math.exp(d.u.max() + d.x0)),
      y_range=(math.exp(d.v.min() + d.y0), math.exp(d.v.max() + d.y0)), weighted=d.weighted,
      lack_of_fit=_jsonable(_lack_of_fit(r, d.u, d.v, noise_sd, level)))
