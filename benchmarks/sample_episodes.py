"""Episodes per second of the on-device sampler; prints one JSON line.

Usage: python -m benchmarks.sample_episodes [--data=omniglot|random] [--path=DIR]

With ``--data=omniglot`` (default when the data is found) the Omniglot ``maml`` meta-
training split (4400 rotated classes x 20 x 28 x 28 x 1) is sampled; otherwise a random
uint8 array of the same shape. Measures 5-way 1-shot 15-query meta-batches of 32 under
``jax.jit`` after compilation, with ``block_until_ready``.
"""

import argparse
import json
import os
import time

import jax
import numpy as np

from metalearn.tasks import omniglot, sampling


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  here = os.path.dirname(os.path.abspath(__file__))
  parser.add_argument("--path", default=os.environ.get(
      "METALEARN_OMNIGLOT_DIR", os.path.join(here, "..", "..", "shared", "data", "omniglot")))
  parser.add_argument("--data", choices=("omniglot", "random"), default="omniglot")
  parser.add_argument("--cache_dir", default="")
  parser.add_argument("--num_tasks", type=int, default=32)
  parser.add_argument("--ways", type=int, default=5)
  parser.add_argument("--shots", type=int, default=1)
  parser.add_argument("--queries", type=int, default=15)
  parser.add_argument("--seconds", type=float, default=3.0)
  args = parser.parse_args()

  if args.data == "omniglot" and os.path.isdir(args.path):
    split = omniglot.load_split(args.path, "train", cache_dir=args.cache_dir,
                                download=False)
    data = sampling.to_device(split)
    source = split.name
  else:
    images = np.random.RandomState(0).randint(0, 256, (4400, 20, 28, 28, 1), np.uint8)
    data = sampling.ImageData(jax.device_put(images), jax.device_put(np.arange(4400)))
    source = "random"
  family = sampling.ImageTaskFamily(args.ways, args.shots, args.queries)
  sample = jax.jit(lambda key, data: family.sample(key, data, args.num_tasks))

  key = jax.random.key(0)
  start = time.perf_counter()
  jax.block_until_ready(sample(key, data))
  compile_s = time.perf_counter() - start
  for i in range(5):  # Warm-up.
    jax.block_until_ready(sample(jax.random.fold_in(key, i), data))
  batches, start = 0, time.perf_counter()
  while time.perf_counter() - start < args.seconds:
    jax.block_until_ready(sample(jax.random.fold_in(key, 100 + batches), data))
    batches += 1
  elapsed = time.perf_counter() - start
  print(json.dumps({
      "benchmark": "sample_episodes", "data": source, "backend": jax.default_backend(),
      "num_tasks": args.num_tasks, "ways": args.ways, "shots": args.shots,
      "queries": args.queries, "classes": int(data.images.shape[0]),
      "compile_s": round(compile_s, 3), "batches_per_s": round(batches / elapsed, 1),
      "episodes_per_s": round(batches * args.num_tasks / elapsed, 1)}))


if __name__ == "__main__":
  main()
