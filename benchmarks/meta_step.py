"""Steady-state speed, compute and memory of one meta-step; prints ONE JSON line.

Usage (the reference workload "omniglot-5w1s", second-order MAML, K = 5)::

  python -m benchmarks.meta_step --algorithm=maml --K=5

Omniglot conv net (4 × [3×3 conv 64, stride 2, BN batch stats, ReLU] → linear),
5-way 1-shot, 15 queries per class, meta-batch 32, K plain-SGD inner steps at lr 0.4
on all parameters, Adam 1e-3 outside. Episodes are sampled inside the step from a
synthetic uint8 array ``[100, 20, H, W, Ch]``, so no dataset is needed.

The step is lowered and compiled explicitly (``compile_s``), run ``--warmup`` times,
then timed ``--steps`` times with ``block_until_ready`` after each; ``median_s`` is the
median. ``flops_per_step`` is XLA's count of the compiled step with the inner scan
unrolled (XLA counts a loop body once otherwise, see ``metalearn.flops``); for K > 2
it is extrapolated from the exact counts at K = 1 and 2, since a meta-step's flops are
affine in K. Peak memory is the process's peak RSS on CPU (so run one configuration
per process to compare memory) and the device's peak bytes on GPU.

``--task_map`` is ``outer.make_meta_step``'s: ``vmap`` or ``lax.map`` over tasks
(``auto``: map on CPU). Flops are counted on the vmap form (same maths; XLA would count
the body of ``lax.map``'s loop over tasks once).
"""

import collections
import dataclasses
import glob
import gzip
import json
import os
import platform
import resource
import statistics
import sys
import time
from typing import Any

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
import numpy as np
import optax

from benchmarks import report
from metalearn import flops
from metalearn import learner as learner_lib
from metalearn import outer
from metalearn.run import provenance
from metalearn.inner import InnerConfig
from metalearn.models import conv4
from metalearn.tasks import sampling

MODELS = {  # name: (model constructor, image shape)
    "omniglot": (conv4.omniglot_conv4, (28, 28, 1)),
    "miniimagenet": (conv4.miniimagenet_conv4, (84, 84, 3)),
    # For smoke tests only: compiles in seconds.
    "tiny": (lambda n, **kw: conv4.Conv4(n, filters=4, depth=2, **kw), (8, 8, 1)),
}


@dataclasses.dataclass(frozen=True)
class Settings:
  """One benchmark configuration (defaults: the reference workload, K = 1)."""

  algorithm: str = "maml"
  first_order: bool = False
  remat: bool = False
  K: int = 1  # pylint: disable=invalid-name
  inner_lr: float = 0.4
  ways: int = 5
  shots: int = 1
  queries: int = 15
  meta_batch: int = 32
  model: str = "omniglot"
  dtype: str = "float32"
  conv_impl: str = "auto"
  bn_mode: str = "transductive"
  task_map: str = "auto"
  steps: int = 10
  warmup: int = 2
  count_flops: bool = True
  unroll: bool = False  # Unrolled inner scan, for counting flops (no flag).
  xla_options: str = ""  # "name=value;name=value": XLA compiler options for the step.
  classes: int = 100
  examples: int = 20
  seed: int = 0


class _CastFamily:
  """A task family whose episodes' inputs are cast to ``dtype`` (for bfloat16 runs)."""

  def __init__(self, family, dtype):
    self.family, self.dtype = family, dtype

  def sample(self, key, data, num_tasks):
    ep = self.family.sample(key, data, num_tasks)
    return ep.replace(support_x=ep.support_x.astype(self.dtype),
                      query_x=ep.query_x.astype(self.dtype))


def parts(s: Settings):
  """``(learner, inner config, task family)`` of the workload ``s``."""
  make_model, _ = MODELS[s.model]
  dtype = jnp.dtype(s.dtype)
  learner = learner_lib.Learner(
      make_model(s.ways, conv_impl=s.conv_impl, param_dtype=dtype), "xent",
      bn_mode=s.bn_mode)
  inner = InnerConfig(steps=s.K, lr=s.inner_lr, first_order=s.first_order,
                      remat=s.remat, unroll=s.unroll)
  family = sampling.ImageTaskFamily(s.ways, s.shots, s.queries)
  if dtype != jnp.float32:
    family = _CastFamily(family, dtype)
  return learner, inner, family


def build(s: Settings, jit: bool = True):
  """The meta-step (jitted unless ``jit`` is false) and its example arguments
  ``(state, data, key, log)``."""
  _, image_shape = MODELS[s.model]
  dtype = jnp.dtype(s.dtype)
  learner, inner, family = parts(s)
  optimizer = optax.adam(1e-3)
  step = outer.make_meta_step(learner=learner, algorithm=s.algorithm, inner=inner,
                              optimizer=optimizer, task_family=family,
                              meta_batch=s.meta_batch, task_map=s.task_map, jit=jit)
  images = np.random.RandomState(s.seed).randint(
      0, 256, (s.classes, s.examples) + image_shape, np.uint8)
  data = jax.device_put(images)
  theta = learner.init(jax.random.key(s.seed),
                       jnp.zeros((s.ways * s.shots,) + image_shape, dtype))
  state = outer.init_state(theta, optimizer)
  return step, (state, data, jax.random.key(s.seed + 1), jnp.bool_(False))


def parse_xla_options(text: str) -> dict[str, Any]:
  """``"name=value;..."`` as ``Lowered.compile``'s dict (true/false -> bool, digits -> int)."""
  out = {}
  for item in filter(None, text.split(";")):
    name, sep, value = item.partition("=")
    if not sep:
      raise ValueError(f"--xla_options: {item!r} is not name=value")
    low = value.lower()
    out[name] = (low == "true") if low in ("true", "false") else (
        int(value) if value.lstrip("-").isdigit() else value)
  return out


def count_flops_at(s: Settings) -> float:
  """XLA's flops of the compiled step exactly as ``s`` says (scan unrolled or not), as
  timed: not logging. ``log`` is passed as a Python False, so the metric-only forward
  passes are not traced at all (XLA counts a ``lax.cond`` as its costlier branch)."""
  step, (state, data, key, _) = build(s, jit=False)
  args = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), (state, data, key))
  return flops.program_flops(lambda st, d, k: step(st, d, k, False), *args, compiled=True)


def _count_flops(s: Settings) -> float:
  """XLA's flops of one meta-step, every inner step counted (see the docstring)."""
  # vmap: the same maths as lax.map, whose loop over tasks XLA would count once.
  return flops.at_steps(lambda k: count_flops_at(
      dataclasses.replace(s, K=k, task_map="vmap", unroll=True)), s.K)


def peak_memory_bytes() -> dict[str, Any]:
  """Process peak RSS (CPU) and, where the device reports it, its peak bytes in use."""
  out = {"peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}
  stats = jax.devices()[0].memory_stats() if jax.default_backend() != "cpu" else None
  if stats and "peak_bytes_in_use" in stats:
    out["device_peak_bytes"] = int(stats["peak_bytes_in_use"])
  return out


def environment() -> dict[str, Any]:
  """Where and when: versions, backend, CPU model and count, the cores this process
  may use (``taskset``), and the load while measuring."""
  machine = provenance.machine()
  return {
      "jax": jax.__version__, "backend": jax.default_backend(),
      "device": str(jax.devices()[0].device_kind), "cpus": os.cpu_count(),
      "cpu_model": machine["cpu"], "cpus_usable": machine["cpus_usable"],
      "host": platform.node(), "python": sys.version.split()[0],
      "xla_flags": os.environ.get("XLA_FLAGS", ""),
      "date": provenance.now(),
      "loadavg": [round(x, 2) for x in os.getloadavg()],
  }


def print_top_ops(profile_dir: str, steps: int, top: int = 25) -> None:
  """Prints to stderr the compiled program's operations by total time per step."""
  paths = glob.glob(os.path.join(profile_dir, "**", "perfetto_trace.json.gz"),
                    recursive=True)
  with gzip.open(max(paths, key=os.path.getmtime)) as f:
    events = json.load(f)
  events = events["traceEvents"] if isinstance(events, dict) else events
  totals = collections.Counter()
  for e in events:
    if e.get("ph") == "X" and "dur" in e:
      totals[e.get("name", "?")] += e["dur"] / 1e6 / steps
  for name, secs in totals.most_common(top):
    print(f"{secs:9.4f} s/step  {name[:110]}", file=sys.stderr)


def run(s: Settings, profile_dir: str = "") -> dict[str, Any]:
  """Compiles, warms up and times the meta-step of ``s``; returns the result row.

  Args:
    s: the configuration.
    profile_dir: if set, also trace 3 more steps there and print the costliest ops.

  Returns:
    The JSON-able result row.
  """
  load_before = os.getloadavg()[0]
  step, (state, data, key, log) = build(s)
  start, cpu_start = time.perf_counter(), time.process_time()
  compiled = step.lower(state, data, key, log).compile(parse_xla_options(s.xla_options))
  compile_s = time.perf_counter() - start
  # CPU seconds of this process: on a loaded machine a steadier figure than wall time.
  compile_cpu_s = time.process_time() - cpu_start
  memory_plan = compiled.memory_analysis()
  for _ in range(s.warmup):
    state, metrics = compiled(state, data, key, log)
    jax.block_until_ready((state, metrics))
  times = []
  for _ in range(s.steps):
    start = time.perf_counter()
    state, metrics = compiled(state, data, key, log)
    jax.block_until_ready((state, metrics))
    times.append(time.perf_counter() - start)
  median_s = statistics.median(times)
  if profile_dir:
    with jax.profiler.trace(profile_dir, create_perfetto_trace=True):
      for _ in range(3):
        state, metrics = compiled(state, data, key, log)
        jax.block_until_ready((state, metrics))
    print_top_ops(profile_dir, steps=3)
  loss = float(metrics["query_loss_post"])
  memory = peak_memory_bytes()  # Before flop counting, which compiles more programs.
  flops = _count_flops(s) if s.count_flops else float("nan")
  row = {
      "benchmark": "meta_step",
      "meta_steps_per_s": 1.0 / median_s,
      "median_s": median_s,
      "min_s": min(times), "max_s": max(times),
      "compile_s": compile_s,
      "compile_cpu_s": compile_cpu_s,
      "flops_per_step": flops,
      "achieved_gflops": flops / median_s / 1e9,
      **memory,
      "compiled_temp_bytes": int(getattr(memory_plan, "temp_size_in_bytes", -1)),
      "query_loss_post": loss,
      "settings": dataclasses.asdict(s),
      **environment(),
      "loadavg_before": round(load_before, 2),
  }
  return row


def compare(variants: list[Settings], rounds: int) -> list[dict[str, Any]]:
  """Times several configurations interleaved (A B C A B C ...) in one process.

  On a shared, drifting machine the ratio of interleaved medians is steadier than
  medians taken minutes apart. Peak memory is not reported (one process for all).

  Args:
    variants: the configurations; the first is the reference for ``ratio``.
    rounds: timed steps of each.

  Returns:
    One row per variant: settings, compile_s, median_s, meta_steps_per_s, and
    ``speedup`` = reference median / this median.
  """
  built = []
  for s in variants:
    step, (state, data, key, log) = build(s)
    start = time.perf_counter()
    compiled = step.lower(state, data, key, log).compile(parse_xla_options(s.xla_options))
    compile_s = time.perf_counter() - start
    for _ in range(s.warmup):
      state, _ = jax.block_until_ready(compiled(state, data, key, log))
    built.append([compiled, state, data, key, log, compile_s, []])
  for _ in range(rounds):
    for b in built:
      compiled, state, data, key, log = b[:5]
      start = time.perf_counter()
      b[1], metrics = jax.block_until_ready(compiled(state, data, key, log))
      b[6].append(time.perf_counter() - start)
  ref = statistics.median(built[0][6])
  return [{"benchmark": "meta_step_compare", "settings": dataclasses.asdict(s),
           "compile_s": b[5], "median_s": statistics.median(b[6]),
           "min_s": min(b[6]), "max_s": max(b[6]),
           "meta_steps_per_s": 1 / statistics.median(b[6]),
           "speedup": ref / statistics.median(b[6]), **environment()}
          for s, b in zip(variants, built)]


FLAGS = flags.FLAGS


def define_flags() -> None:
  """Defines the command-line flags (only when run as a program: importing this
  module defines none, so other benchmarks can import it)."""
  flags.DEFINE_enum("algorithm", "maml", ["maml", "fomaml", "reptile"], "Algorithm.")
  flags.DEFINE_bool("first_order", False, "InnerConfig.first_order (stop inner grads).")
  flags.DEFINE_bool("remat", False, "Rematerialise each inner step.")
  flags.DEFINE_integer("K", 1, "Inner steps.")
  flags.DEFINE_float("inner_lr", 0.4, "Inner SGD learning rate.")
  flags.DEFINE_integer("ways", 5, "Classes per episode.")
  flags.DEFINE_integer("shots", 1, "Support examples per class.")
  flags.DEFINE_integer("queries", 15, "Query examples per class.")
  flags.DEFINE_integer("meta_batch", 32, "Tasks per meta-step.")
  flags.DEFINE_enum("model", "omniglot", list(MODELS), "Conv net variant.")
  flags.DEFINE_enum("dtype", "float32", ["float32", "bfloat16"], "Params and inputs.")
  flags.DEFINE_string("conv_impl", "auto", "Convolution formulation (layers.CONV_IMPLS).")
  flags.DEFINE_enum("task_map", "auto", list(outer.TASK_MAPS),
                    "Tasks via vmap or lax.map (outer.make_meta_step; auto: map on CPU).")
  flags.DEFINE_integer("steps", 10, "Timed meta-steps (median reported).")
  flags.DEFINE_integer("warmup", 2, "Untimed meta-steps after compilation.")
  flags.DEFINE_string("xla_options", "", "XLA compiler options for the step, "
                      "'name=value;...', e.g. xla_cpu_use_fusion_emitters=false.")
  flags.DEFINE_bool("count_flops", True, "Count flops (compiles 1-2 more programs).")
  flags.DEFINE_string("compare", "", "FIELD=V1,V2,...: time these values of one setting "
                      "interleaved in this process, e.g. conv_impl=im2col,patches.")
  flags.DEFINE_string("out", "", "Also append the JSON line to this file.")
  flags.DEFINE_string("profile_dir", "", "Trace 3 steps there; print the costliest ops.")


def main(argv):
  del argv
  s = Settings(**{f.name: getattr(FLAGS, f.name) for f in dataclasses.fields(Settings)
                  if f.name in FLAGS})
  if FLAGS.compare:
    field, values = FLAGS.compare.split("=", 1)
    kind = type(getattr(s, field))
    parse = (lambda v: v.lower() in ("1", "true")) if kind is bool else kind
    rows = compare([dataclasses.replace(s, **{field: parse(v)})
                    for v in values.split(",")], rounds=s.steps)
  else:
    rows = [run(s, FLAGS.profile_dir)]
  for row in rows:
    report.emit(row, FLAGS.out)


if __name__ == "__main__":
  define_flags()
  app.run(main)
