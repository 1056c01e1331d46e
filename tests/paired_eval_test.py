"""paired_eval: the paired difference of two evaluations of the same episodes."""

import json
import subprocess
import sys

import numpy as np
import pytest

from launch import paired_eval

_SETTINGS = dict(data="omniglot", eval_split="test", eval_seed=1, eval_batch=50,
                 eval_ways=5, eval_shots=1, eval_queries=1, checkpoint_step=5,
                 eval_rotate=False)


def _write(path, accuracy_at_last_k, **settings):
  """An evaluation file pair as ``metalearn.run.scoring`` writes it: ``.npz`` and rows."""
  acc = np.stack([np.zeros_like(accuracy_at_last_k), accuracy_at_last_k], axis=1)
  np.savez(path, eval_steps=np.array([0, 10]), accuracy=acc)
  row = dict(_SETTINGS, **settings, metric="accuracy", k=10)
  path.with_suffix(".jsonl").write_text(json.dumps(row) + "\n")
  return str(path)


def test_difference_and_interval_match_a_hand_computation(tmp_path):
  a = np.array([1.0, 0.8, 1.0, 0.6, 1.0, 0.8])
  b = np.array([1.0, 1.0, 1.0, 0.8, 0.8, 1.0])
  first = _write(tmp_path / "a.npz", a)
  second = _write(tmp_path / "b.npz", b, eval_rotate=True)
  mean_a, mean_b, diff, half, n = paired_eval.paired_difference(first, second)
  # Differences 0, .2, 0, .2, -.2, .2: mean 1/15, sample variance 0.0427 (by hand).
  assert (n, mean_a, mean_b) == (6, pytest.approx(5.2 / 6), pytest.approx(5.6 / 6))
  assert diff == pytest.approx(0.4 / 6)
  d = [0, .2, 0, .2, -.2, .2]
  var = sum((x - 0.4 / 6) ** 2 for x in d) / 5
  assert half == pytest.approx(1.96 * (var / 6) ** 0.5)


def test_other_checkpoints_pair_but_other_episodes_are_refused(tmp_path):
  x = np.ones(4)
  first = _write(tmp_path / "a.npz", x)
  # Another checkpoint (or run) scored on the same episodes pairs up.
  assert paired_eval.paired_difference(first, _write(
      tmp_path / "later.npz", x, checkpoint_step=9))[-1] == 4
  for i, other in enumerate([dict(eval_seed=2), dict(eval_batch=25), dict(eval_ways=20),
                             dict(eval_shots=5), dict(eval_queries=15),
                             dict(eval_split="val"), dict(data="miniimagenet")]):
    with pytest.raises(ValueError, match="nothing to pair"):
      paired_eval.paired_difference(first, _write(tmp_path / f"o{i}.npz", x, **other))
  shorter = _write(tmp_path / "short.npz", np.ones(3))
  with pytest.raises(ValueError, match="has 4 episodes"):
    paired_eval.paired_difference(first, shorter)


def test_files_without_eval_batch_take_it_from_the_run_config(tmp_path):
  run = tmp_path / "run"
  (run / "eval").mkdir(parents=True)
  first = _write(run / "eval" / "a.npz", np.ones(4), eval_batch=500)
  old = _write(run / "eval" / "old.npz", np.ones(4))
  row = json.loads((run / "eval" / "old.jsonl").read_text())
  del row["eval_batch"]
  (run / "eval" / "old.jsonl").write_text(json.dumps(row) + "\n")
  with pytest.raises(ValueError, match="no .*config.json"):
    paired_eval.paired_difference(first, old)
  (run / "config.json").write_text(json.dumps({"eval": {"batch": 50}}))
  with pytest.raises(ValueError, match="nothing to pair"):  # 50 is not 500.
    paired_eval.paired_difference(first, old)
  (run / "config.json").write_text(json.dumps({"eval": {"batch": 500}}))
  assert paired_eval.paired_difference(first, old)[-1] == 4


def test_command_line_errors_are_one_line(tmp_path):
  first = _write(tmp_path / "a.npz", np.ones(4))
  (tmp_path / "lonely.npz").write_bytes((tmp_path / "a.npz").read_bytes())
  out = subprocess.run([sys.executable, "-m", "launch.paired_eval", first,
                        str(tmp_path / "lonely.npz")], capture_output=True, text=True)
  assert out.returncode == 2
  assert out.stderr.strip().startswith("error: ") and "no rows file" in out.stderr
  assert len(out.stderr.strip().splitlines()) == 1
