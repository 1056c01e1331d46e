"""Scoring a checkpoint on meta-test episodes: ``evaluate(config, workdir)``.

Writes one evaluation (``workdir.write_evaluation``): per-episode values and one JSON
row per (metric, test-time step), every row carrying its run's settings, its protocol
and its FLOPs per episode: ``adaptation_flops``, the k inner steps on the support set
(0 at k = 0), and ``query_flops``, scoring the query set once (``metalearn.flops``). It
reads no flags.
"""

import time
from typing import Optional

from absl import logging
import jax
import ml_collections

from metalearn import builder as build_lib
from metalearn import config as config_lib
from metalearn import evaluation
from metalearn import flops as flops_lib
from metalearn import outer
from metalearn.errors import CheckpointError
from metalearn.run import checkpoints
from metalearn.run import workdir as workdir_lib


def restore_state(config: ml_collections.ConfigDict, workdir: str,
                  step: Optional[int] = None, setup: Optional[build_lib.Setup] = None
                  ) -> tuple[outer.MetaState, int]:
  """The meta-training state of checkpoint ``step`` (default latest) in ``workdir``."""
  setup = setup or build_lib.build(config)
  if not workdir_lib.has_checkpoints(workdir):
    raise CheckpointError(f"--workdir={workdir}: no checkpoint to evaluate")
  with checkpoints.manager(workdir) as mngr:
    state, restored = checkpoints.restore_latest(mngr, setup.abstract_state(), step)
  if restored is None:
    raise CheckpointError(f"--workdir={workdir}: no checkpoint to evaluate")
  return state, restored


def evaluate(config: ml_collections.ConfigDict, workdir: str, *,
             step: Optional[int] = None, state: Optional[outer.MetaState] = None
             ) -> list[dict]:
  """Scores a checkpoint on ``config.eval.split`` and writes its rows.

  Args:
    config: the run's config.
    workdir: the run's workdir.
    step: the checkpoint to score (default: the latest), or the step of ``state``.
    state: a meta-training state to score instead of restoring a checkpoint.

  Returns:
    The rows.
  """
  setup = build_lib.build(config)
  data = setup.eval_tasks.load(config.eval.split)
  if state is None:
    state, step = restore_state(config, workdir, step, setup)
  protocol = config_lib.eval_protocol(config)
  t0 = time.time()
  result = setup.evaluate(
      state.theta, data, eval_steps=protocol.steps, episodes=protocol.episodes,
      batch=config.eval.batch, key=jax.random.key(protocol.seed),
      inner_state=state.inner_state,
      log_fn=lambda d, n: logging.info("evaluated %d/%d episodes", d, n))
  episode = setup.abstract_episodes(None, evaluation=True)
  adapt_flops = flops_lib.adaptation_flops(setup.eval_learner, setup.eval_inner, episode,
                                           list(protocol.steps), setup.algorithm)
  query_flops = flops_lib.query_flops(setup.eval_learner, setup.eval_inner, episode,
                                      setup.algorithm)
  settings = config_lib.row_settings(config)
  settings.update(
      eval_split=protocol.split, eval_ways=protocol.ways, eval_shots=protocol.shots,
      eval_queries=protocol.queries, eval_inner_lr=protocol.inner_lr,
      eval_bn_mode=protocol.bn_mode, eval_seed=protocol.seed, eval_batch=config.eval.batch,
      eval_rotate=protocol.rotate, eval_within_alphabet=protocol.within_alphabet,
      checkpoint_step=None if step is None else int(step),
      eval_seconds=round(time.time() - t0, 2))
  rows = [dict(r, query_flops=query_flops)
          for r in evaluation.rows(result, settings=settings, flops=adapt_flops)]
  workdir_lib.write_evaluation(workdir, step, protocol, rows, result.values)
  for r in rows:
    if r["k"] in (0, result.eval_steps[-1]):
      logging.info("%s k=%d: %.4f ± %.4f (%d episodes)", r["metric"], r["k"], r["mean"],
                   r["ci95"], r["episodes"])
  return rows
