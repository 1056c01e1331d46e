r"""Continual meta-learning (OML, ANML and baselines): train, evaluate, compute.

  python -m launch.continual --config=experiments/continual_omniglot.py:anml,smoke \
      --workdir=/tmp/anml_smoke
  python -m launch.continual --config=... --workdir=... --mode=evaluate
  python -m launch.continual --config=... --workdir=... --mode=compute
  python -m launch.continual --config=... --workdir=... --mode=compute_report

``train`` resumes from the latest checkpoint in the workdir (rerun with a larger
``--config.num_steps`` to continue); ``evaluate`` runs ANML's meta-test protocol on a
checkpoint (``scratch``: on the random initialisation); ``compute`` the compute-on-a-
fixed-stream grid (``metalearn.continual.compute``), then its report
(``compute_report.md``, ``compute_fits.json``, ``plots/compute.png``;
``metalearn.continual.compute_report``); ``compute_report`` rewrites that report from
the rows a ``compute`` run wrote, without rerunning the grid.
"""

import time

from absl import app
from absl import flags
from absl import logging
import jax
from ml_collections import config_flags

from launch import cli
from metalearn.continual import compute
from metalearn.continual import compute_report
from metalearn.continual import evaluate
from metalearn.continual import train
from metalearn.errors import MetalearnError
from metalearn.run import provenance

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file (file.py:args).",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Checkpoints, metrics and results.")
_MODE = flags.DEFINE_enum("mode", "train", ["train", "evaluate", "train_and_evaluate",
                                            "compute", "compute_report"],
                          "What to run.")
_STEP = flags.DEFINE_integer("checkpoint_step", None,
                             "Checkpoint to evaluate (default: latest).")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  cli.quiet_libraries()
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  logging.info("devices: %s", jax.devices())
  start = time.time()
  config, workdir = _CONFIG.value, _WORKDIR.value
  try:
    if _MODE.value in ("train", "train_and_evaluate"):
      train.train(config, workdir)
    if _MODE.value in ("evaluate", "train_and_evaluate"):
      evaluate.evaluate(config, workdir, step=_STEP.value)
    if _MODE.value == "compute":
      compute.run(config, workdir, step=_STEP.value)
  except MetalearnError as e:
    cli.fail(str(e))
  if jax.process_index() == 0:
    if _MODE.value == "compute_report":  # Before run.json: a failed one leaves no entry.
      _report(config, workdir)
    provenance.record_run(workdir, time.time() - start, {"mode": _MODE.value})
    if _MODE.value == "compute":  # After run.json: the report gives its provenance.
      _report(config, workdir)


def _report(config, workdir: str) -> None:
  try:
    res = compute_report.write(config, workdir, step=_STEP.value)
  except MetalearnError as e:
    cli.fail(str(e))
  print(compute_report.summary(res) + f"\n(report: {workdir}/{compute_report.REPORT})",
        flush=True)


if __name__ == "__main__":
  app.run(main, flags_parser=cli.parse_flags)
