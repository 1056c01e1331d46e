"""Tests for metalearn.scaling.frontier against hand-checked answers and known surfaces.

The known surface is ``err(M, a) = E + A M^-alpha + B a^-beta``: its iso-error contour has
slope ``-(alpha A M^-alpha) / (beta B a^-beta)`` and its iso-FLOP optimum is found here
with scipy, independently of the code under test.
"""

import math

import numpy as np
import pytest
from scipy import optimize

from metalearn.scaling import frontier as fr

SURF = dict(E=0.05, A=3.0, alpha=0.3, B=1.0, beta=0.4)
GRID_M = np.geomspace(1e3, 1e6, 25)
GRID_A = np.geomspace(1.0, 1e4, 41)
N_TEST = 100
BUDGETS = (3e4, 1e5, 3e5, 1e6)


def _surface(m, a):
  s = SURF
  return s['E'] + s['A'] * np.asarray(m, float)**-s['alpha'] + s['B'] * np.asarray(
      a, float)**-s['beta']


def _true_slope(m, a):
  s = SURF
  return -(s['alpha'] * s['A'] * m**-s['alpha']) / (s['beta'] * s['B'] * a**-s['beta'])


def _true_share(budget, n_test=N_TEST):
  """Meta-training share minimising the surface at a total budget (scipy, in log M)."""
  hi = math.log(budget - n_test * GRID_A[0])
  res = optimize.minimize_scalar(
      lambda lm: float(_surface(math.exp(lm), (budget - math.exp(lm)) / n_test)),
      bounds=(math.log(GRID_M[0]), hi), method='bounded', options=dict(xatol=1e-10))
  assert res.success
  return math.exp(res.x) / budget


def _surface_records(values_rng=None, seeds=3, episodes=200, noise=0.03):
  """One group per M of the grid, one record per a; noisy per-episode values if asked."""
  recs = []
  for i, m in enumerate(GRID_M):
    if values_rng is not None:
      seed_effect = values_rng.normal(0, 0.003, (seeds, 1))
      episode_effect = values_rng.normal(0, noise, (1, episodes))
    for j, a in enumerate(GRID_A):
      values = None
      if values_rng is not None:
        values = (_surface(m, a) + seed_effect + episode_effect
                  + values_rng.normal(0, noise, (seeds, episodes)))
      recs.append(fr.Record(f'm{i}', j, m, a,
                            float(_surface(m, a) if values is None else values.mean()),
                            values))
  return recs


# ----------------------------------------------------------------------------- envelope


def test_lower_envelope_hand_checked_with_ties_duplicates_and_dominated_points():
  points = [
      (1.0, 0.9),  # 0: on.
      (2.0, 0.5),  # 1: on.
      (2.0, 0.7),  # 2: same compute as 1, more error: off.
      (3.0, 0.5),  # 3: same error as 1, more compute: off.
      (4.0, 0.3),  # 4: on.
      (4.0, 0.3),  # 5: exact duplicate of 4: off (lowest index kept).
      (5.0, 0.6),  # 6: dominated by 1: off.
      (0.5, 1.0),  # 7: cheapest: on.
      (6.0, 0.1),  # 8: on.
      (7.0, 0.1),  # 9: ties 8 on error, dearer: off.
  ]
  c, e = np.array(points).T
  env = fr.lower_envelope(c, e)
  np.testing.assert_array_equal(env.index, [7, 0, 1, 4, 8])
  np.testing.assert_array_equal(env.compute, [0.5, 1.0, 2.0, 4.0, 6.0])
  np.testing.assert_array_equal(env.error, [1.0, 0.9, 0.5, 0.3, 0.1])


def test_lower_envelope_matches_brute_force_definition():
  rng = np.random.default_rng(0)
  for _ in range(50):
    n = int(rng.integers(1, 30))
    c = rng.integers(0, 8, n).astype(float)  # Small integers: many ties.
    e = rng.integers(0, 8, n).astype(float)
    want = []
    for i in range(n):
      beaten = any(c[j] <= c[i] and e[j] <= e[i] and (c[j] < c[i] or e[j] < e[i])
                   for j in range(n))
      first_copy = not any(c[j] == c[i] and e[j] == e[i] for j in range(i))
      if not beaten and first_copy:
        want.append(i)
    want.sort(key=lambda i: c[i])
    np.testing.assert_array_equal(fr.lower_envelope(c, e).index, want)


def test_lower_envelope_skips_non_finite_points_and_accepts_none():
  env = fr.lower_envelope([1.0, 2.0, np.nan, 3.0], [0.5, np.nan, 0.1, 0.2])
  np.testing.assert_array_equal(env.index, [0, 3])
  assert fr.lower_envelope([], []).index.size == 0
  with pytest.raises(ValueError):
    fr.lower_envelope([1.0, 2.0], [1.0])


def _two_groups():
  """'big' meta-trains long and adapts cheaply; 'small' meta-trains little and needs many
  test-time steps for the same errors."""
  return [
      dict(group='big', k=1, meta_training_flops=1000.0, adaptation_flops=1.0, error=0.30),
      dict(group='big', k=2, meta_training_flops=1000.0, adaptation_flops=2.0, error=0.20),
      dict(group='small', k=8, meta_training_flops=10.0, adaptation_flops=8.0, error=0.35),
      dict(group='small', k=32, meta_training_flops=10.0, adaptation_flops=32.0, error=0.20),
      dict(group='small', k=64, meta_training_flops=10.0, adaptation_flops=64.0, mean=0.25),
  ]


def test_record_frontiers_hand_checked():
  recs = _two_groups()
  adapt = fr.adaptation_frontier(recs)
  # By a: big/1 (0.30), big/2 (0.20); everything of 'small' costs more a for no less error.
  assert list(zip(adapt.groups, adapt.k)) == [('big', 1), ('big', 2)]
  assert adapt.n_test is None
  # n_test = 1: totals big 1001, 1002; small 18, 42, 74.
  one = fr.total_flops_frontier(recs, n_test=1)
  assert list(zip(one.groups, one.k)) == [('small', 8), ('small', 32)]
  np.testing.assert_allclose(one.compute, [18.0, 42.0])
  np.testing.assert_array_equal(one.index, [2, 3])
  # n_test = 100: big 1100, 1200; small 810, 3210, 6410.
  many = fr.total_flops_frontier(recs, n_test=100)
  assert list(zip(many.groups, many.k)) == [('small', 8), ('big', 1), ('big', 2)]
  np.testing.assert_allclose(many.compute, [810.0, 1100.0, 1200.0])
  np.testing.assert_allclose(fr.total_flops([1000.0, 10.0], [2.0, 32.0], 100),
                             [1200.0, 3210.0])


def test_n_test_must_be_explicit():
  with pytest.raises(TypeError):
    fr.total_flops_frontier(_two_groups())  # pylint: disable=no-value-for-parameter
  with pytest.raises(ValueError):
    fr.total_flops_frontier(_two_groups(), n_test=None)
  with pytest.raises(TypeError):
    fr.iso_flop_profiles(_two_groups(), [1e4])  # pylint: disable=no-value-for-parameter


def _cheapest_reaching(front, target):
  """The frontier record of least total FLOPs with error <= target."""
  ok = np.flatnonzero(front.error <= target)
  return front.records[ok[0]] if ok.size else None


def test_more_test_episodes_favour_cheaper_adaptation():
  # Constructed: at error 0.2, 'small' wins at few episodes and 'big' at many.
  recs = _two_groups()
  picks = [_cheapest_reaching(fr.total_flops_frontier(recs, n), 0.2) for n in (1, 10, 100)]
  assert [(r.group, r.k) for r in picks] == [('small', 32), ('small', 32), ('big', 2)]
  # And in general: the chosen record's adaptation FLOPs never increase with n_test.
  rng = np.random.default_rng(1)
  for _ in range(30):
    recs = [fr.Record(f'g{g}', k, m, a, e) for g, m in enumerate(10**rng.uniform(1, 4, 6))
            for k, (a, e) in enumerate(zip(10**rng.uniform(0, 3, 5), rng.uniform(0, 1, 5)))]
    target = float(np.quantile([r.error for r in recs], 0.3))
    chosen = [_cheapest_reaching(fr.total_flops_frontier(recs, n), target).adaptation_flops
              for n in (0, 1, 3, 10, 30, 100, 1000, 1e5)]
    assert all(b <= a for a, b in zip(chosen, chosen[1:])), chosen


def test_records_are_validated():
  v = np.array([[0.1, 0.3], [0.2, 0.2]])
  r = fr.as_records([dict(group='g', k=1, meta_training_flops=1.0, adaptation_flops=1.0,
                          values=v)])[0]
  assert r.error == pytest.approx(0.2)
  assert fr.as_records([dict(group='g', k=1, meta_training_flops=1.0, adaptation_flops=1.0,
                             values=[0.1, 0.3])])[0].values.shape == (2, 1)
  with pytest.raises(ValueError, match='not the mean'):
    fr.as_records([fr.Record('g', 1, 1.0, 1.0, 0.5, v)])
  with pytest.raises(ValueError, match='several meta-training'):
    fr.iso_flop_profiles([fr.Record('g', 1, 1.0, 1.0, 0.5), fr.Record('g', 2, 2.0, 2.0, 0.4)],
                         [10.0], 1)


# ----------------------------------------------------------------------------- interpolation


def test_interpolation_is_log_linear_and_refuses_to_extrapolate():
  xs, ys = [100.0, 1.0, 10.0], [0.1, 0.5, 0.3]
  assert fr.interpolate_log(10.0, xs, ys) == pytest.approx(0.3)
  assert fr.interpolate_log(math.sqrt(10.0), xs, ys) == pytest.approx(0.4)
  assert fr.interpolate_log(100.0, xs, ys) == pytest.approx(0.1)
  assert fr.interpolate_log(1.0, xs, ys) == pytest.approx(0.5)
  for outside in (0.999, 100.001, 1e6, 0.0, -1.0):
    assert fr.interpolate_log(outside, xs, ys) is None


def test_iso_flop_profile_is_none_outside_each_groups_measured_range():
  recs = [
      # 'a': M = 100, measured a in [1, 100].
      fr.Record('a', 1, 100.0, 1.0, 0.5), fr.Record('a', 10, 100.0, 100.0, 0.3),
      # 'b': M = 500, measured a in [10, 40].
      fr.Record('b', 1, 500.0, 10.0, 0.4), fr.Record('b', 4, 500.0, 40.0, 0.2),
      # 'c': M = 5000 > every budget below.
      fr.Record('c', 1, 5000.0, 1.0, 0.1), fr.Record('c', 2, 5000.0, 2.0, 0.05),
  ]
  # Budget 1100, n_test 10: 'a' gets a = 100 (its top), 'b' a = 60 (> 40), 'c' nothing.
  p = fr.iso_flop_profiles(recs, [1100.0], 10)[0]
  assert p.groups == ('a', 'b', 'c')
  np.testing.assert_allclose(p.adaptation_flops, [100.0, 60.0, -390.0])
  np.testing.assert_allclose(p.meta_fraction, [100 / 1100, 500 / 1100, 5000 / 1100])
  assert p.error[0] == pytest.approx(0.3) and p.error[1:] == (None, None)
  assert not p.bracketed and p.optimum_fraction is None
  # Budget 700: 'a' a = 60 -> 0.5 - 0.2 log(60) / log(100); 'b' a = 20 -> 0.3.
  p = fr.iso_flop_profiles(recs, [700.0], 10)[0]
  assert p.error[0] == pytest.approx(0.5 - 0.2 * math.log(60) / math.log(100))
  assert p.error[1] == pytest.approx(0.4 - 0.2 * math.log(2) / math.log(4))
  assert p.error[2] is None


# ----------------------------------------------------------------------------- iso-FLOP


def test_iso_flop_optimum_matches_the_analytic_optimum():
  profiles = fr.iso_flop_profiles(_surface_records(), BUDGETS, N_TEST)
  for p in profiles:
    truth = _true_share(p.budget)
    assert p.bracketed
    # Measured on this grid: at most 0.0041 off (0.0021 with window=1).
    assert p.optimum_fraction == pytest.approx(truth, abs=0.01), p.budget
    assert p.optimum_meta_training_flops == pytest.approx(p.optimum_fraction * p.budget)
    assert p.optimum_adaptation_flops == pytest.approx(
        (p.budget - p.optimum_meta_training_flops) / N_TEST)
    best = float(_surface(truth * p.budget, (1 - truth) * p.budget / N_TEST))
    assert p.optimum_error == pytest.approx(best, abs=2e-3)
    assert p.optimum_fraction_ci is None and p.n_boot == 0


def test_iso_flop_resampling_ci_contains_the_analytic_optimum():
  recs = _surface_records(np.random.default_rng(7))
  profiles = fr.iso_flop_profiles(recs, BUDGETS, N_TEST, rng=np.random.default_rng(8),
                                  n_boot=200)
  widths = []
  for p in profiles:
    if p.optimum_fraction is None:  # A flat, noisy profile may not bracket its minimum.
      continue
    lo, hi = p.optimum_fraction_ci
    truth = _true_share(p.budget)
    assert lo <= truth <= hi, (p.budget, truth, lo, hi)
    assert lo <= p.optimum_fraction <= hi
    assert p.n_boot == 200 and 0 <= p.boot_censored_fraction < 0.5
    widths.append(hi - lo)
  assert len(widths) >= 3
  # Not vacuous (over 20 noise draws the median width was 0.13, coverage 79 of 80).
  assert max(widths) < 0.45 and np.median(widths) < 0.25, widths
  again = fr.iso_flop_profiles(recs, BUDGETS, N_TEST, rng=np.random.default_rng(8),
                               n_boot=200)
  assert [p.optimum_fraction_ci for p in again] == [p.optimum_fraction_ci for p in profiles]


def test_iso_flop_optimum_at_the_edge_is_not_reported():
  # No gain from test-time compute (B = 0 in effect): error falls with M only, so the
  # lowest point is the profile's last and the optimum is not bracketed.
  recs = [fr.Record(f'm{i}', j, m, a, 0.05 + 3.0 * m**-0.3)
          for i, m in enumerate(GRID_M) for j, a in enumerate(GRID_A)]
  for p in fr.iso_flop_profiles(recs, BUDGETS, N_TEST):
    assert not p.bracketed and p.optimum_fraction is None and p.optimum_error is None


def test_resampling_keeps_k_paired_within_a_group():
  # Every k of a row is the same episodes shifted by 0.1 per column: paired resampling
  # keeps the column differences exactly, whatever episodes are drawn.
  rng = np.random.default_rng(3)
  base = rng.normal(0.5, 0.2, (4, 1, 2, 50))  # [nM, 1, seeds, episodes]
  values = base + 0.1 * np.arange(5)[None, :, None, None]
  grids = fr.bootstrap_error_grids(values, 100, np.random.default_rng(4))
  assert grids.shape == (100, 4, 5)
  np.testing.assert_allclose(np.diff(grids, axis=-1), 0.1, atol=1e-12)
  assert np.std(grids[:, 0, 0]) > 0.005  # The draws do vary.
  np.testing.assert_allclose(grids.mean(0), values.mean((2, 3)), atol=0.02)


# ----------------------------------------------------------------------------- iso-error


def test_iso_error_contour_lies_on_the_level_and_never_extrapolates():
  err = _surface(GRID_M[:, None], GRID_A[None, :])
  for level in (0.15, 0.2, 0.3):
    contour = fr.iso_error_contour(GRID_M, GRID_A, err, level)
    for m, a in zip(contour.meta_training_flops, contour.adaptation_flops):
      reachable = _surface(m, GRID_A[-1]) <= level <= _surface(m, GRID_A[0])
      assert (a is not None) == reachable, (level, m)
      if a is not None:
        assert GRID_A[0] <= a <= GRID_A[-1]
        assert float(_surface(m, a)) == pytest.approx(level, abs=2e-3)
  # An unmeasured cell next to the crossing leaves that row without a contour point.
  holed = err.copy()
  row = int(np.argmax([a is not None for a in contour.adaptation_flops]))
  holed[row, np.searchsorted(GRID_A, contour.adaptation_flops[row])] = np.nan
  assert fr.iso_error_contour(GRID_M, GRID_A, holed, 0.3).adaptation_flops[row] is None


def test_exchange_rate_matches_the_closed_form_along_the_contour():
  err = _surface(GRID_M[:, None], GRID_A[None, :])
  for level in (0.15, 0.2, 0.3):
    xr = fr.exchange_rate(GRID_M, GRID_A, err, level)
    found = [i for i, s in enumerate(xr.slope) if s is not None]
    assert len(found) >= 6 and found == list(range(found[0], found[-1] + 1))
    for i in found:
      m, a = xr.meta_training_flops[i], xr.adaptation_flops[i]
      truth = _true_slope(m, a)
      # Measured: interior rows within 3.8%, the two ends (one-sided) within 7.3%.
      tol = 0.1 if i in (found[0], found[-1]) else 0.05
      assert xr.slope[i] == pytest.approx(truth, rel=tol), (level, i)
    assert xr.slope_ci == (None,) * len(GRID_M) and xr.n_samples == 0


def test_exchange_rate_is_constant_on_a_multiplicative_surface():
  # err = 2 M^-0.3 a^-0.4: every contour is a line of slope -0.3 / 0.4 in log-log.
  err = 2.0 * GRID_M[:, None]**-0.3 * GRID_A[None, :]**-0.4
  xr = fr.exchange_rate(GRID_M, GRID_A, err, 0.05)
  slopes = [s for s in xr.slope if s is not None]
  assert len(slopes) >= 10
  np.testing.assert_allclose(slopes, -0.75, atol=0.01)
  assert xr.overall_slope == pytest.approx(-0.75, abs=0.005)


def test_exchange_rate_ci_from_resampled_grids_contains_the_closed_form():
  rng = np.random.default_rng(11)
  shape = (len(GRID_M), len(GRID_A))
  values = (_surface(GRID_M[:, None], GRID_A[None, :])[..., None, None]
            + rng.normal(0, 0.001, shape[:1] + (1, 3, 1))      # seed effects
            + rng.normal(0, 0.01, shape[:1] + (1, 1, 200))     # episode difficulty
            + rng.normal(0, 0.01, shape + (3, 200)))
  err = values.mean((2, 3))
  samples = fr.bootstrap_error_grids(values, 200, np.random.default_rng(12))
  level = 0.2
  xr = fr.exchange_rate(GRID_M, GRID_A, err, level, error_samples=samples)
  assert xr.n_samples == 200
  hits, widths = [], []
  for m, ci in zip(xr.meta_training_flops, xr.slope_ci):
    if ci is None or not _surface(m, GRID_A[-1]) < level < _surface(m, GRID_A[0]):
      continue
    a_true = math.exp(optimize.brentq(lambda la: float(_surface(m, math.exp(la))) - level,
                                      0.0, math.log(GRID_A[-1])))
    hits.append(ci[0] <= _true_slope(m, a_true) <= ci[1])
    widths.append(ci[1] - ci[0])
  assert len(hits) >= 8
  assert np.mean(hits) >= 0.8, hits  # Pointwise 95% intervals.
  assert np.median(widths) < 0.6  # Slopes here run from -3.2 to -0.34.
  lo, hi = xr.overall_slope_ci
  assert lo <= xr.overall_slope <= hi


def test_error_grid_from_records_interpolates_within_groups_only():
  recs = _surface_records(np.random.default_rng(5), seeds=2, episodes=20)
  sub = [r for r in recs if r.group in ('m0', 'm12') and (r.group == 'm0' or r.k >= 20)]
  grid = fr.error_grid_from_records(sub, GRID_A, rng=np.random.default_rng(6), n_boot=30)
  assert grid.groups == ('m0', 'm12')
  np.testing.assert_allclose(grid.meta_training_flops, GRID_M[[0, 12]])
  assert np.all(np.isfinite(grid.error[0]))
  assert np.all(np.isnan(grid.error[1, :20])) and np.all(np.isfinite(grid.error[1, 20:]))
  np.testing.assert_allclose(grid.error[1, 20:], [r.error for r in sub if r.group == 'm12'])
  assert grid.samples.shape == (30, 2, len(GRID_A))
  np.testing.assert_array_equal(np.isnan(grid.samples[0]), np.isnan(grid.error))
  # The same grid feeds the contour and exchange-rate functions.
  xr = fr.exchange_rate(grid.meta_training_flops, grid.adaptation_flops, grid.error, 0.3,
                        error_samples=grid.samples)
  assert len(xr.slope) == 2
