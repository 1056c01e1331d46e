r"""The compute-scaling sweep: trains and evaluates its points, then fits and reports.

  python -m launch.compute_scaling --workdir=/tmp/compute_scaling       # sinusoid
  python -m launch.compute_scaling --config=experiments/compute_scaling.py:smoke \
      --workdir=/tmp/cs_smoke
  ... --mode=report   # only regenerate rows, fits, plots and report from finished points

The config (``experiments/compute_scaling.py``, the default) says what is swept; see its
docstring for the variants. Re-running the command resumes: finished points are
skipped, an interrupted one resumes from its checkpoints.
"""

import datetime
import os
import subprocess
import sys
import time

from absl import app
from absl import flags
from absl import logging
import jax
import ml_collections
from ml_collections import config_flags

from launch import cli
from metalearn.errors import MetalearnError
from metalearn.run import provenance
from metalearn.scaling import headline
from metalearn.scaling import report
from metalearn.scaling import sweep

_CONFIG = config_flags.DEFINE_config_file(
    "config", os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                           "experiments", "compute_scaling.py"),
    "Sweep config (file.py:variant).", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Where points, rows and plots go.")
_MODE = flags.DEFINE_enum("mode", "sweep", ["sweep", "report"],
                          "sweep: train/evaluate missing points, then report; "
                          "report: only regenerate the outputs.")
_CACHE = flags.DEFINE_string(
    "compilation_cache", "default", "JAX's persistent compilation cache: 'default' "
    "(<workdir>/jax_cache), a directory, or 'off'. The sweep's points share programs "
    "(seeds, checkpoints along a run), so a cache hit skips their XLA compilation; it "
    "does not change what is computed.")
flags.mark_flags_as_required(["workdir"])


def describe(c: ml_collections.ConfigDict) -> list[str]:
  """What was run, read from the final config (after any --config.* overrides)."""
  r, s = c.run, c.sweep
  algo = r.algorithm + (" (first order)" if r.algorithm == "fomaml"
                        else " (second order)" if r.algorithm == "maml" else "")
  task = ("sinusoid regression" if r.task == "sinusoid" else
          f"Gaussian-mixture classification (d = {r.mixture.dim}), {r.ways}-way "
          f"{r.shots}-shot" if r.task == "mixture" else
          f"Bayesian linear regression (d = {r.linreg.dim}), {r.shots} shots"
          if r.task == "linreg" else
          f"{r.data.name} {r.ways}-way {r.shots}-shot")
  axes = [f"K_train in {tuple(s.k_train)}"]
  names = dict(shots="shots (train and test)", train_shots="meta-training shots "
               "(evaluated at the base shots)", width="model width",
               test_shots="test-time shots (base model, not retrained)",
               steps="meta-training steps (checkpoints of the base run)")
  for key in ("shots", "train_shots", "width", "test_shots", "steps"):
    if s.get(key):
      axes.append(f"{names[key]} in {tuple(s[key])}")
  if s.tasks_key:
    axes.append(f"{s.tasks_key} in {tuple(s.tasks)} (0 = all / infinite)")
  if s.get("steps_for"):
    axes.append(f"the runs of {', '.join(s.steps_for)} also scored at the steps above")
  return [
      f"Task: {task}; model {r.model.name}; algorithm {algo}; inner lr {r.inner.lr}; "
      f"meta-batch {r.meta_batch}; outer {r.outer.optimizer} {r.outer.lr}; "
      f"{r.num_steps} meta-steps per setting.",
      f"Base point: K_train = {r.inner.steps}, {r.shots} shots"
      + (f", {s.tasks_key} = {sweep.base_values(c)['tasks']}." if s.tasks_key else "."),
      "Axes (each varied alone): " + "; ".join(axes) + ".",
      f"Evaluation: split '{r.eval.split}', {r.eval.queries or r.queries} queries "
      f"{'per class' if r.task != 'sinusoid' else 'per task'}, inner lr "
      f"{r.eval.inner_lr or r.inner.lr}, test-time k in {tuple(r.eval.eval_steps)} "
      f"from one pass; {s.base_episodes} episodes at the base point "
      f"(seeds {tuple(s.base_seeds)}), {s.episodes} elsewhere (seeds {tuple(s.seeds)}).",
      f"Fits: {c.analysis.n_boot} bootstrap replicates; a curve is fitted only on at "
      "least 6 points over at least one decade of compute; extrapolation is tested by "
      "holding out the top 1, 2 and 3 points; total compute M + N_test·a at N_test in "
      f"{tuple(c.analysis.n_test)}.",
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


def _table(entries) -> dict:
  """``((metric, key, value), ...)`` -> ``{metric: {key: value}}`` (key: shots or k)."""
  out: dict = {}
  for metric, shots, value in entries:
    out.setdefault(metric, {})[int(shots)] = float(value)
  return out


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  cli.quiet_libraries()
  config, workdir = _CONFIG.value, _WORKDIR.value
  os.makedirs(workdir, exist_ok=True)
  if _CACHE.value != "off":
    jax.config.update("jax_compilation_cache_dir", os.path.join(workdir, "jax_cache")
                      if _CACHE.value == "default" else _CACHE.value)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
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
    fits = report.write_outputs(
        workdir, config, metrics=tuple(config.analysis.metrics),
        analysis=dict(n_boot=config.analysis.n_boot,
                      n_test=tuple(config.analysis.n_test), seed=config.analysis.seed,
                      failure_mse=config.analysis.failure_mse,
                      known_floor={m: (v, why) for m, v, why in
                                   config.analysis.known_floor},
                      known_floor_by_shots=_table(
                          config.analysis.get("known_floor_by_shots") or ()),
                      predicted_curve=_table(
                          config.analysis.get("predicted_curve") or ())),
        context=dict(title=config.title, protocol=describe(config),
                     provenance=_provenance(info),
                     missing=missing))
  except (MetalearnError, ValueError) as e:
    cli.fail(str(e))
  logging.info("fits, plots and report in %.0fs: %s", time.time() - t0,
               os.path.join(workdir, "report.md"))
  print(f"\n{config.title}\n" + "\n".join(
      f"- {s}" for s in headline.headline(fits)) + f"\n(every number and its "
      f"provenance: {os.path.join(workdir, 'report.md')})", flush=True)


if __name__ == "__main__":
  sys.exit(app.run(main, flags_parser=cli.parse_flags))
