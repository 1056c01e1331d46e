"""The continual training loop end to end on sine waves: resume is exact, evaluation
writes its rows, bad input is one line naming the key; every config variant builds."""

import importlib
import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from experiments import continual_sine
from metalearn.continual import build as build_lib
from metalearn.continual import config as config_lib
from metalearn.continual import evaluate
from metalearn.continual import train

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _config(num_steps):
  c = continual_sine.get_config("oml,smoke")
  c.num_steps = num_steps
  c.checkpoint_every = 2
  c.log_every = 1
  c.model.rln = (8,)
  c.model.pln = (8,)
  c.eval.classes = (2, 4)
  c.sine.functions = 4
  return c


def test_resumed_run_ends_where_an_uninterrupted_one_does(tmp_path):
  straight = train.train(_config(4), str(tmp_path / "a"))
  train.train(_config(2), str(tmp_path / "b"))
  resumed = train.train(_config(4), str(tmp_path / "b"))  # Resumes from step 2.
  assert int(resumed.step) == int(straight.step) == 4
  for x, y in zip(jax.tree.leaves(straight.theta), jax.tree.leaves(resumed.theta)):
    np.testing.assert_array_equal(x, y)
  rows = [json.loads(line) for line in open(tmp_path / "b" / "metrics.jsonl")]
  assert [r["step"] for r in rows] == [1, 2, 3, 4]

  out = evaluate.evaluate(_config(4), str(tmp_path / "b"))
  assert {(r["metric"], r["classes"]) for r in out} == {
      (m, n) for m in ("mse", "train_mse") for n in (2, 4)}
  assert all(np.isfinite(r["mean"]) and r["ci95"] >= 0 and r["online_flops"] > 0
             and r["checkpoint_step"] == 4 for r in out)
  written = [f for f in os.listdir(tmp_path / "b" / "eval") if f.endswith(".jsonl")]
  assert len(written) == 1 and written[0].startswith("continual_curve_step4_test_")


def test_bad_config_is_one_line_naming_the_key(tmp_path):
  proc = subprocess.run(
      [sys.executable, "-m", "launch.continual",
       "--config=experiments/continual_sine.py:smoke", "--config.train.remat=sometimes",
       f"--workdir={tmp_path / 'w'}"], cwd=REPO, capture_output=True, text=True,
      timeout=120, env=dict(os.environ, JAX_PLATFORMS="cpu"))
  errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
  assert proc.returncode == 2, proc.stderr[-2000:]
  assert errors == ["error: config.train.remat: 'sometimes' not in ('none', 'step', "
                    "'segments')"], proc.stderr[-2000:]
  assert not (tmp_path / "w").exists()


@pytest.mark.parametrize("name,arg", [
    (n, a) for n in ("continual_omniglot", "continual_sine")
    for a in ("", "oml", "anml", "scratch", "pretrained", "anml,oracle", "cpu", "smoke",
              "oml,cpu", "pretrained,smoke")])
def test_every_config_variant_builds(name, arg):
  c = importlib.import_module(f"experiments.{name}").get_config(arg)
  setup = build_lib.build(c)  # Validates; no data needed.
  assert config_lib.base_config().keys() == c.keys()  # No key outside the schema.
  assert (setup.objective is None) == (c.algorithm == "scratch")
