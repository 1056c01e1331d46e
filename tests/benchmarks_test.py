"""Benchmarks: the meta-step benchmark runs end to end on a miniature config and its
JSON line has every key the README tables read."""

import dataclasses
import json
import subprocess
import sys

import pytest

from benchmarks import meta_step
from metalearn import flops

TINY = ["--model=tiny", "--algorithm=maml", "--K=1", "--ways=2", "--queries=2",
        "--meta_batch=2", "--steps=2", "--warmup=1", "--conv_impl=im2col"]
KEYS = {"meta_steps_per_s", "median_s", "min_s", "max_s", "compile_s", "flops_per_step",
        "achieved_gflops", "peak_rss_bytes", "settings", "jax", "backend", "date",
        "loadavg", "loadavg_before"}


def test_meta_step_main_prints_one_json_line_with_the_expected_keys(tmp_path):
  out = tmp_path / "rows.jsonl"
  proc = subprocess.run([sys.executable, "-m", "benchmarks.meta_step", *TINY,
                         f"--out={out}"], capture_output=True, text=True, timeout=300,
                        check=True)
  lines = [l for l in proc.stdout.splitlines() if l.strip()]
  assert len(lines) == 1, proc.stdout
  row = json.loads(lines[0])
  assert KEYS <= set(row), KEYS - set(row)
  assert row["settings"]["K"] == 1 and row["settings"]["meta_batch"] == 2
  assert row["median_s"] > 0 and row["flops_per_step"] > 0
  assert json.loads(out.read_text()) == row


def test_flop_count_is_affine_in_K_so_extrapolation_is_exact():
  # K = 3 is extrapolated from the counts at K = 1, 2; compare with a direct count.
  s = meta_step.Settings(model="tiny", algorithm="fomaml", K=3, ways=2, queries=1,
                         task_map="vmap",
                         meta_batch=1,
                         conv_impl="im2col")
  direct = meta_step.count_flops_at(dataclasses.replace(s, unroll=True))
  assert meta_step._count_flops(s) == pytest.approx(direct, rel=1e-3)
  # Not logging: fewer flops than a traced log flag, counted as the costlier branch.
  step, args = meta_step.build(dataclasses.replace(s, unroll=True))
  assert direct < flops.program_flops(step, *args, compiled=True)


def test_alternate_table_pairs_processes_in_turn_and_takes_the_median_ratio():
  from benchmarks import report  # pylint: disable=g-import-not-at-top
  def row(alg, median):
    return dict(settings=dict(algorithm=alg, K=5), date="d", median_s=median, min_s=median,
                max_s=median, loadavg=[1.0], loadavg_before=1.0)
  rows = [row("maml", 3.0), row("fomaml", 2.0), row("maml", 2.0), row("fomaml", 1.0),
          row("maml", 4.0), row("fomaml", 2.5)]
  text = "\n".join(report.alternate_table(rows))
  assert "| 1.50 |" in text and "| 2.00 |" in text and "| 1.60 |" in text
  assert "**1.60×** (range 1.50–2.00)" in text
  with pytest.raises(ValueError, match="in turn"):
    report.alternate_table(rows[1:])
  interrupted = "\n".join(report.alternate_table(rows + [dict(rows[0], date="d7")]))
  assert "**1.60×**" in interrupted and "last row (maml, d7) has no partner" in interrupted


def test_learners_table_gives_seconds_per_step_and_memory_against_the_smallest_k():
  from benchmarks import report  # pylint: disable=g-import-not-at-top
  rows = [dict(algorithm="imaml", k_train=5, meta_steps_per_s=0.25,
               compiled_temp_bytes=52_580_000, peak_rss_bytes=2.5e9, compile_s=12.0,
               date="2026-12-02T10:00:00+00:00", loadavg=[1.0])]
  memory = [dict(algorithm="imaml", K=5, temp_bytes=50e6),
            dict(algorithm="imaml", K=100, temp_bytes=60e6),
            dict(algorithm="maml", K=1, temp_bytes=40e6),
            dict(algorithm="maml", K=20, temp_bytes=100e6)]
  text = "\n".join(report.learners_table(rows, memory))
  assert "| imaml | 5 | 0.25 | 4.00 | 52.6 | 2.50 | 12.0 | 2026-12-02T10:00 | 1.0 |" in text
  assert "| imaml | 100 | 60.0 | 1.20× |" in text
  assert "| maml | 20 | 100.0 | 2.50× |" in text


def test_versus_table_takes_medians_per_tree_and_the_ratio_per_pair():
  from benchmarks import report  # pylint: disable=g-import-not-at-top
  def row(tree, median, alg="maml", k=1, first_order=False):
    return dict(settings=dict(algorithm=alg, K=k, first_order=first_order), tree=tree,
                rev="aaa" if tree == "old" else "bbb", median_s=median, loadavg=[1.0])
  rows = [row("old", 1.2), row("new", 0.6), row("old", 1.0), row("new", 0.8),
          row("old", 1.1), row("new", 0.5), row("old", 2.0, k=5)]
  text = "\n".join(report.versus_table(rows))
  # Medians 1.1 and 0.6: 1.83×; pairs 2.0, 1.25, 2.2.
  assert "| maml | 1 | 1.10 (1.20, 1.00, 1.10) | 0.60 (0.60, 0.80, 0.50) | **1.83×** " \
         "(1.25–2.20) | aaa → bbb |" in text
  assert "| maml | 5 |" not in text  # No new row to compare with.
