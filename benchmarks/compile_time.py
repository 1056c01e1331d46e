r"""Compile time of the reference meta-step: XLA's defaults, the library's
``fast_compile`` options (``metalearn.compiler``), XLA's backend optimisation level or
other options, and JAX's persistent compilation cache.

Prints one JSON line: wall seconds of lowering and of lowering + compiling, compile
CPU-seconds, then the median of ``--steps`` steps.

  python -m benchmarks.compile_time --K=5 --opt_level=1   # -1: XLA's default
  python -m benchmarks.compile_time --K=5 --fast_compile
  python -m benchmarks.compile_time --cache_dir=/tmp/jax_cache   # twice: cold, warm
"""

import os
import time

from absl import app
from absl import flags
import jax
import numpy as np

from benchmarks import meta_step
from benchmarks import report
from metalearn import compiler
from metalearn.run import provenance

_K = flags.DEFINE_integer("K", 1, "Inner steps.")
_OPT = flags.DEFINE_integer("opt_level", -1, "xla_backend_optimization_level; -1 default.")
_ALGORITHM = flags.DEFINE_enum("algorithm", "maml", ["maml", "fomaml", "reptile"], "")
_CACHE = flags.DEFINE_string("cache_dir", "", "JAX persistent compilation cache dir.")
_STEPS = flags.DEFINE_integer("steps", 4, "Timed steps after compiling (median reported).")
_REMAT = flags.DEFINE_bool("remat", False, "Rematerialise each inner step.")
_FAST = flags.DEFINE_bool("fast_compile", False, "The library's fast-compile options "
                          "(metalearn.compiler).")
_OUT = flags.DEFINE_string("out", "", "Also append the JSON line to this file.")
_XLA = flags.DEFINE_string("xla_options", "", "Further XLA compiler options, "
                           "'name=value;...'.")


def main(_):
  if _CACHE.value:
    jax.config.update("jax_compilation_cache_dir", _CACHE.value)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
  options = compiler.options(_FAST.value) | meta_step.parse_xla_options(_XLA.value)
  if _OPT.value >= 0:
    options["xla_backend_optimization_level"] = _OPT.value
  # The reference workload (meta_step.Settings' defaults) at this K, not logging.
  step, (state, data, key, log) = meta_step.build(
      meta_step.Settings(algorithm=_ALGORITHM.value, K=_K.value, remat=_REMAT.value),
      jit=False)
  args = (state, data, key, log)
  load_before = round(os.getloadavg()[0], 2)
  cpu, wall = time.process_time(), time.time()
  lowered = jax.jit(step, donate_argnums=0).lower(*args)
  lower_s = time.time() - wall
  compiled = lowered.compile(compiler_options=options)
  cpu, wall = time.process_time() - cpu, time.time() - wall
  times = []
  for _ in range(_STEPS.value):
    t = time.time()
    state, _ = compiled(state, data, key, log)
    jax.block_until_ready(state)
    times.append(time.time() - t)
  report.emit(dict(
      benchmark="compile_time", algorithm=_ALGORITHM.value, K=_K.value,
      remat=_REMAT.value, fast_compile=_FAST.value, opt_level=_OPT.value, options=options,
      cache_dir=_CACHE.value, lower_wall_s=round(lower_s, 2), compile_cpu_s=round(cpu, 2),
      compile_wall_s=round(wall, 2), step_s_median=round(float(np.median(times)), 3),
      steps=_STEPS.value, date=provenance.now(), load_average_before=load_before,
      load_average=provenance.machine()["load_average"]), _OUT.value)


if __name__ == "__main__":
  app.run(main)
