"""Curve fits for scaling experiments: few-shot error against compute C.

A fitted curve describes, it does not explain. A power law ``E + A*C^-alpha`` has
an irreducible floor ``E``; over a short range it cannot be told from part of a
saturating curve; and a good in-sample fit says nothing about extrapolation. So
every fit here is meant to be compared with alternatives (``compare``: AIC,
AICc, BIC, Akaike weights), tested on held-out high compute
(``extrapolation_test``) and given bootstrap confidence intervals over episodes
and seeds (``fit_bootstrap.bootstrap``). A fit that did not converge, or with a parameter at a
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

from metalearn.scaling.curves import DEFAULT_MODELS, MODELS, bound_hits
from metalearn.scaling.curves import get_model, predict
from metalearn.scaling.curves import jsonable as _jsonable

__all__ = [
    'DEFAULT_MODELS', 'MODELS', 'FitResult', 'compare', 'extrapolation_test', 'fit',
    'get_model', 'predict',
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


def prepare(compute, y, weights):
  """``(compute, y, weights)`` as checked float arrays (weights all ones if None)."""
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


def fit_model(model, c, y, w, weighted, starts=None):
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
  c, y, w = prepare(compute, y, weights)
  model = get_model(model_name)
  if len(y) <= len(model.param_names):
    raise ValueError(f'{model_name} needs more than {len(model.param_names)} points; got {len(y)}.')
  return fit_model(model, c, y, w, weights is not None)[0]


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
  c, y, w = prepare(compute, y, weights)
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
