"""Standards a scaling fit must meet before a report may quote it.

``metalearn.scaling.fits`` fits curves; this module says which fits are worth
reading and what they do and do not show:

* ``eligible``: refuse a fit on fewer than ``MIN_POINTS`` points, on less than
  one decade of compute, or with too few residual degrees of freedom.
* ``extrapolation_splits``: fit below several split points and judge every
  held-out prediction against the point's own 95% CI, in absolute terms (never
  "model A extrapolates N times worse than model B", which says nothing when
  both are inside the noise); ``shared_bias`` says when every form errs the
  same way.
* ``parameter_drift``: refit on growing prefixes of the compute range, so a
  report can show a fitted floor moving with the range it was fitted on.
* ``residuals``: fitted minus observed, for residual plots.

Signs: a residual is predicted minus observed error, so > 0 means the curve
predicts too high an error (it overpredicts), as ``fits.extrapolation_test``'s
``bias``. Everything returned is JSON-ready (non-finite floats as None).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import stats as sp_stats

from metalearn.scaling import fits as fits_lib
from metalearn.scaling.curves import jsonable

MIN_POINTS = 6
MIN_RANGE = 10.0  # max / min compute: one decade.
Z95 = 1.96  # As metalearn.stats.Z95: the CIs this module is given are 1.96 sd wide.


def eligible(compute: Any, n_params: int) -> tuple[bool, str]:
  """Whether a curve with ``n_params`` parameters may be fitted to these points.

  A fit is refused on fewer than ``MIN_POINTS`` distinct compute values, on a
  compute range below one decade (max / min < 10), or when ``n_params >=
  n_points - 1`` (fewer than two residual degrees of freedom).

  Args:
    compute: 1-D compute values C > 0 of the points to be fitted.
    n_params: number of curve parameters.

  Returns:
    ``(ok, reason)``: the reason is a sentence a report can print either way.
  """
  c = np.asarray(compute, dtype=float).ravel()
  if c.size == 0 or not np.all(np.isfinite(c) & (c > 0)):
    raise ValueError('compute must be non-empty, finite and > 0.')
  n = len(np.unique(c))
  ratio = float(c.max() / c.min())
  problems = []
  if n < MIN_POINTS:
    problems.append(f'only {n} points (at least {MIN_POINTS} are needed)')
  if ratio < MIN_RANGE * (1.0 - 1e-9):
    problems.append(f'the compute range is {ratio:.3g}x, less than one decade')
  if n_params >= n - 1:
    problems.append(f'{n_params} parameters on {n} points leave fewer than two '
                    'residual degrees of freedom')
  if problems:
    return False, 'Not fitted: ' + '; '.join(problems) + '.'
  return True, (f'{n} points over {math.log10(ratio):.2g} decades of compute: enough for '
                f'{n_params} parameters.')


def _sorted(compute, y, weights=None):
  c, y, w = fits_lib.prepare(compute, y, weights)
  order = np.argsort(c, kind='stable')
  return c[order], y[order], (None if weights is None else w[order]), order


def residuals(fit: Any, compute: Any, y: Any, y_ci: Any = None) -> dict[str, Any]:
  """Fitted minus observed error at the measured points, for a residual plot.

  Args:
    fit: a ``fits.FitResult`` or its ``to_dict()`` (needs ``model`` and ``params``).
    compute: 1-D compute values.
    y: observed errors.
    y_ci: optional 95% half-widths of ``y``; adds ``z`` (residual in standard
      errors) and ``inside_ci``.

  Returns:
    ``model``, ``compute``, ``observed``, ``fitted``, ``residual`` (and ``z``,
    ``inside_ci`` with ``y_ci``).
  """
  model, params = ((fit['model'], fit['params']) if isinstance(fit, Mapping)
                   else (fit.model, fit.params))
  c, y, _ = fits_lib.prepare(compute, y, None)
  fitted = fits_lib.predict(model, c, params)
  out = dict(model=model, compute=c, observed=y, fitted=fitted, residual=fitted - y)
  if y_ci is not None:
    ci = np.broadcast_to(np.asarray(y_ci, dtype=float), y.shape)
    with np.errstate(divide='ignore', invalid='ignore'):
      out['z'] = (fitted - y) / (ci / Z95)
    out['inside_ci'] = np.abs(fitted - y) <= ci
  return jsonable(out)


def _range(values: np.ndarray) -> str:
  lo, hi = float(np.min(values)), float(np.max(values))
  return f'{lo:.3g}' if f'{lo:.3g}' == f'{hi:.3g}' else f'{lo:.3g}–{hi:.3g}'


def _verdict(res: np.ndarray, inside: np.ndarray, n_points: int, n_splits: int) -> str:
  """One absolute sentence about held-out predictions (residual = pred - obs)."""
  n = len(res)
  if n == 1:
    side = 'over' if res[0] > 0 else 'under'
    return (f"the held-out point is within its 95% CI ({side}predicted by {abs(res[0]):.3g})"
            if inside[0] else f'{side}predicts the held-out point by {abs(res[0]):.3g}, '
            'outside its CI')
  what = (f'{n} held-out points' if n_splits == 1 else
          f'{n} held-out predictions ({n_points} points, {n_splits} splits)')
  sign = 'over' if np.all(res > 0) else 'under' if np.all(res < 0) else None
  mags = _range(np.abs(res))
  if inside.all():
    text = f"all {what} within the points' 95% CIs"
    return text + (f'; every one {sign}predicts, by {mags}' if sign and n > 1 else '')
  if sign and not inside.any():
    return f'{sign}predicts all {what} by {mags}, outside their CIs'
  text = f"{int(inside.sum())} of {what} within the points' 95% CIs"
  if sign:
    return text + f'; {sign}predicts all of them, by {mags}'
  return text + f'; residuals of both signs, {float(res.min()):+.3g} to {float(res.max()):+.3g}'


def extrapolation_splits(model: str, compute: Any, y: Any, y_ci: Any,
                         splits: Sequence[int] = (1, 2, 3), *,
                         weights: Any = None) -> dict[str, Any]:
  """Fits below several split points and judges each held-out point by its own CI.

  For each ``h`` in ``splits`` the ``h`` highest-compute points are held out and
  the model is fitted on the rest, if ``eligible`` allows it (else the split is
  skipped, with the reason). Each held-out prediction is inside when
  ``|predicted - observed| <= y_ci`` of that point.

  Args:
    model: a key of ``fits.MODELS``.
    compute: 1-D compute values.
    y: observed errors.
    y_ci: 95% half-widths of ``y`` (scalar or per point).
    splits: numbers of top points to hold out, one fit each.
    weights: optional fit weights, as in ``fits.fit``.

  Returns:
    ``model``; ``splits``: per split ``n_holdout``, ``n_train``, ``c_split``
    (largest training C), ``eligible``, ``reason``, ``fit`` (``to_dict``) and
    ``points`` (``compute``, ``predicted``, ``observed``, ``residual``,
    ``ci95``, ``inside_ci``, ``bias``: 'over' / 'under' / 'exact'); and
    ``summary``: ``n_predictions``, ``n_points``, ``fraction_inside_ci``,
    ``mean_bias``, ``bias_sign`` ('over', 'under', 'mixed' or None),
    ``n_fits_not_rankable`` and ``verdict``, a sentence in absolute terms.
  """
  c, y, w, order = _sorted(compute, y, weights)
  ci = np.broadcast_to(np.asarray(y_ci, dtype=float), np.shape(compute))[order]
  if not np.all(np.isfinite(ci) & (ci >= 0)):
    raise ValueError('y_ci must be finite and >= 0.')
  n_params = len(fits_lib.get_model(model).param_names)
  out, res, inside, held, reasons, not_rankable = [], [], [], set(), [], 0
  for h in splits:
    h, n_train = int(h), len(y) - int(h)
    if not 0 < h < len(y):
      raise ValueError(f'Cannot hold out {h} of {len(y)} points.')
    ok, reason = eligible(c[:n_train], n_params)
    split = dict(n_holdout=h, n_train=n_train, c_split=c[n_train - 1], eligible=ok,
                 reason=reason)
    out.append(split)
    if not ok:
      reasons.append(f'holding out {h}: {reason}')
      continue
    f = fits_lib.fit(model, c[:n_train], y[:n_train], None if w is None else w[:n_train])
    not_rankable += not f.rankable
    pred = f.predict(c[n_train:])
    r = pred - y[n_train:]
    split['fit'] = f.to_dict()
    split['points'] = [
        dict(compute=cc, predicted=p, observed=o, residual=rr, ci95=hw,
             inside_ci=bool(abs(rr) <= hw),
             bias='over' if rr > 0 else 'under' if rr < 0 else 'exact')
        for cc, p, o, rr, hw in zip(c[n_train:], pred, y[n_train:], r, ci[n_train:])]
    res += list(r)
    inside += [abs(rr) <= hw for rr, hw in zip(r, ci[n_train:])]
    held.update(range(n_train, len(y)))
  res, inside = np.array(res), np.array(inside, dtype=bool)
  n_fit = sum('fit' in s for s in out)
  if not len(res):
    verdict = 'no extrapolation test: ' + ' '.join(reasons)
  else:
    verdict = _verdict(res, inside, len(held), n_fit)
    if not_rankable:
      verdict += (f' (on {not_rankable} of {n_fit} splits the fit has a parameter at a '
                  'bound or did not converge)')
  sign = (None if not len(res) else 'over' if np.all(res > 0) else
          'under' if np.all(res < 0) else 'mixed')
  return jsonable(dict(model=model, splits=out, summary=dict(
      n_predictions=len(res), n_points=len(held),
      fraction_inside_ci=float(inside.mean()) if len(res) else None,
      mean_bias=float(res.mean()) if len(res) else None, bias_sign=sign,
      n_fits_not_rankable=not_rankable, verdict=verdict)))


def shared_bias(results: Sequence[Mapping[str, Any]]) -> str | None:
  """A sentence when every model's held-out predictions err the same way.

  Args:
    results: ``extrapolation_splits`` results, one per model.

  Returns:
    The sentence, or None when the models do not share a sign of bias (or fewer
    than two were tested).
  """
  tested = [r for r in results if r['summary']['n_predictions']]
  if len(tested) < 2:
    return None
  names = ', '.join(r['model'] for r in tested)
  signs = {r['summary']['bias_sign'] for r in tested}
  means = [r['summary']['mean_bias'] for r in tested]
  if signs in ({'over'}, {'under'}):
    return (f'Every form tested ({names}) {signs.pop()}predicts every held-out point '
            f'(mean bias {min(means):+.3g} to {max(means):+.3g}): a shared, systematic '
            'error, not a difference between the forms.')
  if all(m > 0 for m in means) or all(m < 0 for m in means):
    word = 'over' if means[0] > 0 else 'under'
    return (f'Every form tested ({names}) {word}predicts the held-out points on average '
            f'(mean bias {min(means):+.3g} to {max(means):+.3g}).')
  return None


def _standard_errors(model_name, params, c, y, w, at_bound):
  """Linearised (se, se / s, s^2) of the public parameters (NaN for those at a bound).

  Parameters at a bound are held fixed; the others get ``s^2 (J'WJ)^-1`` with
  ``s^2`` the weighted rss over ``n - k``, mapped to public parameters by the
  delta method.
  """
  model = fits_lib.get_model(model_name)
  x0 = float(np.mean(np.log(c)))
  u = np.log(c) - x0
  theta = model.from_public(np.array([params[k] for k in model.param_names]), x0)
  free = np.array([n not in at_bound for n in model.param_names])
  se = np.full(len(theta), math.nan)
  n, k = len(y), len(theta)
  if not free.any() or n <= k:
    return se, se, math.nan
  sw = np.ones_like(y) if w is None else np.sqrt(w)
  r = sw * (model.fn(u, theta) - y)
  j = sw[:, None] * model.jac(u, theta)[:, free]
  info = j.T @ j
  s2 = float(r @ r) / (n - k)
  if not np.all(np.isfinite(info)) or np.linalg.cond(info) > 1e14:
    return se, se, s2
  cov = np.zeros((k, k))
  cov[np.ix_(free, free)] = np.linalg.inv(info)
  grad = np.empty((k, k))  # d public / d theta, by central differences.
  for i in range(k):
    h = 1e-6 * max(1.0, abs(theta[i]))
    e = np.eye(k)[i] * h
    grad[:, i] = (model.to_public(theta + e, x0) - model.to_public(theta - e, x0)) / (2 * h)
  var = np.einsum('ij,jk,ik->i', grad, cov, grad)
  se[free] = np.sqrt(np.maximum(var[free], 0.0))
  return se * math.sqrt(s2), se, s2


def parameter_drift(model: str, compute: Any, y: Any, min_points: int = MIN_POINTS, *,
                    weights: Any = None) -> dict[str, Any]:
  """Refits on growing prefixes of the compute range (C <= c_i) to show drift.

  A parameter that is a property of the curve, like a floor E, should not move
  with the range it was fitted on beyond its uncertainty. Each eligible prefix
  gets estimates, linearised standard errors and t-based 95% CIs (none for a
  parameter at a bound), and ``drift_z``: its difference to the full-range
  estimate over ``s * sqrt(v_prefix - v_full)``, with v the variances per unit
  noise and s the full-range fit's residual sd: the spread of that difference
  for nested fits of a correct model (the Hausman form).

  Args:
    model: a key of ``fits.MODELS``.
    compute: 1-D compute values.
    y: observed errors.
    min_points: smallest prefix fitted (``eligible`` may refuse larger ones).
    weights: optional fit weights, as in ``fits.fit``.

  Returns:
    ``model``, ``param_names``, ``prefixes`` (per prefix ``n_points``,
    ``c_max``, ``eligible``, ``reason`` and for fitted ones ``success``,
    ``rankable``, ``at_bound``, ``params``, ``se``, ``ci95``, ``drift_z``),
    ``c_max`` and ``estimate`` / ``se`` (``{name: list}`` over fitted prefixes,
    for plotting), ``max_abs_drift_z`` (``{name: max |drift_z|}``; above ~3 the
    parameter moves with the range beyond its noise), ``last_point`` (``compute``, ``y``),
    ``full_range_floor``, ``last_below_floor`` (the highest-compute point lies
    below the full-range fit's E; None without an eligible full-range fit or an
    E; near the floor noise alone can set it), ``floor_margin`` (that E minus
    the last point's y), ``floor_crossed`` (``c_max`` of the shorter prefixes
    whose E lies above a later measured point by more than 1.96 times the
    combined sd of E and of the point, from the full-range residuals; rows
    count them in ``n_later_below_floor``) and ``statement``.
  """
  c, y, w, _ = _sorted(compute, y, weights)
  names = fits_lib.get_model(model).param_names
  rows, unscaled = [], {}
  for m in range(max(int(min_points), 1), len(y) + 1):
    ok, reason = eligible(c[:m], len(names))
    row = dict(n_points=m, c_max=float(c[m - 1]), eligible=ok, reason=reason)
    rows.append(row)
    if not ok:
      continue
    wm = None if w is None else w[:m]
    f = fits_lib.fit(model, c[:m], y[:m], wm)
    se, unscaled[m], _ = _standard_errors(model, f.params, c[:m], y[:m], wm, f.at_bound)
    t = float(sp_stats.t.ppf(0.975, m - len(names)))
    row.update(success=f.success, rankable=f.rankable, at_bound=f.at_bound,
               params=dict(f.params), se=dict(zip(names, se)),
               ci95={n: (f.params[n] - t * s, f.params[n] + t * s)
                     for n, s in zip(names, se)})
  fitted = [r for r in rows if 'params' in r]
  full = fitted[-1] if fitted and fitted[-1]['n_points'] == len(y) else None
  # One noise level for every prefix: the full-range fit's.
  s_full = _standard_errors(model, full['params'], c, y, w, [])[2] if full else math.nan
  for r in fitted:
    r['drift_z'] = ({n: _drift_z(r, full, i, unscaled, s_full) for i, n in enumerate(names)}
                    if full else {})
    if 'E' in names:  # Below by more than the floor's and the point's noise together.
      m, se_e = r['n_points'], r['se']['E'] if math.isfinite(r['se']['E']) else 0.0
      sd2 = s_full / (np.ones(len(y) - m) if w is None else w[m:])
      gap = r['params']['E'] - y[m:]
      r['n_later_below_floor'] = int(np.sum(gap > Z95 * np.sqrt(se_e**2 + sd2)))
  zs = {n: [abs(r['drift_z'][n]) for r in fitted if math.isfinite(r['drift_z'].get(n, math.nan))]
        for n in names}
  floor = full['params']['E'] if full and 'E' in names else None
  below = None if floor is None else bool(y[-1] < floor)
  margin = None if floor is None else floor - y[-1]
  crossed = [r['c_max'] for r in fitted if r is not full and r.get('n_later_below_floor')]
  return jsonable(dict(
      model=model, param_names=list(names), prefixes=rows,
      c_max=[r['c_max'] for r in fitted],
      estimate={n: [r['params'][n] for r in fitted] for n in names},
      se={n: [r['se'][n] for r in fitted] for n in names},
      max_abs_drift_z={n: max(z, default=math.nan) for n, z in zs.items()},
      last_point=dict(compute=c[-1], y=y[-1]), full_range_floor=floor,
      last_below_floor=below, floor_margin=margin, floor_crossed=crossed,
      statement=_drift_statement(fitted, full, y[-1], below, crossed,
                                 max(zs.get('E', []), default=math.nan))))


def _drift_z(row, full, i, unscaled, s2):
  """(prefix - full) estimate over its spread for nested fits, ``s^2 (v_prefix - v_full)``."""
  if row is full:
    return 0.0
  name = list(full['params'])[i]
  v1, v2 = unscaled[row['n_points']][i] ** 2, unscaled[full['n_points']][i] ** 2
  var = s2 * (v1 - v2 if v1 > v2 else v1)  # Fall back to the prefix's own variance.
  d = row['params'][name] - full['params'][name]
  return d / math.sqrt(var) if var > 0 else math.nan


def _drift_statement(fitted, full, y_last, below, crossed, z_max) -> str:
  if not fitted:
    return 'No prefix of the compute range is eligible for a fit.'
  if 'E' not in fitted[0]['params']:
    return f'Fitted on {len(fitted)} prefixes of the compute range; this model has no floor E.'
  first, last = fitted[0], fitted[-1]

  def fmt(r):
    lo, hi = r['ci95']['E']
    pm = (' (at a bound)' if 'E' in r['at_bound'] else f' ± {(hi - lo) / 2:.2g}'
          if math.isfinite(hi - lo) else ' (no standard error)')
    return f"{r['params']['E']:.3g}{pm} (C ≤ {r['c_max']:.3g}, {r['n_points']} points)"
  text = (f'The fitted floor E is {fmt(first)}' if first is last else
          f'The fitted floor E moves from {fmt(first)} to {fmt(last)}')
  if z_max > 3:
    text += f', beyond its noise (drift |z| up to {z_max:.1f})'
  if below:
    text += (f'; the last measured point ({y_last:.3g}) lies below the full-range floor '
             f"({full['params']['E']:.3g}), so it is not a floor of these data")
  if crossed:
    text += (f'; later points fall below the floor fitted up to C = {crossed[0]:.3g}'
             + (f' (and on {len(crossed) - 1} longer prefixes)' if len(crossed) > 1 else ''))
  return text + '.'
