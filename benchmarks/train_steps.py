"""Meta-training speed of a config's own meta-step, on its real data; prints ONE JSON line.

Usage (the paper's Omniglot 5-way 1-shot second-order MAML, projected to its 60,000
meta-iterations)::

  python -m benchmarks.train_steps --config=experiments/omniglot.py:5way1shot \
      --steps=200 --project=60000

The step is the training loop's (``metalearn.builder``: any registered algorithm, the
config's meta-batch, inner loop and task sampling on the device), compiled explicitly
(``compile_s``), run ``--warmup`` times, then ``--steps`` times back to back with one
``block_until_ready`` at the end, as training runs them (the metrics are not logged,
as on the steps between log lines). ``projected_hours`` is ``--project`` steps at that
rate, compilation and data loading excluded (they are reported apart).
"""

import time

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
from ml_collections import config_flags

from benchmarks import meta_step
from benchmarks import report
from metalearn import builder as build_lib

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config file.",
                                          lock_config=True)
_STEPS = flags.DEFINE_integer("steps", 200, "Timed meta-steps.")
_WARMUP = flags.DEFINE_integer("warmup", 3, "Untimed meta-steps after compilation.")
_PROJECT = flags.DEFINE_integer("project", 0, "Project the time of this many steps.")
_OUT = flags.DEFINE_string("out", "", "Also append the JSON line to this file.")


def measure(config, steps: int, warmup: int) -> dict:
  """Loads the data, compiles and times ``steps`` meta-steps of ``config``'s run."""
  setup = build_lib.build(config)
  start = time.perf_counter()
  data = setup.tasks.load("train")
  jax.block_until_ready(data)
  load_s = time.perf_counter() - start
  state = setup.init_state()
  key, log = jax.random.key(config.seed), jnp.bool_(False)
  start = time.perf_counter()
  step = setup.meta_step().lower(state, data, key, log).compile()
  compile_s = time.perf_counter() - start
  temp_bytes = int(getattr(step.memory_analysis(), "temp_size_in_bytes", -1))
  for _ in range(warmup):
    state, metrics = step(state, data, key, log)
  jax.block_until_ready(state)
  start = time.perf_counter()
  for _ in range(steps):
    state, metrics = step(state, data, key, log)
  jax.block_until_ready((state, metrics))
  seconds = time.perf_counter() - start
  return dict(benchmark="train_steps", algorithm=config.algorithm,
              k_train=config.inner.steps, ways=config.ways, shots=config.shots,
              meta_batch=config.meta_batch, steps=steps, seconds=seconds,
              meta_steps_per_s=steps / seconds, load_s=load_s, compile_s=compile_s,
              compiled_temp_bytes=temp_bytes, query_loss_post=float(
                  metrics["query_loss_post"]), **meta_step.peak_memory_bytes(),
              **meta_step.environment())


def main(argv):
  del argv
  if _STEPS.value < 1:
    raise app.UsageError(f"--steps={_STEPS.value}: must be >= 1")
  row = measure(_CONFIG.value, _STEPS.value, _WARMUP.value)
  if _PROJECT.value:
    row["projected_steps"] = _PROJECT.value
    row["projected_hours"] = _PROJECT.value / row["meta_steps_per_s"] / 3600
  row["config"] = config_flags.get_config_filename(flags.FLAGS["config"])
  report.emit(row, _OUT.value)


if __name__ == "__main__":
  app.run(main)
