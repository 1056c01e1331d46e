"""The one training loop: build, restore, step, validate, checkpoint, log; then evaluate.

``train(config, workdir)`` resumes from the latest checkpoint in ``workdir`` and is
exact: the meta-step folds the step number into the run's key, so a run killed and
restarted ends with the same parameters, bit for bit, as one never interrupted.
``evaluate(config, workdir)`` scores a checkpoint on meta-test episodes and writes one
JSON row per (metric, inner step). Neither reads flags.
"""

import contextlib
import json
import os
import time
from typing import Optional

from absl import logging
import jax
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
import jax.numpy as jnp
import ml_collections
import numpy as np

from metalearn import atomic
from metalearn import builders
from metalearn import checkpoints
from metalearn import evaluation
from metalearn import flops as flops_lib
from metalearn import outer
from metalearn import progress as progress_lib
from metalearn.errors import CheckpointError
from metalearn.errors import ConfigError
from metalearn.errors import MetalearnError
from metalearn.metrics_writer import MetricWriter

# Keys that may change between a run and its resumption (length, logging, evaluation);
# ``num_steps`` only under a constant outer step size (a linear one ends at num_steps).
RESUMABLE_KEYS = ("num_steps", "log_every", "checkpoint_every", "keep_checkpoints",
                  "val", "eval", "data.path", "data.cache_dir", "data.num_workers",
                  "data.download", "model.conv_impl", "inner.remat", "task_map",
                  "fast_compile")


class TrainingDiverged(MetalearnError):
  """The meta-training loss became NaN or infinite."""


def _flatten(d: dict, prefix: str = "") -> dict:
  out = {}
  for k, v in d.items():
    if isinstance(v, dict):
      out.update(_flatten(v, f"{prefix}{k}."))
    else:
      out[f"{prefix}{k}"] = v
  return out


def prepare_workdir(config: ml_collections.ConfigDict, workdir: str) -> None:
  """Creates the workdir, refuses a config that does not match its checkpoints, and
  writes ``config.json`` (only after every check has passed)."""
  try:
    os.makedirs(workdir, exist_ok=True)
  except OSError as e:
    raise ConfigError(f"--workdir={workdir}: cannot create it ({e.strerror})") from e
  if not os.access(workdir, os.W_OK | os.R_OK):
    raise ConfigError(f"--workdir={workdir}: not readable and writable")
  path = os.path.join(workdir, "config.json")
  new = json.loads(config.to_json_best_effort())
  has_ckpt = os.path.isdir(os.path.join(workdir, "checkpoints")) and any(
      n.isdigit() for n in os.listdir(os.path.join(workdir, "checkpoints")))
  if has_ckpt and os.path.exists(path):
    with open(path) as f:
      old = json.load(f)
    old_flat, new_flat = _flatten(old), _flatten(new)
    # A key added to the schema after the checkpoints were written is compatible
    # while it holds its default (which keeps the earlier behaviour).
    defaults = _flatten(json.loads(builders.base_config().to_json_best_effort()))
    schedule = old_flat.get("outer.schedule", "constant")
    resumable = [r for r in RESUMABLE_KEYS if r != "num_steps" or schedule == "constant"]
    changed = sorted(k for k in set(old_flat) | set(new_flat)
                     if old_flat.get(k) != new_flat.get(k)
                     and not (k not in old_flat and k in defaults
                              and new_flat.get(k) == defaults[k])
                     and not any(k == r or k.startswith(r + ".") for r in resumable))
    why = (f" (the {schedule} outer schedule of these checkpoints ends at "
           f"num_steps={old_flat['num_steps']})" if "num_steps" in changed else "")
    if changed:
      raise CheckpointError(
          f"--workdir={workdir} holds checkpoints of another config (differs in "
          f"{', '.join('config.' + k for k in changed[:5])}){why}; use a new workdir")
  atomic.write_text(path, json.dumps(new, indent=2, sort_keys=True))


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


def init_state(config: ml_collections.ConfigDict, learner, task_family, data, optimizer
               ) -> outer.MetaState:
  init_key = jax.random.fold_in(jax.random.key(config.seed), 0)
  theta = learner.init(init_key, builders.example_input(config, task_family, data))
  return outer.init_state(theta, optimizer, builders.build_inner(config))


def _fmt_time(seconds: float) -> str:
  seconds = int(seconds)
  return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m{seconds % 60:02d}s"


def train(config: ml_collections.ConfigDict, workdir: str) -> outer.MetaState:
  """Meta-trains (resuming from ``workdir``) and returns the final state."""
  builders.validate(config)
  family = builders.build_task_family(config)
  data = builders.load_data(config, "train", family)  # Fails before writing anything.
  shardings = task_sharding(config.meta_batch)
  if shardings is not None and config.inner.carry_state:
    raise ConfigError(f"config.inner.carry_state runs the tasks of a meta-batch in "
                      f"sequence; run it on one device, not {jax.device_count()}")
  prepare_workdir(config, workdir)
  logging.info("devices: %s", jax.devices())
  logging.info("batch-norm mode: %s", config.bn_mode)
  logging.info("config:\n%s", config)

  learner = builders.build_learner(config)
  optimizer = builders.build_outer_optimizer(config)
  state = init_state(config, learner, family, data, optimizer)
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
    step_fn = outer.make_meta_step(
        learner=learner, algorithm=config.algorithm, inner=builders.build_inner(config),
        optimizer=optimizer, task_family=family, meta_batch=config.meta_batch,
        task_sharding=None if shardings is None else shardings[0],
        task_map=config.task_map, fast_compile=config.fast_compile)
    train_key = jax.random.fold_in(jax.random.key(config.seed), 1)
    val = _make_validation(config) if config.val.every else None
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


def _make_validation(config):
  """``f(state, step) -> scalars`` scoring meta-validation episodes (with the
  evaluation's batch-norm mode and inner step size)."""
  learner = builders.build_learner(config, builders.eval_bn_mode(config))
  family = builders.eval_task_family(config)
  data = builders.load_data(config, "val", family)
  k = config.val.steps or config.eval.steps
  inner = builders.build_inner(config, lr=config.eval.inner_lr, evaluation=True)
  key = jax.random.fold_in(jax.random.key(config.seed), 2)

  def run(state, step):
    result = evaluation.evaluate(state.theta, learner=learner, inner=inner,
                                 task_family=family, inner_state=state.inner_state,
                                 data=data, eval_steps=(0, k),
                                 episodes=config.val.episodes,
                                 batch=min(config.eval.batch, config.val.episodes),
                                 key=jax.random.fold_in(key, step),
                                 task_map=config.task_map, fast_compile=config.fast_compile)
    out = {}
    for metric in result.values:
      for i, kk in enumerate(result.eval_steps):
        out[f"val/query_{metric}_k{kk}"] = result.mean(metric)[i]
    return out

  return run


def restore_state(config: ml_collections.ConfigDict, workdir: str,
                  step: Optional[int] = None) -> tuple[outer.MetaState, int]:
  """The meta-training state of checkpoint ``step`` (default latest) in ``workdir``."""
  # The template only needs shapes: build them from the episode spec, not the data.
  shape = ((config.shots, 1) if config.task == "sinusoid"
           else (config.ways * config.shots,) + _image_shape(config))
  template = outer.init_state(
      builders.build_learner(config).init(jax.random.key(0), jnp.zeros(shape)),
      builders.build_outer_optimizer(config), builders.build_inner(config))
  if not os.path.isdir(os.path.join(workdir, "checkpoints")):
    raise CheckpointError(f"--workdir={workdir}: no checkpoints/ directory to evaluate")
  mngr = checkpoints.manager(workdir)
  state, restored = checkpoints.restore_latest(mngr, template, step)
  mngr.close()
  if restored is None:
    raise CheckpointError(f"--workdir={workdir}: no checkpoint to evaluate")
  return state, restored


def _image_shape(config) -> tuple[int, int, int]:
  if config.model.name == "conv4_miniimagenet":
    return (84, 84, 3)
  size = config.data.image_size or 28
  return (size, size, 1)


def evaluate(config: ml_collections.ConfigDict, workdir: str, *,
             step: Optional[int] = None, state: Optional[outer.MetaState] = None
             ) -> list[dict]:
  """Scores a checkpoint on ``config.eval.split`` and writes its rows.

  Writes ``<workdir>/eval/<eval_file_stem>.jsonl`` (one row per metric and inner
  step) and ``.npz`` of the per-episode values, both atomically.

  Args:
    config: the run's config.
    workdir: the run's workdir.
    step: the checkpoint to score (default: the latest), or the step of ``state``.
    state: a meta-training state to score instead of restoring a checkpoint.

  Returns:
    The rows.
  """
  builders.validate(config)
  if config.eval.ways and config.eval.ways != config.ways:
    raise ConfigError(f"config.eval.ways={config.eval.ways}: the classifier head has "
                      f"config.ways={config.ways} outputs")
  if state is None:
    state, step = restore_state(config, workdir, step)
  family = builders.eval_task_family(config)
  data = builders.load_data(config, config.eval.split, family)
  learner = builders.build_learner(config, builders.eval_bn_mode(config))
  inner = builders.build_inner(config, lr=config.eval.inner_lr, evaluation=True)
  steps = builders.eval_steps(config)
  t0 = time.time()
  result = evaluation.evaluate(
      state.theta, learner=learner, inner=inner, task_family=family, data=data,
      inner_state=state.inner_state,
      eval_steps=steps, episodes=config.eval.episodes, batch=config.eval.batch,
      key=jax.random.key(config.eval.seed),
      log_fn=lambda d, n: logging.info("evaluated %d/%d episodes", d, n),
      task_map=config.task_map, fast_compile=config.fast_compile)
  episode = jax.eval_shape(
      lambda k: jax.tree.map(lambda x: x[0], family.sample(k, data, 1)), jax.random.key(0))
  adapt_flops = flops_lib.adaptation_flops(learner, inner, episode, list(steps))
  settings = builders.config_summary(config)
  ways, shots, queries, _ = builders.eval_protocol(config)
  settings.update(
      eval_split=config.eval.split, eval_ways=ways, eval_shots=shots, eval_queries=queries,
      eval_inner_lr=inner.lr, eval_bn_mode=learner.bn_mode, eval_seed=config.eval.seed,
      eval_batch=config.eval.batch, eval_rotate=bool(config.eval.rotate),
      checkpoint_step=None if step is None else int(step),
      eval_seconds=round(time.time() - t0, 2))
  rows = evaluation.rows(result, settings=settings, flops=adapt_flops)
  stem = os.path.join(workdir, "eval", eval_file_stem(config, step))
  # The per-episode values first: a rows file (what readers list) always has its .npz.
  atomic.write_npz(stem + ".npz", eval_steps=np.asarray(result.eval_steps),
                   **result.values)
  atomic.write_text(stem + ".jsonl", "".join(json.dumps(r) + "\n" for r in rows))
  for r in rows:
    if r["k"] in (0, result.eval_steps[-1]):
      logging.info("%s k=%d: %.4f ± %.4f (%d episodes)", r["metric"], r["k"], r["mean"],
                   r["ci95"], r["episodes"])
  return rows


def eval_file_stem(config: ml_collections.ConfigDict, step: Optional[int]) -> str:
  """``rows_step<S>_seed<E>_<W>w<N>s<Q>q_k<K>[_bn_<mode>][_rot]``: one evaluation file
  per checkpoint, evaluation seed and protocol (ways, shots, queries per class, largest
  test-time step, the batch-norm mode when it is not meta-training's, and whether
  episode classes are rotated), so scoring the same parameters under another protocol
  never overwrites a result."""
  ways, shots, queries, k = builders.eval_protocol(config)
  bn = builders.eval_bn_mode(config)
  return (f"rows_step{step}_seed{config.eval.seed}_{ways}w{shots}s{queries}q_k{k}"
          + (f"_bn_{bn}" if bn != config.bn_mode else "")
          + ("_rot" if config.eval.rotate else ""))

