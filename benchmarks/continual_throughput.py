"""Continual meta-training: trajectories/s and compiled memory against trajectory length.

Usage (timing: run on a quiet machine)::

  python -m benchmarks.continual_throughput \
      --config=experiments/continual_omniglot.py:anml,cpu --lengths=5,10,20,40,80 \
      --remats=none,step,segments --results_dir=benchmarks/results
  python -m benchmarks.continual_throughput --notime ...   # memory only: compiles, never runs
  python -m benchmarks.continual_throughput --smoke        # seconds: tiny nets, T = 2, 4

For each trajectory length T (one class, T examples, one online SGD step each:
``config.stream.traj_per_class``; beyond 20 examples, ⌈T/20⌉ classes; for sine waves,
``config.sine.steps_per_function`` steps per wave) and each rematerialisation of the
trajectory's scan (``oml.py``: none, every step, segments of about √T steps), one
trajectory's meta-gradient (``build.Setup.objective``) is lowered and compiled, and
XLA's ``memory_analysis()`` of the compiled program recorded: ``temp_size_in_bytes``
(the buffers the program allocates: the saved carries and activations of the backward
pass; what remat bounds), ``argument_size_in_bytes``, ``output_size_in_bytes``,
``peak_memory_in_bytes``. With timing, the compiled program then runs ``--warmup`` times
and ``--steps`` timed times (``block_until_ready`` after each); ``trajectories_per_s``
is 1 / the median. Each configuration's FLOPs are XLA's count of the canonical program
(``costs.meta_step_flops``: no remat, the scan unrolled).

Writes ``continual_throughput.json`` (all rows) and ``continual_throughput.md`` (a table)
to ``--results_dir``.
"""

import json
import os
import statistics
import time

from absl import app
from absl import flags
import jax
from ml_collections import config_flags

from metalearn.continual import build as build_lib
from metalearn.continual import costs
from metalearn.run import provenance

_CONFIG = config_flags.DEFINE_config_file(
    "config", "experiments/continual_omniglot.py:anml,cpu", "Config (file.py:args).",
    lock_config=False)
_LENGTHS = flags.DEFINE_list("lengths", ["5", "10", "20", "40"], "Trajectory lengths T.")
_REMATS = flags.DEFINE_list("remats", ["none", "step", "segments"], "Rematerialisations.")
_STEPS = flags.DEFINE_integer("steps", 10, "Timed trajectories per configuration.")
_WARMUP = flags.DEFINE_integer("warmup", 2, "Untimed runs first.")
_TIME = flags.DEFINE_bool("time", True, "Time the programs (else memory only).")
_FLOPS = flags.DEFINE_bool("count_flops", True, "Count each program's FLOPs.")
_SMOKE = flags.DEFINE_bool("smoke", False, "Tiny nets, T = 2 and 4: seconds.")
_RESULTS = flags.DEFINE_string("results_dir", "benchmarks/results", "Where outputs go.")


def _config(length: int, remat: str):
  c = _CONFIG.value
  if _SMOKE.value:
    from experiments import continual_omniglot  # pylint: disable=g-import-not-at-top
    c = continual_omniglot.get_config("anml,smoke")
  c = c.copy_and_resolve_references()
  if c.task == "omniglot":  # One class, or as few as hold T of 20 examples each.
    c.stream.traj_classes = -(-length // 20)
    c.stream.traj_per_class = length // c.stream.traj_classes
  else:
    c.sine.steps_per_function = max(1, length // c.sine.functions)
  c.train.remat = remat
  c.train.remat_segment = 0
  return c


def measure(length: int, remat: str) -> dict:
  """One configuration: compile, memory, FLOPs and (if asked) trajectories/s."""
  c = _config(length, remat)
  setup = build_lib.build(c)
  data = setup.family.load("train")
  theta = setup.init_state().theta
  key = jax.random.key(0)
  traj = jax.jit(setup.family.trajectory)(key, data)
  steps = int(traj.y.shape[0])
  fn = jax.jit(setup.objective)
  t0 = time.perf_counter()
  compiled = fn.lower(theta, traj, key).compile()
  row = dict(algorithm=c.algorithm, model=c.model.name, T=steps, remat=remat,
             compile_s=round(time.perf_counter() - t0, 2))
  mem = compiled.memory_analysis()
  for field in ("temp_size_in_bytes", "argument_size_in_bytes", "output_size_in_bytes",
                "peak_memory_in_bytes"):
    row[field] = int(getattr(mem, field, -1))
  if _FLOPS.value and remat == "none":
    row["flops"] = costs.meta_step_flops(setup.net, theta, traj, setup.online)
  if _TIME.value:
    for _ in range(_WARMUP.value):
      jax.block_until_ready(compiled(theta, traj, key))
    times = []
    for _ in range(_STEPS.value):
      t = time.perf_counter()
      jax.block_until_ready(compiled(theta, traj, key))
      times.append(time.perf_counter() - t)
    row["median_s"] = statistics.median(times)
    row["trajectories_per_s"] = 1.0 / row["median_s"]
  row["loadavg"] = os.getloadavg()[0]
  return row


def table(rows: list[dict]) -> str:
  lines = ["| T | remat | temp MB | peak MB | compile s | trajectories/s | GFLOP |",
           "| --- | --- | --- | --- | --- | --- | --- |"]
  for r in rows:
    rate = f"{r['trajectories_per_s']:.3g}" if "trajectories_per_s" in r else "–"
    gflop = f"{r['flops'] / 1e9:.3g}" if "flops" in r else "–"
    lines.append(f"| {r['T']} | {r['remat']} | {r['temp_size_in_bytes'] / 1e6:.1f} | "
                 f"{r['peak_memory_in_bytes'] / 1e6:.1f} | {r['compile_s']} | {rate} | "
                 f"{gflop} |")
  machine = provenance.machine()
  lines += ["", f"{rows[0]['algorithm']} ({rows[0]['model']}) on {machine['cpu']}, "
            f"{machine['cpus_usable']} usable cores, jax {machine['jax']}; "
            f"1-minute load {min(r['loadavg'] for r in rows):.1f}–"
            f"{max(r['loadavg'] for r in rows):.1f}."]
  return "\n".join(lines) + "\n"


def main(argv):
  del argv
  lengths = [2, 4] if _SMOKE.value else [int(t) for t in _LENGTHS.value]
  os.makedirs(_RESULTS.value, exist_ok=True)
  rows = []
  name = "continual_throughput_smoke" if _SMOKE.value else "continual_throughput"
  for length in lengths:
    for remat in _REMATS.value:
      rows.append(measure(length, remat))
      print(json.dumps(rows[-1]), flush=True)
      with open(os.path.join(_RESULTS.value, name + ".json"), "w") as f:
        json.dump(rows, f, indent=1)  # Rewritten after every row: partial results.
      with open(os.path.join(_RESULTS.value, name + ".md"), "w") as f:
        f.write(table(rows))


if __name__ == "__main__":
  app.run(main)
