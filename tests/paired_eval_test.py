"""paired_eval: the paired difference of two evaluations of the same episodes."""

import numpy as np
import pytest

from experiments import paired_eval


def _write(path, accuracy_at_last_k):
  acc = np.stack([np.zeros_like(accuracy_at_last_k), accuracy_at_last_k], axis=1)
  np.savez(path, eval_steps=np.array([0, 10]), accuracy=acc)
  return str(path)


def test_difference_and_interval_match_a_hand_computation(tmp_path):
  a = np.array([1.0, 0.8, 1.0, 0.6, 1.0, 0.8])
  b = np.array([1.0, 1.0, 1.0, 0.8, 0.8, 1.0])
  first = _write(tmp_path / "rows_step5_seed1_5w1s1q_k10.npz", a)
  second = _write(tmp_path / "rows_step5_seed1_5w1s1q_k10_rot.npz", b)
  mean_a, mean_b, diff, half, n = paired_eval.paired_difference(first, second)
  # Differences 0, .2, 0, .2, -.2, .2: mean 1/15, sample variance 0.0427 (by hand).
  assert (n, mean_a, mean_b) == (6, pytest.approx(5.2 / 6), pytest.approx(5.6 / 6))
  assert diff == pytest.approx(0.4 / 6)
  d = [0, .2, 0, .2, -.2, .2]
  var = sum((x - 0.4 / 6) ** 2 for x in d) / 5
  assert half == pytest.approx(1.96 * (var / 6) ** 0.5)


def test_files_of_different_episodes_are_refused(tmp_path):
  x = np.ones(4)
  first = _write(tmp_path / "rows_step5_seed1_5w1s1q_k10.npz", x)
  for other in ("rows_step5_seed2_5w1s1q_k10.npz", "rows_step6_seed1_5w1s1q_k10.npz",
                "rows_step5_seed1_5w1s15q_k10.npz"):
    with pytest.raises(ValueError, match="nothing to pair"):
      paired_eval.paired_difference(first, _write(tmp_path / other, x))
  shorter = _write(tmp_path / "rows_step5_seed1_5w1s1q_k3.npz", np.ones(3))
  with pytest.raises(ValueError, match="has 4 episodes"):
    paired_eval.paired_difference(first, shorter)
