r"""Trains and/or evaluates a meta-learner from a config file.

  python -m launch.main --config=experiments/sinusoid.py --workdir=/tmp/sinusoid
  python -m launch.main --config=experiments/omniglot.py:5way1shot,smoke \
      --config.data.path=../shared/data/omniglot --workdir=/tmp/omni
  python -m launch.main --config=... --workdir=... --mode=evaluate
  python -m launch.main --config=... --workdir=... --mode=tune_inner_lr \
      --inner_lrs=0.003,0.01,0.03,0.1   # test-time rate per k, chosen on validation

Re-running the same command resumes from the latest checkpoint in the workdir.
"""

import time

from absl import app
from absl import flags
from absl import logging
import jax
from ml_collections import config_flags

from launch import cli
from metalearn import config as config_lib
from metalearn.errors import MetalearnError
from metalearn.run import checkpoints
from metalearn.run import loop
from metalearn.run import provenance
from metalearn.run import scoring
from metalearn.run import tuning
from metalearn.run import workdir as workdir_lib

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file (file.py:args).",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Checkpoints, metrics and results.")
_MODE = flags.DEFINE_enum("mode", "train_and_evaluate",
                          ["train", "evaluate", "train_and_evaluate", "tune_inner_lr"],
                          "What to run.")
_INNER_LRS = flags.DEFINE_list("inner_lrs", [], "tune_inner_lr: candidate test-time inner "
                               "learning rates (metalearn.run.tuning).")
_VAL_EPISODES = flags.DEFINE_integer("val_episodes", None, "tune_inner_lr: validation "
                                     "episodes (default: config.eval.episodes).")
_STEP = flags.DEFINE_integer("checkpoint_step", None,
                             "Checkpoint to evaluate (default: latest).")
_SKIP_EXISTING = flags.DEFINE_bool(
    "skip_existing", False, "evaluate: do nothing when this checkpoint's evaluation "
    "under this protocol is already written (scripts that resume).")
_MULTIHOST = flags.DEFINE_bool("multihost", False,
                               "Call jax.distributed.initialize() (TPU pods, SLURM).")
flags.mark_flags_as_required(["config", "workdir"])


def _inner_lrs() -> list[float]:
  try:
    lrs = [float(x) for x in _INNER_LRS.value]
  except ValueError:
    cli.fail(f"--inner_lrs={','.join(_INNER_LRS.value)}: not a list of numbers")
  if not lrs or min(lrs) <= 0:
    cli.fail(f"--inner_lrs={','.join(_INNER_LRS.value)}: give one or more rates > 0")
  return lrs


def _evaluate(config, workdir: str) -> None:
  """``--mode=evaluate``, skipped under ``--skip_existing`` when already written."""
  if _SKIP_EXISTING.value:
    step = _STEP.value
    if step is None:
      with checkpoints.manager(workdir) as mngr:
        step = mngr.latest_step()
    found = workdir_lib.find_evaluation(workdir, step, config_lib.eval_protocol(config))
    if found is not None:
      logging.info("evaluation exists, skipped: %s.jsonl", found.stem)
      return
  scoring.evaluate(config, workdir, step=_STEP.value)


def main(argv):
  cli.quiet_libraries()
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  if _MULTIHOST.value:
    jax.distributed.initialize()
  logging.info("process %d/%d, local devices %s", jax.process_index(),
               jax.process_count(), jax.local_devices())
  start = time.time()
  try:
    if _MODE.value in ("train", "train_and_evaluate"):
      state = loop.train(_CONFIG.value, _WORKDIR.value)
    if _MODE.value == "evaluate":
      _evaluate(_CONFIG.value, _WORKDIR.value)
    elif _MODE.value == "tune_inner_lr":
      _, step = scoring.restore_state(_CONFIG.value, _WORKDIR.value, _STEP.value)
      tuning.tune(_CONFIG.value, _WORKDIR.value, _inner_lrs(), step=step,
                  val_episodes=_VAL_EPISODES.value)
    elif _MODE.value == "train_and_evaluate":
      scoring.evaluate(_CONFIG.value, _WORKDIR.value, step=int(state.step), state=state)
  except MetalearnError as e:
    cli.fail(str(e))
  if jax.process_index() == 0:
    provenance.record_run(_WORKDIR.value, time.time() - start, {"mode": _MODE.value})


if __name__ == "__main__":
  app.run(main, flags_parser=cli.parse_flags)
