"""tuning: the test-time inner learning rate picked per k on validation episodes."""

import os

import numpy as np
import pytest

from experiments import linreg
from metalearn.errors import ConfigError
from metalearn.run import loop
from metalearn.run import scoring
from metalearn.run import tuning
from metalearn.run import workdir as workdir_lib


@pytest.fixture(scope="module")
def run(tmp_path_factory):
  c = linreg.get_config("smoke")
  c.num_steps = 10
  c.checkpoint_every = 10
  c.eval.episodes = c.eval.batch = 200
  c.eval.eval_steps = (0, 1, 4, 16)
  c.eval.steps = 16
  workdir = str(tmp_path_factory.mktemp("tuning"))
  loop.train(c, workdir)
  return c, workdir


def test_picks_the_lowest_validation_loss_per_k_and_reports_test_values(run):
  c, workdir = run
  lrs = (0.01, 0.05, 0.2)
  rows = tuning.tune(c, workdir, lrs, step=10)
  evals = workdir_lib.evaluations(workdir)
  val = {e.protocol.inner_lr: e for e in evals if e.protocol.split == "val"}
  tested = {e.protocol.inner_lr for e in evals if e.protocol.split == "test"}
  assert sorted(val) == list(lrs)
  # Test episodes are scored only at the rates picked at some k > 0; score the others
  # here (independently) to check the pick against every rate's test values.
  assert tested == {r["eval_inner_lr"] for r in rows if r["k"] > 0}
  for lr in lrs:
    if lr not in tested:
      scoring.evaluate(tuning._with(c, inner_lr=lr), workdir, step=10)
  test = {e.protocol.inner_lr: e for e in workdir_lib.evaluations(workdir)
          if e.protocol.split == "test"}
  assert sorted(test) == list(lrs)
  ks = test[lrs[0]].protocol.steps
  for i, k in enumerate(ks):
    best = min(lrs, key=lambda lr: val[lr].values()["loss"][:, i].mean())
    (row,) = [r for r in rows if r["metric"] == "loss" and r["k"] == k]
    assert row["eval_inner_lr"] == (best if k > 0 else None)
    assert row["mean"] == pytest.approx(test[best].values()["loss"][:, i].mean())
  # Validation and test are different tasks (the seed offset), the same count.
  v, t = val[lrs[0]].values()["loss"], test[lrs[0]].values()["loss"]
  assert v.shape == t.shape and not np.allclose(v, t)
  assert val[lrs[0]].protocol.seed == test[lrs[0]].protocol.seed + 10_000
  # One step of a linear model: the largest stable rate helps most; no rate at k = 0.
  assert {r["eval_inner_lr"] for r in rows if r["k"] == 1} == {0.2}
  assert {r["eval_inner_lr"] for r in rows if r["k"] == 0} == {None}
  stems = [f for f in os.listdir(os.path.join(workdir, "eval")) if f.startswith("tuned_")]
  assert len(stems) == 2  # .jsonl and .npz


def test_a_second_call_reuses_the_evaluations(run):
  c, workdir = run
  tuning.tune(c, workdir, (0.01, 0.05), step=10)
  eval_dir = os.path.join(workdir, "eval")
  before = {f: os.path.getmtime(os.path.join(eval_dir, f)) for f in os.listdir(eval_dir)
            if f.startswith("rows_")}
  tuning.tune(c, workdir, (0.01, 0.05), step=10)
  after = {f: os.path.getmtime(os.path.join(eval_dir, f)) for f in os.listdir(eval_dir)
           if f.startswith("rows_")}
  assert before == after


def test_bad_rates_are_refused(run):
  c, workdir = run
  with pytest.raises(ConfigError, match="inner_lrs"):
    tuning.tune(c, workdir, (0.0, 0.1), step=10)
