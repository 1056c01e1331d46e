"""Two-variable scaling laws: ``L(X, Y) = E + A * X**-alpha + B * Y**-beta``.

X and Y are positive resources, e.g. meta-training FLOPs and test-time FLOPs, or
model size and data. The fit follows Hoffmann et al. 2022 (Chinchilla, Approach 3)
and its replication by Besiroglu et al. 2024 ("Chinchilla Scaling: A replication
attempt"):

* parametrise ``E = exp(e)``, ``A = exp(a)``, ``B = exp(b)``, so the law in log
  space is ``log L = logsumexp(a - alpha * log X, b - beta * log Y, e)``;
* minimise ``sum_i w_i * huber_delta(log L_pred_i - log L_obs_i)`` with
  ``delta = 1e-3`` by default (``huber(r) = r**2 / 2`` for ``|r| <= delta``, else
  ``delta * (|r| - delta / 2)``). With residuals much larger than delta this is
  close to least absolute deviations in log L, hence robust to outliers;
  ``delta=math.inf`` gives least squares in log L;
* run L-BFGS-B from every point of a product grid of starts and keep the best.

Internally the optimiser works in centred coordinates ``u = log X - mean log X``
(and likewise v for Y): ``a_c = a - alpha * mean log X`` is the log of the X term
at the data's geometric centre. This keeps the problem well conditioned when X
is ~1e18; reported parameters are always the public ``E, A, alpha, B, beta``.

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
that coordinate: widen the grid),
plus ``lack_of_fit`` (see ``lack_of_fit``): a runs test for structure in the
residual signs and, given the noise level of log L, a chi-square test of the
residual scale. A law of the wrong form fits smoothly but leaves structured
residuals far above the noise; the flag says so.

Trade-offs. On the iso-loss line ``L(X, Y) = L*`` the local exchange rate is
``d log Y / d log X = -(alpha * A * X**-alpha) / (beta * B * Y**-beta)`` (< 0):
1% more X saves about ``|slope|``% of Y at the same loss (``iso_loss_curve``,
``exchange_rate``, ``local_slope``; CIs via ``LawBootstrap.exchange_rate``).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import types
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import optimize, stats

from metalearn.scaling.curves import bootstrap_dict
from metalearn.scaling.curves import jsonable as _jsonable

__all__ = [
    'CHINCHILLA_GRID', 'PARAM_NAMES', 'LawBootstrap', 'LawFit', 'bootstrap', 'default_grid',
    'exchange_rate', 'fit', 'iso_loss_curve', 'lack_of_fit', 'local_slope', 'predict',
    'replicate_noise_sd',
]

PARAM_NAMES = ('E', 'A', 'alpha', 'B', 'beta')
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


@dataclasses.dataclass(frozen=True)
class _Data:
  """Validated data in the optimiser's coordinates."""
  u: np.ndarray  # log X - x0.
  v: np.ndarray  # log Y - y0.
  logl: np.ndarray
  w: np.ndarray
  x0: float
  y0: float
  weighted: bool
  # [3n, 5]: the three log-terms (e, a_c - alpha u, b_c - beta v) are design @ theta.
  design: np.ndarray = dataclasses.field(init=False, repr=False, compare=False)

  def __post_init__(self):
    z, o = np.zeros(len(self.u)), np.ones(len(self.u))
    design = np.concatenate([np.stack([o, z, z, z, z], 1), np.stack([z, o, -self.u, z, z], 1),
                             np.stack([z, z, z, o, -self.v], 1)])
    object.__setattr__(self, 'design', design)


def _prepare(x: Any, y: Any, loss: Any, weights: Any) -> _Data:
  x, y, loss = (np.asarray(t, dtype=float) for t in (x, y, loss))
  if not (x.ndim == 1 and x.shape == y.shape == loss.shape):
    raise ValueError(f'x, y and loss must be 1-D of equal length; got {x.shape}, {y.shape}, '
                     f'{loss.shape}.')
  for name, t in (('x', x), ('y', y), ('loss', loss)):
    if not np.all(np.isfinite(t) & (t > 0)):
      raise ValueError(f'{name} must be finite and > 0.')
  if len(loss) <= len(PARAM_NAMES):
    raise ValueError(f'Need more than {len(PARAM_NAMES)} points; got {len(loss)}.')
  w = np.ones_like(loss) if weights is None else np.asarray(weights, dtype=float)
  if w.shape != loss.shape or not np.all(np.isfinite(w) & (w > 0)):
    raise ValueError('weights must be finite, > 0 and shaped like loss.')
  lx, ly = np.log(x), np.log(y)
  x0, y0 = float(lx.mean()), float(ly.mean())
  return _Data(lx - x0, ly - y0, np.log(loss), w, x0, y0, weights is not None)


def _to_public(theta: np.ndarray, d: _Data) -> dict[str, float]:
  e, ac, alpha, bc, beta = map(float, theta)
  return {'E': math.exp(e), 'A': math.exp(ac + alpha * d.x0), 'alpha': alpha,
          'B': math.exp(bc + beta * d.y0), 'beta': beta}


def _log_public(theta: np.ndarray, d: _Data) -> dict[str, float]:
  """The papers' coordinates ``e, a, alpha, b, beta`` (a = log A, b = log B)."""
  e, ac, alpha, bc, beta = map(float, theta)
  return {'e': e, 'a': ac + alpha * d.x0, 'alpha': alpha, 'b': bc + beta * d.y0, 'beta': beta}


def _from_log_public(p: np.ndarray, d: _Data) -> np.ndarray:
  """``[..., 5]`` papers' coordinates -> centred coordinates."""
  p = np.asarray(p, dtype=float)
  out = p.copy()
  out[..., 1] = p[..., 1] - p[..., 2] * d.x0
  out[..., 3] = p[..., 3] - p[..., 4] * d.y0
  return out


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


def predict(params: Mapping[str, float], x: Any, y: Any) -> np.ndarray:
  """Evaluates ``E + A * x**-alpha + B * y**-beta`` (broadcast).

  Args:
    params: ``{'E', 'A', 'alpha', 'B', 'beta'}``, e.g. ``LawFit.params``.
    x: values of X > 0.
    y: values of Y > 0.

  Returns:
    The predicted loss, shaped like ``x`` and ``y`` broadcast.
  """
  x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
  return params['E'] + params['A'] * x ** -params['alpha'] + params['B'] * y ** -params['beta']


def _runs_p(r: np.ndarray) -> float:
  """One-sided Wald-Wolfowitz p-value for too few sign runs (clustered signs)."""
  s = np.sign(r[r != 0])
  n1, n2 = int(np.sum(s > 0)), int(np.sum(s < 0))
  n = n1 + n2
  if n < 2:
    return 1.0
  if n1 == 0 or n2 == 0:
    return min(1.0, 2.0 * 0.5**n)  # All one sign.
  runs = 1 + int(np.sum(s[1:] != s[:-1]))
  mu = 2.0 * n1 * n2 / n + 1.0
  var = 2.0 * n1 * n2 * (2.0 * n1 * n2 - n) / (n * n * (n - 1.0))
  return float(stats.norm.cdf((runs - mu) / math.sqrt(var))) if var > 0 else 1.0


def _lack_of_fit(r: np.ndarray, lx: np.ndarray, ly: np.ndarray, noise_sd: Any,
                 level: float) -> dict[str, Any]:
  by_x = np.lexsort((ly, lx))  # X-major: runs along Y within each X.
  by_y = np.lexsort((lx, ly))  # Y-major: runs along X within each Y.
  runs_p = min(1.0, 2.0 * min(_runs_p(r[by_x]), _runs_p(r[by_y])))
  out = {'level': level, 'runs_p': runs_p, 'rms_log_residual': float(np.sqrt(np.mean(r**2))),
         'noise_sd': None, 'chi2': None, 'dof': None, 'reduced_chi2': None, 'chi2_p': None,
         'max_abs_z': None}
  if noise_sd is not None:
    sd = np.broadcast_to(np.asarray(noise_sd, dtype=float), r.shape)
    if not np.all(np.isfinite(sd) & (sd > 0)):
      raise ValueError('noise_sd must be finite and > 0.')
    z = r / sd
    chi2, dof = float(z @ z), len(r) - len(PARAM_NAMES)
    out.update(noise_sd=float(np.sqrt(np.mean(sd**2))), chi2=chi2, dof=dof,
               reduced_chi2=chi2 / dof, chi2_p=float(stats.chi2.sf(chi2, dof)),
               max_abs_z=float(np.max(np.abs(z))))
  out['flag'] = bool(runs_p < level or (out['chi2_p'] is not None and out['chi2_p'] < level))
  return out


def lack_of_fit(params: Mapping[str, float], x: Any, y: Any, loss: Any, noise_sd: Any = None,
                level: float = 0.01) -> dict[str, Any]:
  """Tests whether the residuals of a fitted law look like noise.

  Residuals are ``r_i = log L_pred_i - log L_obs_i``. Two tests, each at ``level``:

  * structure (needs no noise level): a one-sided Wald-Wolfowitz runs test for
    too few runs of equal residual sign, with points ordered X-major (runs along
    Y) and Y-major (runs along X); ``runs_p`` is the smaller p-value times 2
    (Bonferroni). Exact zeros are dropped. It assumes several points per axis.
  * scale (when ``noise_sd`` is given): ``chi2 = sum (r_i / noise_sd_i)**2`` on
    ``n - 5`` degrees of freedom, ``chi2_p`` its upper tail. The Huber fit does
    not minimise chi2, so chi2 runs slightly high (a few units) under a correct
    law: mildly conservative in favour of flagging. ``max_abs_z`` is the largest
    ``|r_i| / noise_sd_i``.

  Args:
    params: fitted ``{'E', 'A', 'alpha', 'B', 'beta'}``.
    x: 1-D X values.
    y: 1-D Y values.
    loss: 1-D observed losses.
    noise_sd: optional SD of log L per point (scalar or 1-D), e.g. from
      ``replicate_noise_sd``; for a small relative noise sigma, it is sigma.
    level: significance level of each test.

  Returns:
    JSON-ready dict: ``flag`` (either test rejects), ``runs_p``,
    ``rms_log_residual``, and when ``noise_sd`` is given ``noise_sd`` (its RMS),
    ``chi2``, ``dof``, ``reduced_chi2``, ``chi2_p``, ``max_abs_z`` (else None).
  """
  d = _prepare(x, y, loss, None)
  r = np.log(predict(params, x, y)) - d.logl
  return _jsonable(_lack_of_fit(r, d.u, d.v, noise_sd, level))


def replicate_noise_sd(values: Any) -> np.ndarray:
  """Per-point SD of log(mean loss) from replicate values (delta method).

  Args:
    values: ``[points, replicates]`` array, or a list of 1-D arrays (one per
      point, at least 2 replicates each).

  Returns:
    ``[points]``: ``std(ddof=1) / sqrt(n) / mean`` of each point's replicates.
  """
  out = []
  for p in _replicate_list(values):
    if len(p) < 2:
      raise ValueError('Each point needs at least 2 replicates.')
    out.append(np.std(p, ddof=1) / math.sqrt(len(p)) / np.mean(p))
  return np.array(out)


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


def _replicate_list(values: Any) -> list[np.ndarray]:
  if isinstance(values, np.ndarray):
    if values.ndim != 2:
      raise ValueError(f'Replicate values must be [points, replicates]; got {values.ndim}-D.')
    out = [np.asarray(p, dtype=float) for p in values]
  else:
    out = [np.asarray(p, dtype=float).ravel() for p in values]
  if not all(len(p) and np.all(np.isfinite(p) & (p > 0)) for p in out):
    raise ValueError('Replicate values must be finite, > 0, at least one per point.')
  return out


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


def local_slope(params: Mapping[str, float], x: Any, y: Any) -> np.ndarray:
  """Slope ``d log Y / d log X`` of the iso-loss line through ``(x, y)``.

  ``-(alpha * A * x**-alpha) / (beta * B * y**-beta)``: the percentage of Y
  that 1% more X saves at the same loss is about ``-slope``.

  Args:
    params: ``{'E', 'A', 'alpha', 'B', 'beta'}``.
    x: X values > 0.
    y: Y values > 0 (broadcast with x).

  Returns:
    The slope at each point (<= 0; -inf where beta * B = 0).
  """
  x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
  num = params['alpha'] * params['A'] * x ** -params['alpha']
  den = params['beta'] * params['B'] * y ** -params['beta']
  with np.errstate(divide='ignore', invalid='ignore'):
    return -num / den


def iso_loss_curve(params: Mapping[str, float], loss_target: float, x: Any) -> np.ndarray:
  """Y on the iso-loss line ``L(X, Y) = loss_target`` at each X.

  ``Y = (B / (L* - E - A * X**-alpha))**(1 / beta)``; in log coordinates
  ``log Y = (log B - log(L* - E - A X^-alpha)) / beta``. Below
  ``X = (A / (L* - E))**(1 / alpha)`` no Y reaches L*.

  Args:
    params: ``{'E', 'A', 'alpha', 'B', 'beta'}``.
    loss_target: the loss L*.
    x: X values > 0.

  Returns:
    Y at each x, NaN where L* is unreachable.
  """
  x = np.asarray(x, dtype=float)
  gap = loss_target - params['E'] - params['A'] * x ** -params['alpha']
  with np.errstate(divide='ignore', invalid='ignore'):
    out = np.exp((math.log(params['B']) - np.log(gap)) / params['beta'])
  return np.where(gap > 0, out, np.nan)


def exchange_rate(params: Mapping[str, float], loss_target: float, x: Any) -> np.ndarray:
  """``d log Y / d log X`` along the iso-loss line ``L = loss_target`` at X.

  On the line ``B Y**-beta = L* - E - A X**-alpha``, so the slope is
  ``-(alpha * A * X**-alpha) / (beta * (L* - E - A * X**-alpha))``.

  Args:
    params: ``{'E', 'A', 'alpha', 'B', 'beta'}``.
    loss_target: the loss L*.
    x: X values > 0.

  Returns:
    The slope at each x (<= 0), NaN where L* is unreachable.
  """
  return local_slope(params, x, iso_loss_curve(params, loss_target, x))
