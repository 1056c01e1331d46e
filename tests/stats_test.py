"""stats: the 95% half-width of a mean, checked against hand computations."""

import math

import numpy as np
import pytest

from metalearn import stats


def test_half_width_matches_a_hand_computation():
  # 1, 2, 3, 4: mean 2.5, squared deviations 2.25 + 0.25 + 0.25 + 2.25 = 5, sample
  # variance 5 / 3, so the half-width is 1.96 · √(5/3) / √4.
  assert stats.half_width([1, 2, 3, 4]) == pytest.approx(1.96 * math.sqrt(5 / 3) / 2)
  assert isinstance(stats.half_width([1.0, 2.0]), float)


def test_half_width_runs_over_the_given_axis():
  # Columns [0, 2] and [1, 1]: variances 2 and 0 over two observations each.
  v = np.array([[0.0, 1.0], [2.0, 1.0]])
  np.testing.assert_allclose(stats.half_width(v, 0), [1.96 * math.sqrt(2 / 2), 0.0])
  # Rows [0, 1] and [2, 1]: variance 0.5 each.
  np.testing.assert_allclose(stats.half_width(v, 1), [1.96 * 0.5, 1.96 * 0.5])


def test_one_observation_gives_the_chosen_value():
  assert math.isnan(stats.half_width([0.3]))
  assert stats.half_width([0.3], single=0.0) == 0.0
  out = stats.half_width(np.ones((1, 3)), 0, single=0.0)
  assert out.shape == (3,) and not out.any()


def test_welch_half_width_matches_a_hand_computation():
  # Variances 0.005 (0.9, 0.8) and 0.01 (0.7, 0.6, 0.5), worked out by hand.
  assert stats.welch_half_width([0.9, 0.8], [0.7, 0.6, 0.5]) == pytest.approx(
      1.96 * math.sqrt(0.005 / 2 + 0.01 / 3))
  with pytest.raises(ValueError, match="got 1 and 3"):
    stats.welch_half_width([0.9], [0.7, 0.6, 0.5])
