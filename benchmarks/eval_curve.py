"""Evaluation speed: episodes/s for the whole k = 0..K accuracy curve in one pass.

Usage::

  python -m benchmarks.eval_curve --K=10 --batch=32

Each episode is adapted once for K inner steps with ``inner.adapt_curve``, scoring its
query set before adaptation and after every step (K + 1 points); a batch of episodes
is sampled and vmapped inside one compiled function. Prints ONE JSON line with
``episodes_per_s``, ``median_s`` per batch, ``compile_s``, ``flops_per_episode``
(XLA's count, scans unrolled) and the settings, load and versions as in
``benchmarks.meta_step``.
"""

import dataclasses
import statistics
import time
from typing import Any

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import meta_step
from benchmarks import report
from metalearn import flops as flops_lib
from metalearn import inner as inner_lib
from metalearn import learner as learner_lib
from metalearn.inner import InnerConfig
from metalearn.tasks import sampling


@dataclasses.dataclass(frozen=True)
class Settings:
  K: int = 10  # pylint: disable=invalid-name
  inner_lr: float = 0.4
  ways: int = 5
  shots: int = 1
  queries: int = 15
  batch: int = 32
  model: str = "omniglot"
  conv_impl: str = "auto"
  bn_mode: str = "transductive"
  steps: int = 10
  warmup: int = 2
  count_flops: bool = True
  unroll: bool = False  # Unrolled curve scan, for counting flops (no flag).


def build(s: Settings):
  """The jitted ``(theta, data, key) -> metrics [batch, K+1]`` and its arguments."""
  make_model, image_shape = meta_step.MODELS[s.model]
  learner = learner_lib.Learner(make_model(s.ways, conv_impl=s.conv_impl), "xent",
                                bn_mode=s.bn_mode)
  inner = InnerConfig(steps=s.K, lr=s.inner_lr, unroll=s.unroll)
  family = sampling.ImageTaskFamily(s.ways, s.shots, s.queries)
  eval_steps = tuple(range(s.K + 1))

  def one(theta, episode):
    _, curve = inner_lib.adapt_curve(
        theta, lambda p: learner.support_loss(p, episode),
        lambda p: learner.query_loss(p, episode)[1], cfg=inner, eval_steps=eval_steps)
    return curve

  @jax.jit
  def evaluate(theta, data, key):
    episodes = family.sample(key, data, s.batch)
    return jax.vmap(one, in_axes=(None, 0))(theta, episodes)

  images = np.random.RandomState(0).randint(0, 256, (100, 20) + image_shape, np.uint8)
  theta = learner.init(jax.random.key(0),
                       jnp.zeros((s.ways * s.shots,) + image_shape, jnp.float32))
  return evaluate, (theta, jax.device_put(images), jax.random.key(1))


def run(s: Settings) -> dict[str, Any]:
  """Compiles, warms up and times one batch of curves; returns the result row."""
  load_before = meta_step.environment()["loadavg"][0]
  evaluate, args = build(s)
  start = time.perf_counter()
  compiled = evaluate.lower(*args).compile()
  compile_s = time.perf_counter() - start
  for _ in range(s.warmup):
    jax.block_until_ready(compiled(*args))
  times = []
  for i in range(s.steps):
    key = jax.random.fold_in(args[2], i)
    start = time.perf_counter()
    curve = jax.block_until_ready(compiled(args[0], args[1], key))
    times.append(time.perf_counter() - start)
  median_s = statistics.median(times)
  memory = meta_step.peak_memory_bytes()
  flops = float("nan")
  if s.count_flops:  # XLA counts a scan's body once: count the unrolled program.
    unrolled, unrolled_args = build(dataclasses.replace(s, unroll=True))
    flops = flops_lib.program_flops(unrolled, *unrolled_args, compiled=True)
  return {
      "benchmark": "eval_curve",
      "episodes_per_s": s.batch / median_s, "median_s": median_s,
      "min_s": min(times), "max_s": max(times), "compile_s": compile_s,
      "flops_per_episode": flops / s.batch,
      "achieved_gflops": flops / median_s / 1e9,
      "curve_points": int(curve["accuracy"].shape[1]),
      **memory, "settings": dataclasses.asdict(s), **meta_step.environment(),
      "loadavg_before": load_before,
  }


FLAGS = flags.FLAGS


def define_flags() -> None:
  """Defines the command-line flags (only when run as a program: importing this
  module defines none, so other benchmarks can import it)."""
  flags.DEFINE_integer("K", 10, "Inner steps; the curve has K + 1 points.")
  flags.DEFINE_integer("batch", 32, "Episodes per compiled call.")
  flags.DEFINE_integer("ways", 5, "Classes per episode.")
  flags.DEFINE_integer("shots", 1, "Support examples per class.")
  flags.DEFINE_integer("queries", 15, "Query examples per class.")
  flags.DEFINE_enum("model", "omniglot", list(meta_step.MODELS), "Conv net variant.")
  flags.DEFINE_string("conv_impl", "auto", "Convolution formulation.")
  flags.DEFINE_integer("steps", 10, "Timed batches (median reported).")
  flags.DEFINE_bool("count_flops", True, "Count flops (compiles one more program).")
  flags.DEFINE_string("out", "", "Also append the JSON line to this file.")


def main(argv):
  del argv
  s = Settings(**{f.name: getattr(FLAGS, f.name) for f in dataclasses.fields(Settings)
                  if f.name in FLAGS})
  report.emit(run(s), FLAGS.out)


if __name__ == "__main__":
  define_flags()
  app.run(main)
