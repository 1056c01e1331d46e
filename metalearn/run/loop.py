"""The one training loop: build, restore, step, validate, checkpoint, log.

``train(config, workdir)`` resumes from the latest checkpoint in ``workdir`` and is
exact: the meta-step folds the step number into the run's key, so a run killed and
restarted ends with the same parameters, bit for bit, as one never interrupted. It
reads no flags.
"""

import contextlib
import time
from typing import Optional

from absl import logging
import jax
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
import jax.numpy as jnp
import ml_collections

from metalearn import builder as build_lib
from metalearn import outer
from metalearn.errors import ConfigError
from metalearn.errors import MetalearnError
from metalearn.run import checkpoints
from metalearn.run import progress as progress_lib
from metalearn.run import workdir as workdir_lib
from metalearn.run.metrics_writer import MetricWriter


class TrainingDiverged(MetalearnError):
  """The meta-training loss became NaN or infinite."""


def task_sharding(meta_batch: int) -> Optional[tuple[NamedSharding, NamedSharding]]:
  """(task-axis sharding, replicated sharding) over all devices, or None for one."""
  n = jax.device_count()
  if n == 1:
    return None
  if meta_batch % n:
    raise ConfigError(f"config.meta_batch={meta_batch} is not divisible by the "
                      f"{n} devices it is sharded over")
  mesh = jax.make_mesh((n,), ("tasks",), axis_types=(jax.sharding.AxisType.Auto,))
  return NamedSharding(mesh, P("tasks")), NamedSharding(mesh, P())


def _fmt_time(seconds: float) -> str:
  seconds = int(seconds)
  return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m{seconds % 60:02d}s"


def train(config: ml_collections.ConfigDict, workdir: str) -> outer.MetaState:
  """Meta-trains (resuming from ``workdir``) and returns the final state."""
  setup = build_lib.build(config)
  data = setup.tasks.load("train")  # Fails before anything is written.
  shardings = task_sharding(config.meta_batch)
  if shardings is not None and config.inner.carry_state:
    raise ConfigError(f"config.inner.carry_state runs the tasks of a meta-batch in "
                      f"sequence; run it on one device, not {jax.device_count()}")
  workdir_lib.prepare(config, workdir)
  logging.info("devices: %s", jax.devices())
  logging.info("batch-norm mode: %s", config.bn_mode)
  logging.info("config:\n%s", config)

  state = setup.init_state()
  # However the loop ends (done, diverged, interrupted), the writer is closed and the
  # checkpoint manager finishes any save in flight and closes.
  with contextlib.ExitStack() as stack:
    mngr = stack.enter_context(checkpoints.manager(workdir, config.keep_checkpoints))
    state, restored = checkpoints.restore_latest(mngr, state)
    start = 0 if restored is None else int(state.step)
    logging.info("%s at step %d", "resumed" if restored is not None else "starting", start)

    if shardings is not None:
      state = jax.device_put(state, shardings[1])
      data = jax.device_put(data, shardings[1])
    step_fn = setup.meta_step(task_sharding=None if shardings is None else shardings[0])
    train_key = jax.random.fold_in(jax.random.key(config.seed), 1)
    val = _make_validation(setup) if config.val.every else None
    writer = MetricWriter(workdir, resume_step=start)
    stack.callback(writer.close)
    progress = progress_lib.Progress(workdir, start_step=start)

    t0, s0 = time.time(), start
    for step in range(start, config.num_steps):
      done = step + 1
      log = done % config.log_every == 0 or done == config.num_steps
      state, metrics = step_fn(state, data, train_key, jnp.bool_(log))
      if step == start:
        logging.info("first meta-step (compilation included) took %.1fs", time.time() - t0)
        t0, s0 = time.time(), done
      save = done % config.checkpoint_every == 0 or done == config.num_steps
      if log or save:
        _check_finite(state, mngr)
      if log:
        scalars = jax.device_get(metrics)
        rate = (done - s0) / max(time.time() - t0, 1e-9)  # Since the last log line.
        scalars["meta_steps_per_s"] = rate
        writer.write(done, scalars)
        eta = (config.num_steps - done) / rate if rate > 0 else float("nan")
        logging.info("step %d/%d | %.2f steps/s | ETA %s | %s", done, config.num_steps,
                     rate, _fmt_time(eta), " ".join(
                         f"{k}={float(v):.4g}" for k, v in sorted(scalars.items())
                         if k.startswith(("query", "support"))))
      if val is not None and done % config.val.every == 0:
        writer.write(done, val(state, done))
      if save:
        checkpoints.save(mngr, done, state)
        progress.write(done)
      if log:
        t0, s0 = time.time(), done  # Validation and saving are not meta-steps.
    return state


def _check_finite(state: outer.MetaState, mngr) -> None:
  bad = int(state.first_nonfinite)
  if bad >= 0:
    mngr.wait_until_finished()
    last = mngr.latest_step()
    raise TrainingDiverged(
        f"non-finite meta-training loss at step {bad + 1}; stopped, last good "
        f"checkpoint {'(none)' if last is None else f'at step {last}'} kept in "
        f"{mngr.directory}")


def _make_validation(setup: build_lib.Setup):
  """``f(state, step) -> scalars`` scoring meta-validation episodes (with the
  evaluation's batch-norm mode and inner step size)."""
  config = setup.config
  data = setup.eval_tasks.load("val")
  k = config.val.steps or config.eval.steps
  key = jax.random.fold_in(jax.random.key(config.seed), 2)

  def run(state, step):
    result = setup.evaluate(
        state.theta, data, eval_steps=(0, k), episodes=config.val.episodes,
        batch=min(config.eval.batch, config.val.episodes),
        key=jax.random.fold_in(key, step), inner_state=state.inner_state)
    out = {}
    for metric in result.values:
      for i, kk in enumerate(result.eval_steps):
        out[f"val/query_{metric}_k{kk}"] = result.mean(metric)[i]
    return out

  return run
