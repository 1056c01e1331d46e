"""Curve forms for scaling experiments: few-shot error against compute C.

All curves are decreasing in C (they model error, not accuracy: pass ``1 - acc``).
Models, with their public parameters (``log`` is the natural log):

* ``power_law_floor``: ``E + A * C**-alpha`` (E >= 0, A > 0, alpha > 0).
* ``power_law``: ``A * C**-alpha``.
* ``sigmoid_log``: ``E + (U - E) / (1 + exp(s * (log C - log_c_mid)))``: upper
  plateau U at low compute, floor E at high compute, slope s > 0 per e-fold of C,
  inflection at ``C = exp(log_c_mid)``.
* ``m4`` (Alabdulmohsin, Neyshabur & Zhai 2022): ``(err - E) / (U - err)**alpha
  = beta * C**c`` with c <= 0, alpha >= 0. It is implicit in err, but in
  ``t = (err - E) / (U - E)`` it reads ``log t - alpha*log(1-t) = q`` whose left
  side is strictly increasing, so each point has one root; we solve for
  ``z = logit t`` by Newton, which converges globally here because the left side
  is convex (alpha > 1) or concave (alpha < 1) in z with slope in
  ``[min(1, alpha), max(1, alpha)]``. alpha = 1 gives ``sigmoid_log`` exactly;
  alpha -> 0 gives ``power_law_floor`` (capped at U).

Internally each model works in ``u = log C - x0`` (x0 the mean log C of the data)
with the amplitude taken at x0, which keeps the problem well conditioned when C
spans 1e3..1e12; reported parameters are converted back to the forms above. Each
``CurveModel`` also carries the data-derived bounds and starting points that
``metalearn.scaling.fits`` uses to fit it.
"""

from __future__ import annotations

import dataclasses
import math
import types
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from scipy import special

_TINY = 1e-12
_Z_MAX = 60.0  # |logit| beyond which a point sits on a plateau in float64.


@dataclasses.dataclass(frozen=True)
class CurveModel:
  """A curve family, in internal coordinates ``u = log C - x0``.

  Attributes:
    name: registry key.
    param_names: names of the public parameters.
    fn: ``fn(u, theta) -> y`` on internal parameters theta.
    jac: ``jac(u, theta) -> [len(u), k]`` derivative of fn in theta.
    to_public: ``(theta, x0) -> public parameter vector``.
    from_public: ``(public, x0) -> theta``.
    bounds: ``(u, y) -> (lower, upper)`` box for theta, from the data.
    starts: ``(u, y) -> list of theta`` initial guesses, from the data.
  """
  name: str
  param_names: tuple[str, ...]
  fn: Callable[[np.ndarray, np.ndarray], np.ndarray]
  jac: Callable[[np.ndarray, np.ndarray], np.ndarray]
  to_public: Callable[[np.ndarray, float], np.ndarray]
  from_public: Callable[[np.ndarray, float], np.ndarray]
  bounds: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]
  starts: Callable[[np.ndarray, np.ndarray], list[np.ndarray]]


def _scale(y: np.ndarray) -> float:
  return max(float(np.max(np.abs(y))), _TINY)


def _span(u: np.ndarray) -> float:
  return max(float(np.ptp(u)), 1.0)


def _line(u: np.ndarray, v: np.ndarray) -> tuple[float, float]:
  """Least-squares (intercept, slope) of v on u."""
  slope, intercept = np.polyfit(u, v, 1)
  return float(intercept), float(slope)


def _floor_guesses(y: np.ndarray) -> list[float]:
  lo = float(np.min(y))
  return [0.0, 0.5 * lo, 0.9 * lo, lo - 0.02 * float(np.ptp(y))]


# power_law_floor: theta = (E, log B, alpha), y = E + B * exp(-alpha * u).
def _plf_fn(u, th):
  return th[0] + np.exp(th[1] - th[2] * u)


def _plf_jac(u, th):
  t = np.exp(th[1] - th[2] * u)
  return np.stack([np.ones_like(u), t, -u * t], axis=1)


def _plf_bounds(u, y):
  s = _scale(y)
  return (np.array([0.0, math.log(s * 1e-9), 0.0]),
          np.array([float(np.max(y)), math.log(s * 1e3), 5.0]))


def _plf_starts(u, y):
  out = []
  for e in _floor_guesses(y):
    e = max(e, 0.0)
    logb, slope = _line(u, np.log(np.maximum(y - e, 1e-3 * _scale(y))))
    out.append(np.array([e, logb, max(-slope, 0.05)]))
  return out


def _plf_to_public(th, x0):
  return np.array([th[0], math.exp(th[1] + th[2] * x0), th[2]])


def _plf_from_public(p, x0):
  return np.array([p[0], math.log(p[1]) - p[2] * x0, p[2]], dtype=float)


# power_law: theta = (log B, alpha).
def _pl_fn(u, th):
  return np.exp(th[0] - th[1] * u)


def _pl_jac(u, th):
  t = np.exp(th[0] - th[1] * u)
  return np.stack([t, -u * t], axis=1)


def _pl_starts(u, y):
  logb, slope = _line(u, np.log(np.maximum(y, 1e-3 * _scale(y))))
  return [np.array([logb, max(-slope, 0.05)]), np.array([logb, 0.5])]


def _pl_bounds(u, y):
  s = _scale(y)
  return np.array([math.log(s * 1e-9), 0.0]), np.array([math.log(s * 1e3), 5.0])


def _pl_to_public(th, x0):
  return np.array([math.exp(th[0] + th[1] * x0), th[1]])


def _pl_from_public(p, x0):
  return np.array([math.log(p[0]) - p[1] * x0, p[1]], dtype=float)


# sigmoid_log: theta = (E, D = U - E, s, m = log_c_mid - x0).
def _sig_fn(u, th):
  return th[0] + th[1] * special.expit(-th[2] * (u - th[3]))


def _sig_jac(u, th):
  e = special.expit(-th[2] * (u - th[3]))
  de = th[1] * e * (1.0 - e)
  return np.stack([np.ones_like(u), e, -de * (u - th[3]), de * th[2]], axis=1)


def _sig_bounds(u, y):
  s, span = _scale(y), _span(u)
  return (np.array([0.0, 1e-9 * s, 1e-3 / span, u.min() - span]),
          np.array([float(np.max(y)), 10.0 * s, 20.0 * len(u) / span,
                    u.max() + span]))


def _sig_starts(u, y):
  lo, hi, rng = float(np.min(y)), float(np.max(y)), max(float(np.ptp(y)), _TINY)
  span, out = _span(u), []
  plateaus = [(max(e, 0.0), top) for e in _floor_guesses(y)
              for top in (hi + 0.05 * rng, hi + rng)]
  for e, top in plateaus + [(max(lo - rng, 0.0), hi + 0.05 * rng)]:
    t = np.clip((y - e) / (top - e), 1e-3, 1 - 1e-3)
    b0, b1 = _line(u, special.logit(t))  # logit t = -s (u - m).
    s = max(-b1, 0.5 / span)
    out.append(np.array([e, top - e, s, b0 / s]))
  # Inflection at either end or the middle, for curves seen only in part.
  out += [np.array([max(0.9 * lo, 0.0), rng, 4.0 / span, m])
          for m in (u.min(), 0.0, u.max())]
  return out


def _sig_to_public(th, x0):
  return np.array([th[0], th[0] + th[1], th[2], th[3] + x0])


def _sig_from_public(p, x0):
  return np.array([p[0], p[1] - p[0], p[2], p[3] - x0], dtype=float)


# m4: theta = (E, D = U - E, alpha, log B0, c), beta * C^c = exp(log B0 + c*u).
def _m4_solve(u, th):
  """Returns z = logit((err - E) / D) solving the M4 equation, and dG/dz."""
  _, d, a, logb0, c = th
  q = logb0 + c * u - (1.0 - a) * math.log(d)
  g0 = (a - 1.0) * math.log(2.0)  # g(0)
  z = np.where(q < g0, q, (q - g0) / max(a, 1e-3))
  for _ in range(100):
    g = -np.logaddexp(0.0, -z) + a * np.logaddexp(0.0, z)
    gz = special.expit(-z) + a * special.expit(z)
    z_new = np.clip(z - (g - q) / gz, -_Z_MAX, _Z_MAX)
    done = np.all(np.abs(z_new - z) <= 1e-13 * (1.0 + np.abs(z)))
    z = z_new
    if done:
      break
  return z, special.expit(-z) + a * special.expit(z)


def _m4_fn(u, th):
  z, _ = _m4_solve(u, th)
  return th[0] + th[1] * special.expit(z)


def _m4_jac(u, th):
  _, d, a, _, _ = th
  z, gz = _m4_solve(u, th)
  sig = special.expit(z)
  dy_dz = d * sig * (1.0 - sig)
  # Implicit function theorem on G(z, theta) = 0: dz/dtheta = -G_theta / G_z.
  dz_dd = -((1.0 - a) / d) / gz
  dz_da = -(np.logaddexp(0.0, z) - math.log(d)) / gz
  return np.stack([np.ones_like(u), sig + dy_dz * dz_dd, dy_dz * dz_da,
                   dy_dz / gz, dy_dz * u / gz], axis=1)


def _m4_bounds(u, y):
  s = _scale(y)
  return (np.array([0.0, 1e-9 * s, 0.0, -50.0, -5.0]),
          np.array([float(np.max(y)), 10.0 * s, 5.0, 50.0, 0.0]))


def _m4_starts(u, y):
  lo, hi, rng = float(np.min(y)), float(np.max(y)), max(float(np.ptp(y)), _TINY)
  out = []
  for e, top in ((0.0, hi + 0.05 * rng), (0.9 * lo, hi + 0.05 * rng),
                 (max(lo - 0.02 * rng, 0.0), hi + rng)):
    yc = np.clip(y, e + 1e-3 * (top - e), top - 1e-3 * (top - e))
    for a in (0.05, 1.0, 2.0):  # Near power_law_floor, sigmoid_log, beyond.
      v = np.log(yc - e) - a * np.log(top - yc) + (1.0 - a) * math.log(top - e)
      logb0, c = _line(u, v)
      out.append(np.array([e, top - e, a, logb0, min(c, -0.01)]))
  return out


def _m4_to_public(th, x0):
  return np.array([th[0], th[0] + th[1], th[2], math.exp(th[3] - th[4] * x0),
                   th[4]])


def _m4_from_public(p, x0):
  return np.array([p[0], p[1] - p[0], p[2], math.log(p[3]) + p[4] * x0, p[4]],
                  dtype=float)


MODELS: Mapping[str, CurveModel] = types.MappingProxyType({
    m.name: m for m in (
        CurveModel('power_law_floor', ('E', 'A', 'alpha'), _plf_fn, _plf_jac,
                   _plf_to_public, _plf_from_public, _plf_bounds, _plf_starts),
        CurveModel('power_law', ('A', 'alpha'), _pl_fn, _pl_jac,
                   _pl_to_public, _pl_from_public, _pl_bounds, _pl_starts),
        CurveModel('sigmoid_log', ('E', 'U', 's', 'log_c_mid'), _sig_fn,
                   _sig_jac, _sig_to_public, _sig_from_public, _sig_bounds,
                   _sig_starts),
        CurveModel('m4', ('E', 'U', 'alpha', 'beta', 'c'), _m4_fn, _m4_jac,
                   _m4_to_public, _m4_from_public, _m4_bounds, _m4_starts),
    )
})
DEFAULT_MODELS = ('power_law_floor', 'power_law', 'sigmoid_log', 'm4')


def bound_hits(model: CurveModel, theta: np.ndarray, lower: np.ndarray, upper: np.ndarray,
               rtol: float = 1e-6) -> list[tuple[str, str]]:
  """Parameters of a fit that ended at, or within ``rtol`` of, a bound of the box.

  Internal parameter i and public parameter i are the same quantity up to a
  monotone map (log, shift, or ``U = E + D``), so a hit is reported under the
  public name at the same position. "Within rtol" is relative to the larger of
  the bound's magnitude and the box width, so a bound at 0 gets a sensible scale.

  Args:
    model: the curve family.
    theta: fitted internal parameters.
    lower, upper: the box the fit was bounded by (``model.bounds``).
    rtol: relative tolerance.

  Returns:
    ``(public name, 'lower' | 'upper')`` for each parameter at a bound.
  """
  hits = []
  for i, name in enumerate(model.param_names):
    width = float(upper[i] - lower[i])
    for side, b in (('lower', float(lower[i])), ('upper', float(upper[i]))):
      if abs(float(theta[i]) - b) <= rtol * max(abs(b), width, _TINY):
        hits.append((name, side))
  return hits


def jsonable(v: Any) -> Any:
  """Python floats / lists / dicts, non-finite floats as None (strict JSON)."""
  if isinstance(v, Mapping):
    return {str(k): jsonable(x) for k, x in v.items()}
  if isinstance(v, np.ndarray):
    v = v.tolist()
  if isinstance(v, (list, tuple)):
    return [jsonable(x) for x in v]
  if isinstance(v, (bool, np.bool_)):
    return bool(v)
  if isinstance(v, (int, np.integer)):
    return int(v)
  if isinstance(v, (float, np.floating)):
    return float(v) if math.isfinite(v) else None
  return v


def bootstrap_dict(result: Any, include_samples: bool = False) -> dict[str, Any]:
  """A bootstrap result dataclass (with ``estimate`` and ``param_samples`` fields) as
  strict JSON; the parameter samples only if asked for."""
  d = {f.name: getattr(result, f.name) for f in dataclasses.fields(result)}
  d['estimate'] = result.estimate.to_dict()
  if not include_samples:
    del d['param_samples']
  return jsonable(d)


def get_model(name: str) -> CurveModel:
  """Returns the registered model ``name``; raises ValueError naming the choices."""
  if name not in MODELS:
    raise ValueError(f'Unknown scaling model {name!r}; choose from {sorted(MODELS)}.')
  return MODELS[name]


def predict(model_name: str, compute: Any, params: Mapping[str, float]) -> np.ndarray:
  """Evaluates a model at compute values from public parameters.

  Args:
    model_name: a key of ``MODELS``.
    compute: compute values C > 0 (any array shape).
    params: public parameters, e.g. ``FitResult.params``.

  Returns:
    The curve at ``compute``, same shape.
  """
  model = get_model(model_name)
  c = np.asarray(compute, dtype=float)
  theta = model.from_public(np.array([params[k] for k in model.param_names]), 0.0)
  return model.fn(np.log(c).ravel(), theta).reshape(c.shape)

