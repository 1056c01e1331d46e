"""The two-variable law ``L(X, Y) = E + A * X**-alpha + B * Y**-beta`` itself.

X and Y are positive resources, e.g. meta-training FLOPs and test-time FLOPs, or
model size and data. Here: the public parameters (``PARAM_NAMES``) and ``predict``; the
validated data and coordinates the fit works in (``law_fit``); and the trade-offs along
an iso-loss line.

Internally the optimiser works in centred coordinates ``u = log X - mean log X``
(and likewise v for Y): ``a_c = a - alpha * mean log X`` is the log of the X term
at the data's geometric centre. This keeps the problem well conditioned when X
is ~1e18; reported parameters are always the public ``E, A, alpha, B, beta``.

Trade-offs. On the iso-loss line ``L(X, Y) = L*`` the local exchange rate is
``d log Y / d log X = -(alpha * A * X**-alpha) / (beta * B * Y**-beta)`` (< 0):
1% more X saves about ``|slope|``% of Y at the same loss (``iso_loss_curve``,
``exchange_rate``, ``local_slope``; CIs via ``LawBootstrap.exchange_rate``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ['PARAM_NAMES', 'exchange_rate', 'iso_loss_curve', 'local_slope', 'predict']

PARAM_NAMES = ('E', 'A', 'alpha', 'B', 'beta')


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
