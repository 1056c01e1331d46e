"""The training loop of continual runs: build, restore, step, log, checkpoint.

``train(config, workdir)`` resumes from the latest checkpoint in ``workdir``
(``metalearn.run.checkpoints``), and is exact: the step folds its index into the run's
key, so a run stopped and restarted (with the same or a larger ``num_steps``) ends where
an uninterrupted one does. It writes the workdir files of every run
(``metalearn.run.workdir``): ``config.json``, ``checkpoints/``, ``metrics.jsonl``,
``progress.json``. Log lines give steps/s and the time left. It reads no flags.
"""

import contextlib
import math
import time

from absl import logging
import jax
import ml_collections

from metalearn.continual import build as build_lib
from metalearn.errors import CheckpointError
from metalearn.errors import ConfigError
from metalearn.errors import MetalearnError
from metalearn.run import checkpoints
from metalearn.run import progress as progress_lib
from metalearn.run import workdir as workdir_lib
from metalearn.run.metrics_writer import MetricWriter


class TrainingDiverged(MetalearnError):
  """The training loss became NaN or infinite."""


def _fmt_time(seconds: float) -> str:
  if not math.isfinite(seconds):
    return "?"
  seconds = int(seconds)
  return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m{seconds % 60:02d}s"


def train(config: ml_collections.ConfigDict, workdir: str) -> build_lib.State:
  """Trains (resuming from ``workdir``) and returns the final state."""
  setup = build_lib.build(config)
  if setup.objective is None:
    raise ConfigError(f"config.algorithm={config.algorithm!r} trains nothing; run "
                      "--mode=evaluate (its online learner starts from the random "
                      "initialisation)")
  data = setup.family.load("train")  # Fails before anything is written.
  workdir_lib.prepare(config, workdir)
  logging.info("config:\n%s", config)
  state = setup.init_state()
  with contextlib.ExitStack() as stack:
    mngr = stack.enter_context(checkpoints.manager(workdir, config.keep_checkpoints))
    state, restored = checkpoints.restore_latest(mngr, state)
    start = 0 if restored is None else int(state.step)
    logging.info("%s at step %d of %d", "resumed" if restored is not None else "starting",
                 start, config.num_steps)
    writer = MetricWriter(workdir, resume_step=start)
    stack.callback(writer.close)
    progress = progress_lib.Progress(workdir, start_step=start)
    step_fn = setup.train_step()
    key = jax.random.fold_in(jax.random.key(config.seed), 1)
    t0, s0 = time.time(), start
    for step in range(start, config.num_steps):
      done = step + 1
      state, metrics = step_fn(state, data, key)
      if step == start:
        logging.info("first step (compilation included) took %.1fs", time.time() - t0)
        t0, s0 = time.time(), done
      log = done % config.log_every == 0 or done == config.num_steps
      save = done % config.checkpoint_every == 0 or done == config.num_steps
      if log or save:
        scalars = {k: float(v) for k, v in jax.device_get(metrics).items()}
        if not all(math.isfinite(v) for v in scalars.values()):
          mngr.wait_until_finished()
          raise TrainingDiverged(
              f"non-finite training metrics at step {done} ({scalars}); stopped, last "
              f"good checkpoint {mngr.latest_step()} kept in {mngr.directory}")
      if log:
        rate = (done - s0) / max(time.time() - t0, 1e-9)
        scalars["steps_per_s"] = rate
        writer.write(done, scalars)
        logging.info("step %d/%d | %.3g steps/s | ETA %s | %s", done, config.num_steps,
                     rate, _fmt_time((config.num_steps - done) / rate if rate else
                                     float("inf")),
                     " ".join(f"{k}={v:.4g}" for k, v in sorted(scalars.items())
                              if k != "steps_per_s"))
      if save:
        checkpoints.save(mngr, done, state)
        progress.write(done)
      if log:
        t0, s0 = time.time(), done
  return state


def restore_theta(config: ml_collections.ConfigDict, workdir: str,
                  step: int | None = None, setup: build_lib.Setup | None = None
                  ) -> tuple[dict, int | None]:
  """The meta-parameters of checkpoint ``step`` (default latest), or for ``scratch``
  the random initialisation (step None).

  Raises:
    CheckpointError: no checkpoint (for an algorithm that trains) or a mismatched one.
  """
  setup = setup or build_lib.build(config)
  if setup.objective is None:
    return setup.init_state().theta, None
  if not workdir_lib.has_checkpoints(workdir):
    raise CheckpointError(f"--workdir={workdir}: no checkpoint to evaluate")
  with checkpoints.manager(workdir) as mngr:
    state, restored = checkpoints.restore_latest(mngr, setup.abstract_state(), step)
  if restored is None:
    raise CheckpointError(f"--workdir={workdir}: no checkpoint to evaluate")
  return state.theta, restored
