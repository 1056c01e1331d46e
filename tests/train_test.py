"""End to end: train, checkpoint, SIGKILL, resume bit-exactly, evaluate; bad input."""

import json
import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from experiments import sinusoid
from metalearn.run import progress as progress_lib
from metalearn.run import provenance
from metalearn.run import loop
from metalearn.run import scoring
from metalearn.errors import CheckpointError
from metalearn.errors import ConfigError
from metalearn.errors import DataError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _config(num_steps=600):
  c = sinusoid.get_config("smoke")
  c.num_steps = num_steps
  c.log_every = 50
  c.checkpoint_every = 100
  c.val.every = 0
  c.meta_batch = 5
  return c


def _launch(workdir, *overrides):
  cmd = [sys.executable, "-m", "launch.main", "--config=experiments/sinusoid.py:smoke",
         f"--workdir={workdir}", "--config.meta_batch=5", "--config.val.every=0",
         "--config.log_every=50", "--config.checkpoint_every=100", *overrides]
  return subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, env=dict(os.environ, JAX_PLATFORMS="cpu"))


def _theta(workdir, step):
  c = _config()
  theta = scoring.restore_state(c, workdir, step)[0].theta
  return jax.device_get(theta)


def _eval_file(workdir, step):
  """The one evaluation file of ``step`` on seed 1 (its name also carries the protocol)."""
  paths = list((workdir / "eval").glob(f"rows_step{step}_seed1_*.jsonl"))
  assert len(paths) == 1, paths
  return paths[0]


def test_killed_run_resumes_to_bitwise_identical_parameters(tmp_path):
  steps = 3000
  ref = loop.train(_config(steps), str(tmp_path / "ref"))

  workdir = tmp_path / "killed"
  proc = _launch(workdir, f"--config.num_steps={steps}", "--mode=train")
  ckpts = workdir / "checkpoints"
  deadline = time.time() + 120
  while time.time() < deadline and proc.poll() is None:
    if ckpts.is_dir() and any(p.name.isdigit() for p in ckpts.iterdir()):
      break
    time.sleep(0.02)
  assert proc.poll() is None, "run finished before it could be killed"
  os.kill(proc.pid, signal.SIGKILL)
  proc.wait()
  killed_at = max(int(p.name) for p in ckpts.iterdir() if p.name.isdigit())
  assert killed_at < steps

  proc = _launch(workdir, f"--config.num_steps={steps}")  # Resumes, then evaluates.
  out, err = proc.communicate(timeout=300)
  assert proc.returncode == 0, err[-2000:]
  assert f"resumed at step {killed_at}" in err
  resumed = _theta(str(workdir), steps)
  for a, b in zip(jax.tree.leaves(jax.device_get(ref.theta)), jax.tree.leaves(resumed)):
    assert np.array_equal(a, b)

  rows = [json.loads(l) for l in open(_eval_file(workdir, steps))]
  assert {r["k"] for r in rows} == {0, 1, 2, 5, 10}
  assert all(r["episodes"] == 50 and r["ci95"] > 0 and r["query_flops"] > 0
             and (r["adaptation_flops"] > 0) == (r["k"] > 0) for r in rows)
  logged = [json.loads(l)["step"] for l in open(workdir / "metrics.jsonl")]
  assert logged == sorted(set(logged)), "resume must not duplicate metric rows"
  run = json.load(open(workdir / "run.json"))
  assert len(run["invocations"]) == 1  # The killed invocation never finished.
  progress = json.load(open(workdir / "progress.json"))
  assert progress["step"] == steps and progress["train_seconds"] > 0
  hist_steps, hist_seconds = zip(*progress["history"])
  assert killed_at in hist_steps and hist_steps[-1] == steps
  assert list(hist_steps) == sorted(set(hist_steps)), "redone checkpoints appear once"
  assert all(s % 100 == 0 for s in hist_steps) and list(hist_seconds) == sorted(hist_seconds)
  assert (progress_lib.train_seconds_at(str(workdir), killed_at)
          == dict(progress["history"])[killed_at])
  assert progress_lib.train_seconds_at(str(workdir), 7) is None
  # Both invocations' work was kept: the killed one's up to its checkpoint, on this machine.
  segments = progress_lib.segments_at(str(workdir), steps)
  assert [(s.start, s.end) for s in segments] == [(0, killed_at), (killed_at, steps)]
  assert {s.machine["cpu"] for s in segments} == {provenance.machine()["cpu"]}
  assert sum(s.seconds for s in segments) == pytest.approx(progress["train_seconds"])


def test_carried_inner_state_is_checkpointed_and_resumed_exactly(tmp_path):
  """Reptile with an inner Adam state carried across tasks (as in the Omniglot row):
  100 steps, stop, 100 more gives the bits of 200 in one go, carried state included.
  (A constant outer step size: a linear one ends at num_steps, which then may not
  change on resumption.)"""
  def config(steps, schedule="constant"):
    c = sinusoid.get_config("reptile,smoke")
    c.num_steps, c.val.every, c.log_every, c.checkpoint_every = steps, 0, 50, 100
    c.inner.carry_state, c.outer.schedule, c.outer.lr = True, schedule, 0.5
    return c
  ref = loop.train(config(200), str(tmp_path / "ref"))
  loop.train(config(100), str(tmp_path / "split"))
  loop.train(config(100, "linear"), str(tmp_path / "linear"))
  with pytest.raises(CheckpointError, match=r"config.num_steps.*linear outer schedule.*"
                     r"ends at num_steps=100\)"):
    loop.train(config(200, "linear"), str(tmp_path / "linear"))
  resumed = loop.train(config(200), str(tmp_path / "split"))
  restored, step = scoring.restore_state(config(200), str(tmp_path / "split"))
  assert step == 200 and jax.tree.leaves(ref.inner_state)
  for state in (resumed, restored):
    for a, b in zip(jax.tree.leaves(jax.device_get((ref.theta, ref.inner_state))),
                    jax.tree.leaves(jax.device_get((state.theta, state.inner_state)))):
      assert np.array_equal(a, b)


def test_bad_inputs_fail_with_one_line_and_nothing_overwritten(tmp_path):
  proc = _launch(tmp_path / "a", "--config.no_such_key=1")
  _, err = proc.communicate(timeout=120)
  assert proc.returncode != 0 and "no_such_key" in err

  proc = _launch("/proc/forbidden/workdir")
  _, err = proc.communicate(timeout=120)
  assert proc.returncode == 2
  assert err.strip().splitlines()[-1].startswith("error: --workdir=/proc/forbidden")

  c = _config(100)
  with pytest.raises(ConfigError, match="config.algorithm"):
    c.algorithm = "mamll"
    loop.train(c, str(tmp_path / "b"))
  for algorithm, batch in (("maml", 2), ("reptile", 10 ** 6)):
    c = _config(100)
    c.algorithm, c.inner.batch_size = algorithm, batch
    with pytest.raises(ConfigError, match="config.inner.batch_size"):
      loop.train(c, str(tmp_path / "c"))
  for algorithm, optimizer in (("maml", "adam"), ("reptile", "sgd")):
    c = _config(100)
    c.algorithm, c.inner.optimizer, c.inner.carry_state = algorithm, optimizer, True
    with pytest.raises(ConfigError, match="config.inner.carry_state"):
      loop.train(c, str(tmp_path / "d"))


def test_divergence_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path):
  loop.train(_config(100), str(tmp_path))  # A finite checkpoint at step 100.
  c = _config(300)
  c.outer.lr = 1e30  # One Adam step moves every weight by ~1e30: the next loss overflows.
  path = tmp_path / "config.json"
  saved = json.loads(path.read_text())
  saved["outer"]["lr"] = c.outer.lr  # Resume the same run with the step size changed.
  path.write_text(json.dumps(saved))
  with pytest.raises(loop.TrainingDiverged) as e:
    loop.train(c, str(tmp_path))
  assert "at step 102;" in str(e.value)  # Step 101 makes theta huge, 102's loss is inf.
  assert "last good checkpoint at step 100" in str(e.value)
  assert sorted(os.listdir(tmp_path / "checkpoints")) == ["100"]  # None after it.
  theta = jax.tree.leaves(scoring.restore_state(c, str(tmp_path))[0].theta)
  assert all(np.isfinite(t).all() for t in theta)
  rows = [json.loads(l) for l in open(tmp_path / "metrics.jsonl")]
  assert max(r["step"] for r in rows) == 100  # The diverged interval is not logged.


def test_incompatible_or_unreadable_checkpoint_is_refused(tmp_path):
  c = _config(100)
  loop.train(c, str(tmp_path))
  before = open(tmp_path / "config.json").read()
  other = _config(100)
  other.model.hidden = (20, 20)
  with pytest.raises(CheckpointError, match="config.model.hidden"):
    loop.train(other, str(tmp_path))
  assert open(tmp_path / "config.json").read() == before
  os.remove(tmp_path / "config.json")  # Without the config guard, the leaves are checked.
  with pytest.raises(CheckpointError, match=r"does not match .*\(leaf opt_state/0/mu/"
                     r"Dense_0/bias is \(40,\) float32 there, \(20,\) float32 here\)"):
    loop.train(other, str(tmp_path))
  for data in (tmp_path / "checkpoints" / "100").rglob("d/*"):
    data.write_bytes(b"\0" * data.stat().st_size)  # Metadata intact, arrays unreadable.
  # In a process of its own: orbax's failed reads leave callbacks behind that report
  # (after the error line, at exit) into whatever runs next.
  proc = _launch(tmp_path, "--config.num_steps=100", "--mode=evaluate")
  _, err = proc.communicate(timeout=300)
  assert proc.returncode == 2 and any(
      l.startswith("error: ") and "checkpoints/100: checkpoint cannot be read (" in l
      for l in err.splitlines()), err[-2000:]


def test_keys_added_to_the_schema_later_resume_at_their_default(tmp_path):
  c = _config(100)
  loop.train(c, str(tmp_path))
  path = tmp_path / "config.json"
  saved = json.loads(path.read_text())
  del saved["inner"]["batch_size"]  # As written before the key existed.
  path.write_text(json.dumps(saved))
  c.num_steps = 110
  assert int(loop.train(c, str(tmp_path)).step) == 110
  path.write_text(json.dumps(saved))
  other = _config(110)
  other.algorithm, other.inner.batch_size = "reptile", 2
  with pytest.raises(CheckpointError, match="config.inner.batch_size"):
    loop.train(other, str(tmp_path))


OMNIGLOT = os.environ.get("METALEARN_OMNIGLOT_DIR",
                          os.path.join(REPO, "..", "shared", "data", "omniglot"))


@pytest.mark.skipif(not os.path.isdir(OMNIGLOT),
                    reason=f"Omniglot not found at {OMNIGLOT} (set METALEARN_OMNIGLOT_DIR)")
def test_omniglot_smoke_command_from_the_readme(tmp_path):
  cmd = [sys.executable, "-m", "launch.main", "--config=experiments/omniglot.py:smoke",
         f"--config.data.path={OMNIGLOT}", f"--workdir={tmp_path}"]
  proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600,
                        env=dict(os.environ, JAX_PLATFORMS="cpu"))
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "batch-norm mode: transductive" in proc.stderr
  (path,) = (tmp_path / "eval").glob("rows_step20_seed1_test_5w1s15q_k3_*.jsonl")
  rows = [json.loads(l) for l in open(path)]
  acc = [r for r in rows if r["metric"] == "accuracy"]
  assert [r["k"] for r in acc] == [0, 1, 2, 3]
  assert all(r["eval_split"] == "test" and r["eval_queries"] == 15 and r["ways"] == 5
             for r in acc)
  val = [json.loads(l) for l in open(tmp_path / "metrics.jsonl") if "val/" in l]
  assert val, "periodic validation on meta-validation classes did not run"


@pytest.mark.skipif(not os.path.isdir(OMNIGLOT), reason=f"Omniglot not found at {OMNIGLOT}")
def test_episode_shape_the_split_cannot_supply_is_refused(tmp_path):
  from experiments import omniglot  # pylint: disable=g-import-not-at-top
  c = omniglot.get_config("smoke")
  c.data.path = OMNIGLOT
  c.shots, c.queries = 15, 10  # 25 > 20 drawings per character.
  with pytest.raises(DataError, match="shots"):
    loop.train(c, str(tmp_path / "w"))
  assert not os.path.exists(tmp_path / "w" / "config.json")


@pytest.mark.skipif(not os.path.isdir(OMNIGLOT), reason=f"Omniglot not found at {OMNIGLOT}")
def test_eval_bn_mode_scores_the_same_parameters_under_another_normalisation(tmp_path):
  from experiments import omniglot_reptile  # pylint: disable=g-import-not-at-top
  from metalearn import builder as build_lib  # pylint: disable=g-import-not-at-top
  from metalearn import config as config_lib  # pylint: disable=g-import-not-at-top
  c = omniglot_reptile.get_config("smoke")  # Trained with bn_mode='transductive_joint'.
  c.data.path, c.eval.episodes, c.eval.steps = OMNIGLOT, 20, 1
  c.eval.bn_mode = ""  # Scored as meta-trained.
  state = build_lib.build(c).init_state()

  def scores(config, workdir=tmp_path):
    rows = scoring.evaluate(config, str(workdir), step=0, state=state)
    return {(r["metric"], r["k"]): r["mean"] for r in rows}, rows[0]["eval_bn_mode"]

  joint, joint_mode = scores(c)
  c_eval = c.copy_and_resolve_references()
  c_eval.eval.bn_mode = "transductive"
  override, override_mode = scores(c_eval)
  c_run = c.copy_and_resolve_references()
  c_run.bn_mode = "transductive"  # As if meta-trained with it: the same parameters.
  run, run_mode = scores(c_run, tmp_path / "run")
  assert (joint_mode, override_mode, run_mode) == ("transductive_joint",) + ("transductive",) * 2
  assert override == run  # The override is exactly the other mode...
  assert override[("loss", 0)] != joint[("loss", 0)]  # ...which normalises differently.
  c_rot = c.copy_and_resolve_references()
  c_rot.eval.rotate = True  # The same episodes with each class turned (sampling_test).
  rotated_rows = scoring.evaluate(c_rot, str(tmp_path), step=0, state=state)
  assert all(r["eval_rotate"] for r in rotated_rows) and not any(
      r["eval_rotate"] for r in scoring.evaluate(c, str(tmp_path), step=0, state=state))
  rotated = {(r["metric"], r["k"]): r["mean"] for r in rotated_rows}
  assert rotated[("loss", 0)] != joint[("loss", 0)]
  names = sorted(p.name for p in (tmp_path / "eval").glob("*.jsonl"))
  # Scoring under another mode adds a file: the run's own result is not overwritten.
  assert len(names) == 3 and all(n.startswith("rows_step0_seed1_test_5w1s1q_k1_")
                                 for n in names), names
  c.eval.bn_mode = "batch"
  with pytest.raises(ConfigError, match="config.eval.bn_mode: 'batch' not in"):
    config_lib.validate(c)
  sinusoid = config_lib.base_config()
  sinusoid.eval.rotate = True
  with pytest.raises(ConfigError, match="config.eval.rotate: turns image classes"):
    config_lib.validate(sinusoid)
