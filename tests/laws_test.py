"""Tests for metalearn.scaling.laws: recovery, bootstrap, exchange rates, lack of fit, Huber."""

import json
import math

import numpy as np
import pytest

from metalearn.scaling import law_fit
from metalearn.scaling import law_form
from metalearn.scaling import laws

# L(X, Y) = E + A X^-alpha + B Y^-beta on X in 1e12..1e15 (7 points) x Y in 1e6..1e9
# (6 points): L runs from 1.0 down to 0.29 (floor 0.2).
TRUTH = {'E': 0.2, 'A': 2000.0, 'alpha': 0.3, 'B': 75.0, 'beta': 0.4}
X, Y = (a.ravel() for a in np.meshgrid(np.logspace(12, 15, 7), np.logspace(6, 9, 6),
                                       indexing='ij'))
NOISE = 0.01  # SD of log L: 1% multiplicative noise.
# About 4 SD of each estimate over 40 noise draws (SDs: log E 0.027, log A 0.22,
# alpha 0.008, log B 0.17, beta 0.012). A and B are amplitudes at X = 1 and Y = 1,
# 12 and 6 decades below the data, so an exponent error of 0.01 moves log A by
# 0.31; the terms at the data's geometric centre, A X_c^-alpha and B Y_c^-beta,
# are pinned 7x and 3.5x tighter (SDs of their logs 0.033, 0.048).
LOG_TOL = {'E': 0.11, 'A': 0.85, 'B': 0.7}
ABS_TOL = {'alpha': 0.035, 'beta': 0.05}
CENTRE_TOL = {'A': 0.13, 'B': 0.19}
X_C, Y_C = math.exp(np.log(X).mean()), math.exp(np.log(Y).mean())


def _noisy(loss, seed, sd=NOISE):
  return loss * np.exp(np.random.default_rng(seed).normal(0.0, sd, loss.shape))


def _law(params, x=X, y=Y):
  return laws.predict(params, x, y)


def test_predict_and_json():
  np.testing.assert_allclose(_law(TRUTH, 1e12, 1e6),
                             0.2 + 2000.0 * 1e-12**0.3 + 75.0 * 1e-6**0.4, rtol=1e-12)
  assert _law(TRUTH, X[:, None], Y[None, :3]).shape == (len(X), 3)
  r = laws.fit(X, Y, _law(TRUTH), n_refine=4)
  d = json.loads(json.dumps(r.to_dict(), allow_nan=False))
  assert set(d['params']) == set(laws.PARAM_NAMES)
  assert d['n'] == len(X) and d['n_grid'] == 1600 and d['n_starts'] == 4


@pytest.mark.parametrize('delta', [1e-3, math.inf])
def test_objective_gradient_matches_finite_differences(delta):
  loss = _noisy(_law(TRUTH), seed=7, sd=0.05)
  d = law_form._prepare(X, Y, loss, np.linspace(0.5, 2.0, len(X)))
  theta = np.array([-1.5, -2.0, 0.4, -1.0, 0.3])
  f, g = law_fit._objective(theta, d, delta, 1.0)
  h = 1e-7
  numeric = [(law_fit._objective(theta + h * e, d, delta, 1.0)[0]
              - law_fit._objective(theta - h * e, d, delta, 1.0)[0]) / (2 * h) for e in np.eye(5)]
  np.testing.assert_allclose(g, numeric, rtol=1e-5, atol=1e-9)
  # The objective is the weighted Huber sum of log residuals.
  r = np.log(laws.predict(law_form._to_public(theta, d), X, Y)) - np.log(loss)
  huber = np.where(np.abs(r) <= delta, 0.5 * r**2, delta * (np.abs(r) - 0.5 * delta))
  assert f == pytest.approx(float(d.w @ huber), rel=1e-10)


def test_fit_recovers_known_parameters():
  r = laws.fit(X, Y, _noisy(_law(TRUTH), seed=1), noise_sd=NOISE)
  assert r.converged, r.message
  for k, tol in LOG_TOL.items():
    assert abs(math.log(r.params[k] / TRUTH[k])) < tol, (k, r.params)
  for k, tol in ABS_TOL.items():
    assert abs(r.params[k] - TRUTH[k]) < tol, (k, r.params)
  for k, ex, z in (('A', 'alpha', X_C), ('B', 'beta', Y_C)):
    fitted, true = r.params[k] * z ** -r.params[ex], TRUTH[k] * z ** -TRUTH[ex]
    assert abs(math.log(fitted / true)) < CENTRE_TOL[k], k
  assert not any(r.at_bound.values()) and not any(r.grid_edge.values())
  # The right law leaves noise-like residuals: no lack-of-fit flag.
  lof = r.lack_of_fit
  assert not lof['flag'] and lof['chi2_p'] > 0.05 and lof['runs_p'] > 0.05, lof
  assert lof['reduced_chi2'] < 1.5 and lof['max_abs_z'] < 3.5


def test_bootstrap_ci_contains_truth():
  # Over 12 noise draws (200 replicates each) the 95% CIs covered E 12/12, each of
  # A, alpha, B, beta 11/12, all five at once 10/12, and the exchange rate below 12/12.
  loss = _noisy(_law(TRUTH), seed=1)
  boot = laws.bootstrap(X, Y, loss, 200, np.random.default_rng(0))
  assert boot.resampled == 'points' and boot.n_success >= 190
  for k in laws.PARAM_NAMES:
    lo, hi = boot.param_ci[k]
    assert lo <= TRUTH[k] <= hi, (k, boot.param_ci)
    assert lo <= boot.estimate.params[k] <= hi, (k, boot.param_ci)
  # Exchange rate where the iso-loss line L = 0.35 crosses X = 1e14 (Y ~ 5.5e8).
  ex = boot.exchange_rate(0.35, [1e14])
  for key, true in (('y', laws.iso_loss_curve(TRUTH, 0.35, 1e14)),
                    ('slope', laws.exchange_rate(TRUTH, 0.35, 1e14))):
    lo, hi = ex[f'{key}_ci'][0]
    assert lo <= float(true) <= hi, (key, true, ex)
  assert ex['reachable_fraction'][0] > 0.95
  json.dumps(boot.to_dict(), allow_nan=False)
  assert len(boot.to_dict(include_samples=True)['param_samples']) == boot.n_success


def test_bootstrap_resamples_replicates():
  rng = np.random.default_rng(2)
  reps = _law(TRUTH)[:, None] * np.exp(rng.normal(0.0, 0.03, (len(X), 9)))
  sd = laws.replicate_noise_sd(reps)
  assert np.all((sd > 0.005) & (sd < 0.02))  # 0.03 / sqrt(9) = 0.01.
  boot = laws.bootstrap(X, Y, reps, 60, rng, noise_sd=sd)
  assert boot.resampled == 'replicates' and boot.n_success >= 57
  assert boot.estimate.n == len(X)
  assert not boot.estimate.lack_of_fit['flag']
  for k in laws.PARAM_NAMES:
    lo, hi = boot.param_ci[k]
    assert lo <= TRUTH[k] <= hi, (k, boot.param_ci)
  # Ragged lists of replicates take the same path.
  ragged = [r[: 5 + i % 4] for i, r in enumerate(reps)]
  assert laws.bootstrap(X, Y, ragged, 3, rng, n_refine=4).resampled == 'replicates'


# Worked by hand: A X^-alpha = 10 * 100^-0.5 = 1 at X = 100, so on L* = 2.5 the Y
# term is 2.5 - 1 - 1 = 0.5 = 100 Y^-0.25, Y = 200^4 = 1.6e9, and the slope is
# -(0.5 * 1) / (0.25 * 0.5) = -4: 1% more X saves ~4% of Y at the same loss.
HAND = {'E': 1.0, 'A': 10.0, 'alpha': 0.5, 'B': 100.0, 'beta': 0.25}


def test_exchange_rate_closed_form_by_hand():
  assert laws.iso_loss_curve(HAND, 2.5, 100.0) == pytest.approx(1.6e9, rel=1e-12)
  assert laws.exchange_rate(HAND, 2.5, 100.0) == pytest.approx(-4.0, rel=1e-12)
  assert laws.local_slope(HAND, 100.0, 1.6e9) == pytest.approx(-4.0, rel=1e-12)
  assert laws.predict(HAND, 100.0, 1.6e9) == pytest.approx(2.5, rel=1e-12)
  # Below X = (A / (L* - E))^(1 / alpha) = (10 / 1.5)^2 ~ 44.4, L* is unreachable.
  assert np.isnan(laws.iso_loss_curve(HAND, 2.5, 44.0))
  assert np.isfinite(laws.iso_loss_curve(HAND, 2.5, 45.0))


@pytest.mark.parametrize('params,target', [(HAND, 2.5), (TRUTH, 0.35)])
def test_exchange_rate_matches_finite_difference_of_iso_loss_curve(params, target):
  x_min = (params['A'] / (target - params['E'])) ** (1 / params['alpha'])
  x = x_min * np.array([1.5, 3.0, 10.0, 100.0])
  h = 1e-5
  y_hi, y_lo = (laws.iso_loss_curve(params, target, x * math.exp(s)) for s in (h, -h))
  numeric = (np.log(y_hi) - np.log(y_lo)) / (2 * h)
  np.testing.assert_allclose(laws.exchange_rate(params, target, x), numeric, rtol=1e-6)
  np.testing.assert_allclose(laws.predict(params, x, laws.iso_loss_curve(params, target, x)),
                             target, rtol=1e-12)


def test_wrong_form_is_flagged():
  # A function of X * Y alone, sigmoid in log(XY): no sum of two power laws matches it.
  truth = 0.2 + 0.8 / (1.0 + np.sqrt(X * Y / 1e21))
  r = laws.fit(X, Y, _noisy(truth, seed=3), noise_sd=NOISE)
  lof = r.lack_of_fit
  assert lof['flag'], lof
  assert lof['chi2_p'] < 1e-6 and lof['reduced_chi2'] > 20, lof  # Measured ~120.
  assert lof['max_abs_z'] > 8 and r.max_abs_log_residual > 8 * NOISE, lof  # Measured ~21.
  assert lof['runs_p'] < 0.01, lof  # Structure without knowing the noise (measured 0.002).
  assert laws.lack_of_fit(r.params, X, Y, _noisy(truth, seed=3))['flag']  # No noise_sd.
  assert r.at_bound['E'] == 'lower'  # It also pushes E to its floor, 1e-4 min L.


def test_huber_barely_moves_for_one_outlier_least_squares_does():
  clean = _noisy(_law(TRUTH), seed=1)
  dirty = clean.copy()
  dirty[20] *= 2.0  # log residual +0.69: ~70 noise SDs.
  shift = {}
  for name, delta in (('huber', 1e-3), ('ls', math.inf)):
    a, b = (laws.fit(X, Y, loss, delta=delta, n_refine=16) for loss in (clean, dirty))
    shift[name] = np.max(np.abs(np.log(b.predict(X, Y)) - np.log(a.predict(X, Y))))
    shift[name + '_E'] = abs(b.params['E'] / a.params['E'] - 1)
  assert shift['huber'] < 0.2 * NOISE and shift['huber_E'] < 0.02, shift  # Measured <= 0.0009.
  assert shift['ls'] > 3 * NOISE and shift['ls_E'] > 0.2, shift  # Measured 0.06 and 0.45.
  # Weights do the same job for least squares when the outlier is known.
  w = np.ones_like(clean)
  w[20] = 1e-6
  a = laws.fit(X, Y, clean, delta=math.inf, n_refine=16)
  b = laws.fit(X, Y, dirty, delta=math.inf, weights=w, n_refine=16)
  assert b.weighted
  assert np.max(np.abs(np.log(b.predict(X, Y)) - np.log(a.predict(X, Y)))) < 0.2 * NOISE


def test_screening_and_paper_grid_find_the_full_grid_optimum():
  loss = _noisy(_law(TRUTH), seed=4)
  small = {'e': (-3.0, -1.0), 'a': (5.0, 10.0), 'alpha': (0.2, 1.0), 'b': (2.0, 6.0),
           'beta': (0.2, 1.0)}
  full = laws.fit(X, Y, loss, grid=small, n_refine=None)
  screened = laws.fit(X, Y, loss, grid=small, n_refine=4)
  assert full.n_starts == full.n_grid == 32 and screened.n_starts == 4
  assert full.grid_coords == 'log' and set(full.start) == set(small)
  default = laws.fit(X, Y, loss)
  # The papers' grid (4500 starts, screened): e in [-1, 1] does not reach log 0.2.
  chin = laws.fit(X, Y, loss, grid=laws.CHINCHILLA_GRID, n_refine=8)
  assert chin.n_grid == 4500 and chin.grid_edge['E'] and not chin.grid_edge['alpha']
  for r in (screened, default, chin):
    assert r.loss == pytest.approx(full.loss, rel=1e-7)
    for k in laws.PARAM_NAMES:
      assert r.params[k] == pytest.approx(full.params[k], rel=1e-4), k


def test_bound_flag_and_validation():
  no_floor = {**TRUTH, 'E': 0.0}
  loss = _law(no_floor)
  r = laws.fit(X, Y, loss, n_refine=8)
  # E's box starts at 1e-4 min L: 'lower' means no detectable floor.
  assert r.at_bound['E'] == 'lower'
  assert r.params['E'] == pytest.approx(1e-4 * loss.min(), rel=1e-6)
  assert not any(r.at_bound[k] for k in ('A', 'alpha', 'B', 'beta'))
  assert r.params['alpha'] == pytest.approx(0.3, abs=1e-4)
  with pytest.raises(ValueError, match='> 0'):
    laws.fit(X, -Y, _law(TRUTH))
  with pytest.raises(ValueError, match='equal length'):
    laws.fit(X, Y[:-1], _law(TRUTH))
  with pytest.raises(ValueError, match='more than 5'):
    laws.fit(X[:5], Y[:5], _law(TRUTH)[:5])
  with pytest.raises(ValueError, match='grid needs'):
    laws.fit(X, Y, _law(TRUTH), grid={'e': (0.0,)})
