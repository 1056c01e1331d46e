r"""How much one test-protocol change moves a score, measured on the same episodes.

Two evaluation files of one checkpoint on one evaluation seed (``train.eval_file_stem``)
draw the same classes and examples when they share ways, shots and queries per class:
the episode keys depend only on the seed and the batch. Switching the batch-norm mode,
the number of test-time steps or ``eval.rotate`` (which turns the drawn classes on a
stream of its own) leaves the draws alone, so the per-episode accuracies pair up and
the difference has a much tighter interval than the two scores' own CIs suggest.

  python -m experiments.paired_eval \
      results/omniglot_maml_5w1s/eval/rows_step60000_seed1_5w1s1q_k10.npz \
      results/omniglot_maml_5w1s/eval/rows_step60000_seed1_5w1s1q_k10_rot.npz

prints, for the largest test-time step of both, each mean and the paired difference
(second minus first) with its 95% interval 1.96·sd(diff)/√n.
"""

import math
import re

from absl import app
import numpy as np

_STEM = re.compile(r"rows_step(\d+)_seed(\d+)_(\d+)w(\d+)s(\d+)q_k\d+")


def paired_difference(first: str, second: str, metric: str = "accuracy"
                      ) -> tuple[float, float, float, float, int]:
  """(mean of first, mean of second, mean difference, its 95% half-width, episodes).

  Raises:
    ValueError: the files name different checkpoints, seeds, ways, shots or queries
      (their episodes are not the same), or hold different numbers of episodes.
  """
  keys = []
  for path in (first, second):
    match = _STEM.search(path)
    if not match:
      raise ValueError(f"{path}: not an evaluation file name (train.eval_file_stem)")
    keys.append(match.groups())
  if keys[0] != keys[1]:
    raise ValueError(f"{first} and {second} do not share checkpoint, seed, ways, shots and "
                     "queries, so their episodes differ; nothing to pair")
  a, b = (np.load(p)[metric][:, -1].astype(np.float64) for p in (first, second))
  if a.shape != b.shape:
    raise ValueError(f"{first} has {a.shape[0]} episodes, {second} has {b.shape[0]}")
  diff = b - a
  half = 1.96 * diff.std(ddof=1) / math.sqrt(diff.size) if diff.size > 1 else math.nan
  return float(a.mean()), float(b.mean()), float(diff.mean()), float(half), diff.size


def main(argv):
  if len(argv) != 3:
    raise app.UsageError("give two .npz evaluation files of one checkpoint and seed")
  a, b, d, half, n = paired_difference(argv[1], argv[2])
  print(f"{100 * a:.2f} -> {100 * b:.2f}: {100 * d:+.2f} ± {100 * half:.2f} points "
        f"(paired over the same {n:,} episodes, 95% CI)")


if __name__ == "__main__":
  app.run(main)
