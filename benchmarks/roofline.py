"""This machine's measured limits, in GFLOP/s, for the shapes the workload runs.

Usage::

  python -m benchmarks.roofline            # default XLA flags, then the oneDNN flag
  python -m benchmarks.roofline --child    # one measurement set, under the current env

Kernels (float32, each jitted alone, median of ``--reps`` calls after a warm-up):

- ``matmul_2048``: ``[2048, 2048] @ [2048, 2048]``, the dense-matmul ceiling.
- ``conv1_xla`` / ``conv2_xla``: the workload's first and second convolutions through
  ``lax.conv_general_dilated``, forward, on 32 × 80 = 2560 images
  (28×28×1 → 14×14×64 and 14×14×64 → 7×7×64, 3×3, stride 2, SAME).
- ``conv2_im2col_matmul``: the second convolution as the single matmul im2col makes of
  it, ``[2560·49, 576] @ [576, 64]`` (columns precomputed, so the matmul alone).
- ``conv2_batched_matmul``: the same split into 32 tasks, each with its own kernel,
  ``[32, 80·49, 576] @ [32, 576, 64]``, the shape vmap over tasks produces.

XLA_FLAGS must be set before jax is imported, so each flag setting runs in a child
process. Prints one JSON line per setting and, with ``--markdown``, a table.
"""

import json
import os
import statistics
import subprocess
import sys
import time

from absl import app
from absl import flags

from benchmarks import report

FLAGS = flags.FLAGS
flags.DEFINE_bool("child", False, "Measure in this process and print one JSON line.")
flags.DEFINE_integer("reps", 10, "Timed calls per kernel.")
flags.DEFINE_string("out", "", "Append the JSON lines to this file.")

SETTINGS = {
    "default": "",
    "onednn": "--xla_cpu_experimental_onednn_custom_call=true",
}


def _measure(reps: int) -> dict:
  import jax  # pylint: disable=g-import-not-at-top
  from jax import lax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top

  from benchmarks import meta_step  # pylint: disable=g-import-not-at-top

  def conv(x, k):
    return lax.conv_general_dilated(x, k, (2, 2), "SAME",
                                    dimension_numbers=("NHWC", "HWIO", "NHWC"))

  key = jax.random.key(0)
  n = 2048
  images = 32 * 80
  kernels = {
      "matmul_2048": (lambda a, b: a @ b, [(n, n), (n, n)], 2 * n ** 3),
      "conv1_xla": (conv, [(images, 28, 28, 1), (3, 3, 1, 64)],
                    2 * images * 14 * 14 * 9 * 1 * 64),
      "conv2_xla": (conv, [(images, 14, 14, 64), (3, 3, 64, 64)],
                    2 * images * 7 * 7 * 9 * 64 * 64),
      "conv2_im2col_matmul": (lambda a, b: a @ b, [(images * 49, 576), (576, 64)],
                              2 * images * 49 * 576 * 64),
      "conv2_batched_matmul": (lambda a, b: jnp.einsum("tmk,tkn->tmn", a, b),
                               [(32, 80 * 49, 576), (32, 576, 64)],
                               2 * images * 49 * 576 * 64),
  }
  row = {"benchmark": "roofline", **meta_step.environment()}
  for name, (fn, shapes, flops) in kernels.items():
    args = [jax.random.normal(jax.random.fold_in(key, i), s) for i, s in enumerate(shapes)]
    f = jax.jit(fn).lower(*args).compile()
    for _ in range(2):
      jax.block_until_ready(f(*args))
    times = []
    for _ in range(reps):
      start = time.perf_counter()
      jax.block_until_ready(f(*args))
      times.append(time.perf_counter() - start)
    row[name + "_gflops"] = flops / statistics.median(times) / 1e9
    row[name + "_best_gflops"] = flops / min(times) / 1e9
  return row


def main(argv):
  del argv
  if FLAGS.child:
    print(json.dumps(_measure(FLAGS.reps)), flush=True)
    return
  for setting, xla_flags in SETTINGS.items():
    env = dict(os.environ, XLA_FLAGS=xla_flags, JAX_PLATFORMS="cpu")
    out = subprocess.run([sys.executable, "-m", "benchmarks.roofline", "--child",
                          f"--reps={FLAGS.reps}"], env=env, capture_output=True,
                         text=True, check=True)
    row = json.loads(out.stdout.strip().splitlines()[-1])
    row["setting"] = setting
    report.emit(row, FLAGS.out)


if __name__ == "__main__":
  app.run(main)
