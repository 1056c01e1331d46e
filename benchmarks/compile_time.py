r"""Compile time of the reference meta-step against XLA's backend optimisation level.

Prints one JSON line: compile CPU-seconds and wall seconds, then the median of 4 steps.

  python -m benchmarks.compile_time --K=5 --opt_level=1   # -1: XLA's default
"""

import json
import time

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
import numpy as np
import optax

from metalearn import inner
from metalearn import learner as learner_lib
from metalearn import outer
from metalearn import provenance
from metalearn.models import conv4
from metalearn.tasks import sampling

_K = flags.DEFINE_integer("K", 1, "Inner steps.")
_OPT = flags.DEFINE_integer("opt_level", -1, "xla_backend_optimization_level; -1 default.")
_ALGORITHM = flags.DEFINE_enum("algorithm", "maml", ["maml", "fomaml", "reptile"], "")


def main(_):
  options = {} if _OPT.value < 0 else {"xla_backend_optimization_level": _OPT.value}
  learner = learner_lib.Learner(conv4.omniglot_conv4(5))
  family = sampling.ImageTaskFamily(5, 1, 15)
  data = jnp.asarray(np.random.default_rng(0).integers(
      0, 255, (100, 20, 28, 28, 1), dtype=np.uint8))
  optimizer = optax.adam(1e-3)
  state = outer.init_state(learner.init(jax.random.key(0), jnp.zeros((5, 28, 28, 1))),
                           optimizer)
  step = outer.make_meta_step(learner=learner, algorithm=_ALGORITHM.value,
                              inner=inner.InnerConfig(_K.value, 0.4), optimizer=optimizer,
                              task_family=family, meta_batch=32, jit=False)
  args = (state, data, jax.random.key(1), jnp.bool_(False))
  cpu, wall = time.process_time(), time.time()
  compiled = jax.jit(step, donate_argnums=0).lower(*args).compile(compiler_options=options)
  cpu, wall = time.process_time() - cpu, time.time() - wall
  times = []
  for _ in range(4):
    t = time.time()
    state, _ = compiled(state, data, jax.random.key(1), jnp.bool_(False))
    jax.block_until_ready(state)
    times.append(time.time() - t)
  print(json.dumps(dict(algorithm=_ALGORITHM.value, K=_K.value, opt_level=_OPT.value,
                        compile_cpu_s=round(cpu, 2), compile_wall_s=round(wall, 2),
                        step_s_median=round(float(np.median(times)), 3),
                        load_average=provenance.machine()["load_average"])))


if __name__ == "__main__":
  app.run(main)
