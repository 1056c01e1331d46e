"""training_windows: window means, their intervals and a two-window comparison."""

import json
import subprocess
import sys

import pytest

from launch import training_windows


def _run_dir(tmp_path, rows):
  (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
  return str(tmp_path)


# Accuracy 0.9, 0.8 | 0.7, 0.6, 0.5 in windows (0, 200] and (200, 500]; a validation
# row at 200 must not count as a training row.
_ROWS = [dict(step=100, acc=0.9), dict(step=200, acc=0.8),
         {"step": 200, "val/acc_k5": 0.75},
         dict(step=300, acc=0.7), dict(step=400, acc=0.6), dict(step=500, acc=0.5)]


def test_window_means_and_intervals_match_a_hand_computation():
  train = [r for r in _ROWS if "acc" in r]
  assert training_windows.window_values(train, "acc", 0, 200) == [0.9, 0.8]
  mean, half = training_windows.mean_and_half_width([0.7, 0.6, 0.5])
  # Mean 0.6, sample variance (0.01 + 0 + 0.01) / 2 = 0.01, sd 0.1.
  assert mean == pytest.approx(0.6)
  assert half == pytest.approx(1.96 * 0.1 / 3 ** 0.5)
  assert training_windows.mean_and_half_width([0.4])[0] == 0.4


def test_compare_gives_the_welch_interval():
  train = [r for r in _ROWS if "acc" in r]
  d, half, na, nb = training_windows.compare_windows(train, "acc", (0, 200), (200, 500))
  # Means 0.85 and 0.6; variances 0.005 (n 2) and 0.01 (n 3), worked out by hand.
  assert (na, nb) == (2, 3)
  assert d == pytest.approx(-0.25)
  assert half == pytest.approx(1.96 * (0.005 / 2 + 0.01 / 3) ** 0.5)
  with pytest.raises(ValueError, match="holds 1 logged rows"):
    training_windows.compare_windows(train, "acc", (0, 100), (200, 500))


def test_spread_and_span_give_min_median_max_of_a_rate(tmp_path):
  rows = [dict(step=100 * i, acc=0.5, meta_steps_per_s=r)
          for i, r in enumerate([0.9, 0.7, 0.8, 1.0], start=1)]
  text = training_windows.report(_run_dir(tmp_path, rows), 200, ["acc"], "",
                                 ["meta_steps_per_s"], "100:400")
  assert "acc | meta_steps_per_s min / median / max" in text
  # (0, 200]: 0.9, 0.7 → median 0.8; (200, 400]: 0.8, 1.0 → median 0.9.
  assert "0–200 | 2 | 0.5000 ± 0.0000 | 0.700 / 0.800 / 0.900" in text
  assert "200–400 | 2 | 0.5000 ± 0.0000 | 0.800 / 0.900 / 1.000" in text
  # (100, 400]: 0.7, 0.8, 1.0.
  assert "span 100–400 | 3 | 0.5000 ± 0.0000 | 0.700 / 0.800 / 1.000" in text
  # A run that logged no rate says so and still reports the means.
  text = training_windows.report(_run_dir(tmp_path, _ROWS), 200, ["acc"], "",
                                 ["meta_steps_per_s"])
  assert "(none has meta_steps_per_s)" in text and "0–200 | 2 | 0.8500 ±" in text


def test_report_lists_windows_validation_and_comparison(tmp_path):
  text = training_windows.report(_run_dir(tmp_path, _ROWS), 200, ["acc"], "0:200,200:500")
  assert "5 logged training rows up to step 500" in text
  assert "0–200 | 2 | 0.8500 ±" in text
  assert "400–600 | 1 | 0.5000 ± nan" in text
  assert "validation at 200: val/acc_k5 0.7500" in text
  assert "acc: 200–500 minus 0–200 = -0.2500 ±" in text


@pytest.mark.parametrize("args, message", [
    (["--compare=5:1,1:2"], "--compare='5:1,1:2': expected two windows"),
    (["--metrics=loss"], "no row has metric 'loss'"),
    (["--window=0"], "--window=0: must be positive"),
    (["--span=300"], "--span='300': expected a window 'a:b'"),
    (["--compare=1:2,3:4,5:6"], "expected two windows"),
])
def test_bad_input_exits_2_with_one_line(tmp_path, args, message):
  proc = subprocess.run(
      [sys.executable, "-m", "launch.training_windows", _run_dir(tmp_path, _ROWS),
       "--metrics=acc", *args], capture_output=True, text=True, check=False)
  assert proc.returncode == 2
  lines = proc.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines


def test_missing_metrics_file_is_named(tmp_path):
  with pytest.raises(ValueError, match="metrics.jsonl: no such file"):
    training_windows.report(str(tmp_path), 100, ["acc"], "")
