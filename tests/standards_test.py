"""Tests for metalearn.scaling.standards: eligibility, extrapolation, drift, residuals.

Every test has a known truth, and each assertion is one a wrong implementation fails.
"""

import json

import numpy as np
import pytest

from metalearn.scaling import fits as fits_lib
from metalearn.scaling import standards

C12 = np.logspace(3, 9, 12)
K = 2.0 ** np.arange(11)  # Inner steps 1..1024.
FLOOR_TRUTH = {'E': 0.05, 'A': 2.0, 'alpha': 0.3}


def _noisy(name, params, compute, sd, seed):
  rng = np.random.default_rng(seed)
  return fits_lib.predict(name, compute, params) + rng.normal(0.0, sd, len(compute))


def _transient(k, sd, seed):
  """Floor 0: a power law 0.25 k^-0.1 plus a fast transient 0.3 / k gone by k ~ 32.

  Over a short range the transient's decay looks like the approach to a floor.
  """
  rng = np.random.default_rng(seed)
  return 0.3 / k + 0.25 * k**-0.1 + rng.normal(0.0, sd, len(k))


@pytest.mark.parametrize('compute,n_params,ok,words', [
    (np.geomspace(1, 10, 6), 3, True, '6 points'),
    (np.geomspace(1, 10, 5), 3, False, 'only 5 points'),
    (np.geomspace(1, 9.9, 6), 3, False, 'less than one decade'),
    (np.geomspace(1, 10, 6), 4, True, '4 parameters'),
    (np.geomspace(1, 10, 6), 5, False, 'fewer than two residual degrees of freedom'),
    (np.geomspace(1, 1e3, 4), 3, False, 'only 4 points'),
    (np.r_[np.geomspace(1, 10, 5), 10.0], 2, False, 'only 5 points'),  # A repeat.
])
def test_eligible_boundaries(compute, n_params, ok, words):
  got, reason = standards.eligible(compute, n_params)
  assert got is ok
  assert words in reason and reason.endswith('.')
  assert reason.startswith('Not fitted: ') != ok


def test_eligible_names_every_problem():
  _, reason = standards.eligible(np.geomspace(1, 5, 4), 3)
  assert 'only 4 points' in reason and '5x' in reason and 'degrees of freedom' in reason


def test_drift_of_a_correct_floor_model_stays_within_noise():
  for seed in range(3):
    y = _noisy('power_law_floor', FLOOR_TRUTH, C12, 0.002, seed)
    d = standards.parameter_drift('power_law_floor', C12, y)
    fitted = [r for r in d['prefixes'] if 'params' in r]
    assert [r['n_points'] for r in fitted] == list(range(6, 13))
    full = fitted[-1]
    for key, value in FLOOR_TRUTH.items():
      lo, hi = full['ci95'][key]
      assert lo <= value <= hi, (seed, key, full['ci95'])
    assert abs(full['params']['E'] - 0.05) < 0.004 and abs(full['params']['alpha'] - 0.3) < 0.02
    assert d['max_abs_drift_z']['E'] < 3 and d['max_abs_drift_z']['alpha'] < 3, d
    assert not d['last_below_floor'] and d['floor_crossed'] == []
    assert len(d['estimate']['E']) == len(d['c_max']) == len(d['se']['E']) == 7


def test_pure_power_law_gives_no_floor_to_drift_from():
  # E + A C^-alpha contains the truth (E = 0): the full-range floor is ~0 and nothing
  # crosses it, so the flags stay quiet.
  for seed in range(3):
    y = _noisy('power_law', {'A': 0.4, 'alpha': 0.3}, K, 0.002, seed)
    d = standards.parameter_drift('power_law_floor', K, y)
    assert d['full_range_floor'] < 0.02 < y[-1]
    assert not d['last_below_floor'] and d['floor_crossed'] == []


def test_floor_drifts_down_when_the_true_floor_is_zero():
  for seed in range(3):
    y = _transient(K, 0.002, seed)
    d = standards.parameter_drift('power_law_floor', K, y)
    e = np.array(d['estimate']['E'])
    assert len(e) == 6  # k <= 32 is the first prefix over a decade with 6 points.
    assert np.all(np.diff(e) < 0.002) and e[0] - e[-1] > 0.02, e  # Falls with range.
    assert d['last_below_floor'] and d['floor_margin'] > 0
    assert d['floor_crossed'] and d['floor_crossed'][0] == 32.0
    assert 'lies below the full-range floor' in d['statement']


def test_drift_skips_prefixes_that_are_not_eligible():
  c = np.geomspace(1, 20, 8)
  d = standards.parameter_drift('power_law_floor', c, np.linspace(0.5, 0.2, 8))
  assert [r['eligible'] for r in d['prefixes']] == [False, True, True]  # 6 points: 8.5x.
  assert 'less than one decade' in d['prefixes'][0]['reason']
  assert d['c_max'] == [pytest.approx(c[6]), pytest.approx(c[7])]


def test_power_law_on_saturating_truth_underpredicts_outside_the_cis():
  truth = {'E': 0.1, 'U': 0.8, 's': 0.5, 'log_c_mid': np.log(1e6)}
  compute, sd = np.logspace(6, 11, 21), 0.003
  for seed in range(3):
    y = _noisy('sigmoid_log', truth, compute, sd, seed)
    r = standards.extrapolation_splits('power_law', compute, y, 1.96 * sd, splits=(4, 8, 12))
    s = r['summary']
    assert s['n_predictions'] == 24 and s['n_points'] == 12
    assert s['bias_sign'] == 'under' and s['mean_bias'] < -0.02
    assert s['fraction_inside_ci'] < 0.1
    assert 'underpredicts all' in s['verdict']
    for split in r['splits']:
      assert all(p['bias'] == 'under' for p in split['points'])
      assert all(p['residual'] == pytest.approx(p['predicted'] - p['observed'])
                 for p in split['points'])


def test_correct_model_keeps_held_out_points_inside_their_cis():
  truth, sd, inside, bias = {'A': 2.0, 'alpha': 0.3}, 0.002, [], []
  for seed in range(200):  # 600 held-out predictions.
    y = _noisy('power_law', truth, C12, sd, seed)
    r = standards.extrapolation_splits('power_law', C12, y, 1.96 * sd, splits=(3,))
    inside += [p['inside_ci'] for p in r['splits'][0]['points']]
    bias += [p['residual'] for p in r['splits'][0]['points']]
  assert 0.91 < np.mean(inside) < 0.99, np.mean(inside)
  assert abs(np.mean(bias)) < 0.2 * sd


def test_every_saturating_form_overpredicts_a_floorless_truth():
  y, sd = _transient(K, 0.002, seed=0), 0.002
  results = [standards.extrapolation_splits(m, K, y, 1.96 * sd)
             for m in ('power_law_floor', 'sigmoid_log')]
  for r in results:
    s = r['summary']
    assert s['bias_sign'] == 'over' and s['fraction_inside_ci'] == 0.0
    assert s['verdict'].startswith('overpredicts all 6 held-out predictions')
    assert 'outside their CIs' in s['verdict']
    assert not any(w in s['verdict'] for w in ('×', 'times', 'worse', 'better'))
  sentence = standards.shared_bias(results)
  assert sentence and 'overpredicts every held-out point' in sentence
  # A form that errs the other way breaks the pattern.
  under = standards.extrapolation_splits('power_law', K, y, 1.96 * sd)
  assert under['summary']['bias_sign'] == 'under'
  assert standards.shared_bias(results + [under]) is None


def test_verdict_inside_and_skipped_splits():
  y = fits_lib.predict('power_law', C12, {'A': 2.0, 'alpha': 0.3})
  r = standards.extrapolation_splits('power_law', C12, y, 1e-3, splits=(1,))
  assert r['summary']['verdict'].startswith('the held-out point is within its 95% CI')
  r = standards.extrapolation_splits('power_law', C12, y - 0.01 * (C12 > 1e8), 1e-3,
                                    splits=(1, 2))  # The top two points drop.
  assert r['summary']['verdict'].startswith('overpredicts all 3 held-out predictions (2 points')
  c7 = np.geomspace(1, 1e3, 7)
  r = standards.extrapolation_splits('power_law', c7, 0.5 * c7**-0.2, 0.01, splits=(1, 2))
  assert [s['eligible'] for s in r['splits']] == [True, False]
  assert 'only 5 points' in r['splits'][1]['reason']
  r = standards.extrapolation_splits('power_law', c7, 0.5 * c7**-0.2, 0.01, splits=(2,))
  assert r['summary']['n_predictions'] == 0 and 'no extrapolation test' in r['summary']['verdict']
  with pytest.raises(ValueError, match='Cannot hold out'):
    standards.extrapolation_splits('power_law', c7, c7, 0.01, splits=(7,))


def test_residuals_are_fitted_minus_observed():
  y = _noisy('power_law_floor', FLOOR_TRUTH, C12, 0.002, seed=1)
  f = fits_lib.fit('power_law_floor', C12, y)
  r = standards.residuals(f, C12, y, y_ci=1.96 * 0.002)
  np.testing.assert_allclose(r['residual'], f.predict(C12) - y)
  np.testing.assert_allclose(r['z'], (f.predict(C12) - y) / 0.002)
  assert r['inside_ci'] == list(np.abs(f.predict(C12) - y) <= 1.96 * 0.002)
  assert standards.residuals(f.to_dict(), C12, y)['residual'] == r['residual']


def test_outputs_are_strict_json():
  y = _transient(K, 0.002, seed=1)
  for out in (standards.parameter_drift('power_law_floor', K, y),
              standards.extrapolation_splits('power_law_floor', K, y, 0.004),
              standards.residuals(fits_lib.fit('power_law', K, y), K, y, 0.004)):
    json.dumps(out, allow_nan=False)
