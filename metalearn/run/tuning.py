"""The test-time inner learning rate chosen per k on validation episodes.

A rate tuned for the K_train steps of meta-training is not the best for k = 256 test-time
steps (too large and the adaptation diverges, too small and it stops short), so a curve
scored at one fixed rate can make large k look useless for the wrong reason. ``tune``
scores a checkpoint at every candidate rate on validation episodes (ordinary evaluations,
``scoring.evaluate``, each one resumable and kept), for each k picks the rate with the
lowest mean validation query loss, and scores the test episodes at the rates picked at
some k only; the tuned curve reports the test values at the picked rates. Validation
and test episodes are disjoint: validation uses ``val_split`` (for images its own
classes) and the evaluation seed plus ``VALIDATION_SEED_OFFSET`` (for synthetic
families, whose splits all draw fresh tasks, that alone makes them different tasks).

The tuned curve is written as an evaluation of its own (``tuned_<stem>.jsonl`` and
``.npz`` in the run's ``eval/``): one row per (metric, k) with ``eval_inner_lr`` the
rate picked at that k, and per-episode values whose column k comes from that rate's test
evaluation.
"""

import copy
import hashlib
import json
import os
from typing import Optional, Sequence

from absl import logging
import ml_collections
import numpy as np

from metalearn import atomic
from metalearn import config as config_lib
from metalearn import stats
from metalearn.errors import ConfigError
from metalearn.run import scoring
from metalearn.run import workdir as workdir_lib

VALIDATION_SEED_OFFSET = 10_000
SELECT_ON = "loss"


def _with(config: ml_collections.ConfigDict, **eval_keys) -> ml_collections.ConfigDict:
  c = copy.deepcopy(config)
  with c.unlocked():
    for k, v in eval_keys.items():
      c.eval[k] = v
  return c


def _scored(config, workdir: str, step: Optional[int]) -> workdir_lib.Evaluation:
  """The evaluation ``config`` asks for: read if present, else scored and written."""
  protocol = config_lib.eval_protocol(config)
  found = workdir_lib.find_evaluation(workdir, step, protocol)
  if found is None:
    scoring.evaluate(config, workdir, step=step)
    found = workdir_lib.find_evaluation(workdir, step, protocol)
  return found


def tuned_stem(workdir: str, step: Optional[int], test: config_lib.EvalProtocol,
               lrs: Sequence[float], val: config_lib.EvalProtocol) -> str:
  """Where the tuned curve of these candidates and protocols is written."""
  key = json.dumps(dict(lrs=[float(x) for x in lrs], val=val.digest(), test=test.digest()))
  digest = hashlib.sha256(key.encode()).hexdigest()[:8]
  return os.path.join(workdir, workdir_lib.EVAL,
                      f"tuned_step{step}_seed{test.seed}_{test.split}_k{test.steps[-1]}"
                      f"_{len(lrs)}lrs_{digest}")


def _val_keys(config, val_split: str, val_episodes: Optional[int]) -> dict:
  return dict(split=val_split, seed=int(config.eval.seed) + VALIDATION_SEED_OFFSET,
              episodes=int(val_episodes or config.eval.episodes))


def tuned_evaluation(config: ml_collections.ConfigDict, workdir: str,
                     lrs: Sequence[float], *, step: int, val_split: str = "val",
                     val_episodes: Optional[int] = None
                     ) -> Optional[workdir_lib.Evaluation]:
  """The tuned curve ``tune`` writes for these arguments, if it was written whole."""
  lrs = sorted({float(x) for x in lrs})
  keys = _val_keys(config, val_split, val_episodes)
  test = config_lib.eval_protocol(_with(config, inner_lr=lrs[0]))
  val = config_lib.eval_protocol(_with(config, inner_lr=lrs[0], **keys))
  stem = tuned_stem(workdir, step, test, lrs, val)
  if not (os.path.exists(stem + ".jsonl") and os.path.exists(stem + ".npz")):
    return None
  return workdir_lib.Evaluation(stem, step, test)


def tune(config: ml_collections.ConfigDict, workdir: str, lrs: Sequence[float], *,
         step: int, val_split: str = "val", val_episodes: Optional[int] = None
         ) -> list[dict]:
  """Scores checkpoint ``step`` at each rate in ``lrs`` and writes the tuned curve.

  Args:
    config: the run's config (its ``eval`` block is the test protocol; ``eval.inner_lr``
      is replaced by each candidate).
    workdir: the run's workdir.
    lrs: candidate test-time inner learning rates (> 0, distinct).
    step: the checkpoint.
    val_split: the split validation episodes come from.
    val_episodes: validation episodes (default: ``config.eval.episodes``).

  Returns:
    The tuned curve's rows.
  """
  lrs = sorted({float(x) for x in lrs})
  if not lrs or min(lrs) <= 0:
    raise ConfigError(f"--inner_lrs={lrs}: give one or more rates > 0")
  val_keys = _val_keys(config, val_split, val_episodes)
  val = []
  for lr in lrs:
    logging.info("inner lr %g: validation", lr)
    val.append(_scored(_with(config, inner_lr=lr, **val_keys), workdir, step))
  ks = val[0].protocol.steps
  val_loss = np.stack([v.values()[SELECT_ON].mean(0) for v in val])  # [L, P]
  pick = np.argmin(val_loss, axis=0)  # [P]
  adapted = [i for i, k in enumerate(ks) if k > 0]
  if adapted:  # At k = 0 every rate scores the same: take one that is tested anyway.
    pick[[i for i, k in enumerate(ks) if k == 0]] = pick[adapted[0]]
  # Test episodes only at the rates picked somewhere (often one rate at every k).
  test = {}
  for j in sorted(set(pick.tolist())):
    logging.info("inner lr %g: test (picked at k in %s)", lrs[j],
                 [int(k) for i, k in enumerate(ks) if pick[i] == j])
    test[j] = _scored(_with(config, inner_lr=lrs[j]), workdir, step)
  test_values = {j: t.values() for j, t in test.items()}
  first = test[pick[0]]
  values = {m: np.stack([test_values[pick[i]][m][:, i] for i in range(len(ks))], axis=1)
            for m in test_values[pick[0]]}
  base = {(r["metric"], r["k"]): r for r in first.rows()}
  rows = []
  for m in sorted(values):
    for i, k in enumerate(ks):
      col = values[m][:, i]
      rows.append(dict(base[(m, k)], mean=float(col.mean()),
                       ci95=float(stats.half_width(col)),
                       eval_inner_lr=lrs[pick[i]] if k > 0 else None, tuned_lrs=lrs,
                       tuned_on=dict(split=val_split, seed=val_keys["seed"],
                                     episodes=val_keys["episodes"], metric=SELECT_ON),
                       val_loss=float(val_loss[pick[i], i]),
                       at_grid_edge=bool(k > 0 and pick[i] in (0, len(lrs) - 1)
                                         and len(lrs) > 1)))
  named = config_lib.eval_protocol(_with(config, inner_lr=lrs[0]))  # As before: lrs[0].
  stem = tuned_stem(workdir, step, named, lrs, val[0].protocol)
  atomic.write_npz(stem + ".npz", eval_steps=np.asarray(ks), **values)
  atomic.write_text(stem + ".jsonl", "".join(json.dumps(r) + "\n" for r in rows))
  edge = [int(k) for i, k in enumerate(ks)
          if k > 0 and pick[i] in (0, len(lrs) - 1) and len(lrs) > 1]
  logging.info("tuned inner lr per k: %s",
               {int(k): lrs[pick[i]] for i, k in enumerate(ks) if k > 0})
  if edge:
    logging.warning("at k in %s the picked rate is at the edge of the candidates; the "
                    "best rate may lie outside them", edge)
  return rows
