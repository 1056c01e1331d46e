"""Compiled memory of the meta-step against the inner steps K: iMAML against MAML.

Usage::

  python -m benchmarks.imaml_memory            # iMAML K = 5, 20, 100; MAML K = 1, 5, 20

The Omniglot conv net, 5-way 1-shot, meta-batch 32 (``experiments/omniglot_imaml.py``;
MAML is the same config with ``algorithm='maml'``). Each meta-step is lowered on
abstract shapes (no data) and compiled for the default backend; XLA's
``memory_analysis()`` of the compiled program gives its temporary buffers
(``temp_bytes``: what grows when second-order MAML stores K inner steps for its
backward pass, and stays flat for iMAML, whose inner loop is never differentiated),
arguments and outputs. Nothing is run or timed. One JSON line per (algorithm, K).
"""

import json

from absl import app
from absl import flags
import jax
import jax.numpy as jnp

from experiments import omniglot_imaml
from metalearn import builder as build_lib
from metalearn import tasks

_IMAML_KS = flags.DEFINE_list("imaml_Ks", ["5", "20", "100"], "iMAML inner steps.")
_MAML_KS = flags.DEFINE_list("maml_Ks", ["1", "5", "20"], "Second-order MAML inner steps.")
_META_BATCH = flags.DEFINE_integer("meta_batch", 32, "Tasks per meta-step.")
_TASK_MAP = flags.DEFINE_enum("task_map", "auto", ["auto", "vmap", "map"],
                              "How tasks are mapped (outer.make_meta_step).")


def compiled_memory(algorithm: str, k: int, meta_batch: int, task_map: str) -> dict:
  """XLA's memory analysis of the compiled meta-step of one setting."""
  c = omniglot_imaml.get_config("5way1shot")
  c.algorithm, c.inner.steps, c.meta_batch, c.task_map = algorithm, k, meta_batch, task_map
  setup = build_lib.build(c)
  args = (setup.abstract_state(), tasks.base.abstract_data(setup.tasks),
          jax.eval_shape(lambda: jax.random.key(0)), jax.ShapeDtypeStruct((), jnp.bool_))
  memory = setup.meta_step().lower(*args).compile().memory_analysis()
  return dict(algorithm=algorithm, K=k, meta_batch=meta_batch, task_map=task_map,
              backend=jax.default_backend(),
              temp_bytes=int(memory.temp_size_in_bytes),
              argument_bytes=int(memory.argument_size_in_bytes),
              output_bytes=int(memory.output_size_in_bytes))


def main(argv):
  del argv
  for algorithm, ks in (("imaml", _IMAML_KS.value), ("maml", _MAML_KS.value)):
    for k in ks:
      print(json.dumps(compiled_memory(algorithm, int(k), _META_BATCH.value,
                                       _TASK_MAP.value)), flush=True)


if __name__ == "__main__":
  app.run(main)
