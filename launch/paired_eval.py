r"""How much one change moves a score, measured on the same episodes.

The evaluation episodes depend only on the data, the split, the evaluation seed, the
batch the episodes are drawn in, and the episode shape (ways, shots, queries per class):
``evaluation.evaluate`` draws batch ``i`` from ``fold_in(key(eval.seed), i)``. So two
evaluation files (``metalearn.run.scoring``) that agree on those saw the same classes and
examples, whatever else differs: the checkpoint (two steps of one run, or two runs),
the batch-norm mode, the number of test-time steps, or ``eval.rotate`` (which turns the
drawn classes on a PRNG stream of its own). Their per-episode accuracies pair up, and
the difference has a much tighter interval than the two scores' own CIs suggest.

  python -m launch.paired_eval \
      results/omniglot_maml_5w1s/eval/rows_step60000_seed1_5w1s1q_k10.npz \
      results/omniglot_maml_5w1s/eval/rows_step60000_seed1_5w1s1q_k10_rot.npz

prints, for the largest test-time step of both, each mean and the paired difference
(second minus first) with its 95% interval 1.96·sd(diff)/√n. The settings are read
from the rows beside each ``.npz`` (the ``.jsonl`` of the same name).
"""

import os

from absl import app
import numpy as np

from launch import cli
from metalearn import stats
from metalearn.run import workdir as workdir_lib

EPISODE_KEYS = workdir_lib.EPISODE_KEYS


def episode_settings(npz_path: str) -> dict:
  """The settings of the evaluation file ``npz_path`` that fix which episodes it drew,
  from the rows written beside it (``workdir.episode_settings``; rows written before
  ``eval_batch`` was recorded take the run's ``eval.batch`` from its ``config.json``).

  Raises:
    ValueError: no rows file beside ``npz_path``, or an old rows file and no
      ``config.json`` to read its batch from.
  """
  rows_path = os.path.splitext(npz_path)[0] + ".jsonl"
  if not os.path.exists(rows_path):
    raise ValueError(f"{npz_path}: no rows file {rows_path} beside it (an evaluation "
                     "writes both)")
  return workdir_lib.episode_settings(rows_path)


def paired_difference(first: str, second: str, metric: str = "accuracy"
                      ) -> tuple[float, float, float, float, int]:
  """(mean of first, mean of second, mean difference, its 95% half-width, episodes).

  Raises:
    ValueError: the files' episodes differ (another data set, split, seed, batch,
      ways, shots or queries per class), or they hold different numbers of episodes.
  """
  a_set, b_set = episode_settings(first), episode_settings(second)
  differ = {k: (a_set[k], b_set[k]) for k in EPISODE_KEYS if a_set[k] != b_set[k]}
  if differ:
    raise ValueError(f"{first} and {second} drew different episodes ({differ}); "
                     "nothing to pair")
  a, b = (np.load(p)[metric][:, -1].astype(np.float64) for p in (first, second))
  if a.shape != b.shape:
    raise ValueError(f"{first} has {a.shape[0]} episodes, {second} has {b.shape[0]}")
  diff = b - a
  half = stats.half_width(diff)
  return float(a.mean()), float(b.mean()), float(diff.mean()), float(half), diff.size


def main(argv):
  if len(argv) != 3:
    raise app.UsageError("give two .npz evaluation files of the same episodes")
  try:
    a, b, d, half, n = paired_difference(argv[1], argv[2])
  except (ValueError, OSError) as e:
    cli.fail(str(e))
  print(f"{100 * a:.2f} -> {100 * b:.2f}: {100 * d:+.2f} ± {100 * half:.2f} points "
        f"(paired over the same {n:,} episodes, 95% CI)")


if __name__ == "__main__":
  app.run(main)
