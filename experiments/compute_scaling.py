r"""Compute scaling: few-shot error against inner-loop compute, and compute against data.

  python -m experiments.compute_scaling --workdir=/tmp/compute_scaling       # sinusoid
  python -m experiments.compute_scaling --config=experiments/compute_scaling.py:omniglot \
      --workdir=/work/runs/cs_omniglot
  python -m experiments.compute_scaling --config=experiments/compute_scaling.py:smoke \
      --workdir=/tmp/cs_smoke
  ... --mode=report   # only regenerate rows, fits, plots and report from finished points

Variants (comma-separated): ``sinusoid`` (default: MAML, no download; 6m22s measured
on the 2-core CPU at load average 3.4-4.6), ``omniglot`` (5-way 1-shot, first-order
MAML; 60 min at load 4-9), ``smoke`` (CI: 31 s at load 3.4), ``steps=N`` (meta-steps
per setting). Any key can be overridden, e.g.
``--config.run.num_steps=500``.

One trained model per setting on a star around the base point: train-time inner steps
K_train, shots per class and number of meta-training tasks (sinusoid task pool /
Omniglot class fraction) each varied alone. Each model is evaluated once over test-time
inner steps k = 0..64. Every row carries adaptation and meta-training FLOPs from XLA's
cost analysis. Re-running the command resumes: finished points are skipped, an
interrupted one resumes from its checkpoints. Outputs in the workdir: rows.csv,
rows.json, fits.json, plots/*.png, report.md, run.json.
"""

import datetime
import logging as std_logging
import os
import subprocess
import sys
import time

from absl import app
from absl import flags
from absl import logging
import ml_collections
from ml_collections import config_flags

from experiments import common
from experiments import omniglot
from experiments import sinusoid
from metalearn import provenance
from metalearn import scaling_report
from metalearn import sweep
from metalearn.errors import MetalearnError

# Half-octave test-time steps: 12 points k >= 1 (enough for the 5-parameter M4 with
# AICc), all from one evaluation pass. Omniglot uses octaves: its evaluation pass is
# the sweep's second-largest cost and scales with the number of scored steps.
HALF_OCTAVES = (0, 1, 2, 3, 4, 6, 8, 11, 16, 23, 32, 45, 64)
OCTAVES = (0, 1, 2, 4, 8, 16, 32, 64)


def _sinusoid(args: dict) -> ml_collections.ConfigDict:
  run = sinusoid.get_config("")
  run.num_steps = int(args.get("steps", 8000))
  run.log_every = 1000
  run.checkpoint_every = 2000
  run.val.every = 0
  run.eval.steps = 64
  run.eval.eval_steps = HALF_OCTAVES
  run.eval.batch = 600
  s = ml_collections.ConfigDict(dict(
      k_train=(1, 2, 4, 8, 16), shots=(5, 10, 20, 40), tasks=(16, 64, 256, 0),
      tasks_key="sinusoid_pool", order=("tasks", "shots", "k_train"),
      seeds=(0,), base_seeds=(0, 1, 2), base_episodes=600, episodes=600))
  notes = [
      "The paper trains 70,000 meta-steps; each setting here trains fewer so that the "
      "whole sweep finishes in under 10 minutes on a shared 2-core CPU.",
      "Error = query MSE, so the fits on error and on query loss coincide.",
  ]
  return _sweep(run, s, metrics=("loss",), notes=notes,
                title="Compute scaling: sinusoid regression (MAML)")


def _omniglot(args: dict) -> ml_collections.ConfigDict:
  run = omniglot.get_config("5way1shot,fomaml")
  run.meta_batch = 16
  run.num_steps = int(args.get("steps", 1000))
  run.log_every = 100
  run.checkpoint_every = 250
  run.val.every = 0
  run.eval.steps = 64
  run.eval.eval_steps = OCTAVES
  run.eval.batch = 50
  s = ml_collections.ConfigDict(dict(
      k_train=(1, 2, 4), shots=(1, 2, 4), tasks=(0.125, 0.25, 0.5, 0.0),
      tasks_key="data.train_class_fraction", order=("tasks", "k_train", "shots"),
      seeds=(0,), base_seeds=(0,), base_episodes=600, episodes=100))
  notes = [
      "Differs from the paper protocol (second-order MAML, meta-batch 32, 60,000 "
      "steps, K_train up to 16) to fit the whole sweep into about an hour on a shared "
      "2-core CPU: first-order MAML, meta-batch 16, 1,000 meta-steps, "
      "K_train in {1, 2, 4}. Accuracies are therefore below the published 98.7%, and "
      "the findings describe this short-training regime.",
      "Error = 1 − accuracy; loss = query cross-entropy. Meta-training classes are "
      "counted as characters before the ×4 rotations.",
  ]
  return _sweep(run, s, metrics=("error", "loss"), notes=notes,
                title="Compute scaling: Omniglot 5-way 1-shot (first-order MAML)")


def _sweep(run, sweep, *, metrics, notes, title) -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.run = run
  c.sweep = sweep
  c.analysis = ml_collections.ConfigDict(dict(
      metrics=metrics, n_boot=200, holdout_fraction=0.3, include_k0=False, seed=0))
  c.title = title
  c.notes = notes
  return c


def get_config(arg: str = "") -> ml_collections.ConfigDict:
  """The sweep config: ``run`` (the base run), ``sweep`` (axes) and ``analysis``."""
  args = common.parse_args(arg)
  c = _omniglot(args) if "omniglot" in args else _sinusoid(args)
  if "smoke" in args:
    r, s = c.run, c.sweep
    if r.task == "sinusoid":
      r.algorithm = "fomaml"  # Compiles faster; the wiring is the same.
      r.num_steps = int(args.get("steps", 400))
      r.eval.steps = 16
      r.eval.eval_steps = HALF_OCTAVES[:9]
      s.k_train, s.shots, s.tasks = (1, 2), (5, 10), (16, 0)
    else:
      common.shrink_for_smoke(r)
      r.eval.steps = 4
      r.eval.eval_steps = (0, 1, 2, 4)
      s.k_train, s.shots, s.tasks = (1, 2), (1, 2), (0.5, 0.0)
    r.log_every = r.checkpoint_every = max(r.num_steps // 2, 1)
    s.base_seeds = (0,)
    s.base_episodes = s.episodes = 40
    r.eval.batch = 40
    c.analysis.n_boot = 10
    c.notes = list(c.notes) + ["SMOKE variant: a wiring check, not a result."]
  return c


def describe(c: ml_collections.ConfigDict) -> list[str]:
  """What was run, read from the final config (after any --config.* overrides)."""
  r, s = c.run, c.sweep
  algo = r.algorithm + (" (first order)" if r.inner.first_order or r.algorithm == "fomaml"
                        else " (second order)" if r.algorithm == "maml" else "")
  task = ("sinusoid regression" if r.task == "sinusoid" else
          f"{r.data.name} {r.ways}-way {r.shots}-shot")
  return [
      f"Task: {task}; model {r.model.name}; algorithm {algo}; inner lr {r.inner.lr}; "
      f"meta-batch {r.meta_batch}; outer {r.outer.optimizer} {r.outer.lr}; "
      f"{r.num_steps} meta-steps per setting.",
      f"Base point: K_train = {r.inner.steps}, {r.shots} shots, "
      f"{s.tasks_key} = {sweep.base_values(c)['tasks']}.",
      f"Axes (each varied alone): K_train in {tuple(s.k_train)}; shots in "
      f"{tuple(s.shots)}; {s.tasks_key} in {tuple(s.tasks)} (0 = all / infinite).",
      f"Evaluation: split '{r.eval.split}', {r.eval.queries or r.queries} queries "
      f"{'per class' if r.task != 'sinusoid' else 'per task'}, inner lr "
      f"{r.eval.inner_lr or r.inner.lr}, test-time k in {tuple(r.eval.eval_steps)} "
      f"from one pass; {s.base_episodes} episodes at the base point "
      f"(seeds {tuple(s.base_seeds)}), {s.episodes} elsewhere (seeds {tuple(s.seeds)}).",
      f"Fits: {c.analysis.n_boot} bootstrap replicates; the top "
      f"{c.analysis.holdout_fraction:.0%} of the compute range held out for "
      "extrapolation.",
  ] + list(c.notes)


def _other_processes() -> str:
  """The busiest other processes (name and %CPU), to say what shared the machine."""
  try:
    out = subprocess.run(["ps", "-eo", "pid,pcpu,comm", "--sort=-pcpu"],
                         capture_output=True, text=True, timeout=10).stdout
  except (OSError, subprocess.SubprocessError):
    return "unknown"
  procs = [line.split(None, 2) for line in out.splitlines()[1:]]
  procs = [p for p in procs if len(p) == 3 and int(p[0]) != os.getpid()
           and float(p[1]) >= 5.0]
  return ", ".join(f"{p[2]} {p[1]}%" for p in procs[:5]) or "none above 5% CPU"


class _QuietLibraries:
  """Drops INFO lines from orbax's internals; its warnings and errors still show."""

  def filter(self, record):
    return record.levelno > std_logging.INFO or "/orbax/" not in record.pathname


def _loads(loads) -> str:
  return " ".join(f"{x:.2f}" for x in loads) if loads else "not recorded"


def _started(invocation: dict) -> str:
  end = datetime.datetime.fromisoformat(invocation["date"])
  return (end - datetime.timedelta(seconds=invocation["seconds"])).isoformat(
      timespec="seconds")


def _provenance(info: dict) -> dict:
  """What the report says about how the numbers were made, from run.json."""
  runs = [i for i in info["invocations"] if i.get("mode") == "sweep"] or (
      info["invocations"])
  last = runs[-1]
  m = last["machine"]
  return {
      "command": runs[0]["command"],
      "date": (f"started {_started(runs[0])}, finished {last['date']} (UTC)"),
      "machine": f"{m['cpu']}, {m['cpu_count']} CPUs, {m['backend']}, jax {m['jax']}",
      "wall time": (f"{sum(i['seconds'] for i in runs):.0f} s over {len(runs)} "
                    "invocation(s), training and evaluation (fits and plots after)"),
      "load average (1/5/15 min) at start; at end of the sweep": (
          f"{_loads(runs[0].get('load_average_at_start'))}; "
          f"{_loads(m['load_average'])} (2 cores: above 2 means other work shared "
          "them)"),
      "other busy processes at start (name, %CPU)": runs[0].get(
          "other_processes_at_start", "not recorded"),
  }


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  logging.get_absl_logger().addFilter(_QuietLibraries())
  config, workdir = _CONFIG.value, _WORKDIR.value
  os.makedirs(workdir, exist_ok=True)
  load_start, others = os.getloadavg(), _other_processes()
  start = time.time()
  try:
    if _MODE.value == "sweep":
      sweep.run(config, workdir)
    info = provenance.record_run(workdir, time.time() - start, dict(
        mode=_MODE.value, load_average_at_start=list(load_start),
        other_processes_at_start=others))
    done = {p.name for p in sweep.grid(config) if sweep.is_done(p, workdir)}
    missing = [p.name for p in sweep.grid(config) if p.name not in done]
    t0 = time.time()
    scaling_report.write_outputs(
        workdir, metrics=tuple(config.analysis.metrics),
        analysis=dict(n_boot=config.analysis.n_boot,
                      holdout_fraction=config.analysis.holdout_fraction,
                      include_k0=config.analysis.include_k0, seed=config.analysis.seed),
        context=dict(title=config.title, protocol=describe(config),
                     provenance=_provenance(info),
                     missing=missing))
  except (MetalearnError, ValueError) as e:
    print(f"error: {e}", file=sys.stderr, flush=True)
    sys.exit(2)
  logging.info("fits, plots and report in %.0fs: %s", time.time() - t0,
               os.path.join(workdir, "report.md"))


if __name__ == "__main__":
  # Flags only when run: config_flags loads this file again as the config module.
  _CONFIG = config_flags.DEFINE_config_file(
      "config", os.path.abspath(__file__), "Sweep config (file.py:variant).",
      lock_config=True)
  _WORKDIR = flags.DEFINE_string("workdir", None, "Where points, rows and plots go.")
  _MODE = flags.DEFINE_enum("mode", "sweep", ["sweep", "report"],
                            "sweep: train/evaluate missing points, then report; "
                            "report: only regenerate the outputs.")
  flags.mark_flags_as_required(["workdir"])
  sys.exit(app.run(main))
