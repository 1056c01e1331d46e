"""Peak memory and time per meta-step against the number of inner steps K.

Usage (long on a 2-core CPU; run in the background)::

  nohup python -m benchmarks.memory_vs_steps --meta_batch=8 \\
      --results_dir=benchmarks/results > /tmp/bench_work/memory.log 2>&1 &

For K in ``--Ks`` and each of the configurations below, ``benchmarks.meta_step`` runs
in its own subprocess (peak RSS is per process), and its JSON line is collected:

- ``maml``: second-order MAML, the inner steps' activations stored for the backward;
- ``maml_remat``: the same with ``jax.checkpoint`` on each inner step;
- ``fomaml``: first-order MAML (no differentiation through the inner loop);
- ``reptile``: Reptile with the same plain-SGD inner loop.

Writes ``memory_vs_steps.json`` (all rows), ``memory_vs_steps.md`` (a table) and
``memory_vs_steps.png`` (peak RSS and seconds per step against K) to
``--results_dir``. The meta-batch is a flag because K = 100 second-order steps at
meta-batch 32 take minutes per step here; the table says which one was used. A row
whose subprocess fails or exceeds ``--timeout`` is recorded with its error.
"""

import json
import os
import subprocess
import sys

from absl import app
from absl import flags

FLAGS = flags.FLAGS
flags.DEFINE_list("Ks", ["1", "5", "10", "20", "50", "100"], "Inner step counts.")
flags.DEFINE_list("configs", ["maml", "maml_remat", "fomaml", "reptile"],
                  "Configurations to run.")
flags.DEFINE_integer("meta_batch", 8, "Tasks per meta-step.")
flags.DEFINE_integer("steps", 5, "Timed meta-steps per configuration.")
flags.DEFINE_integer("timeout", 1800, "Seconds allowed per subprocess.")
flags.DEFINE_string("results_dir", "benchmarks/results", "Where outputs go.")
flags.DEFINE_string("extra", "", "Extra flags for benchmarks.meta_step, space-separated.")

CONFIGS = {
    "maml": ["--algorithm=maml"],
    "maml_remat": ["--algorithm=maml", "--remat"],
    "fomaml": ["--algorithm=fomaml"],
    "reptile": ["--algorithm=reptile"],
}


def run_one(config: str, k: int) -> dict:
  """One configuration at one K in a fresh process; its JSON row (or the error)."""
  cmd = [sys.executable, "-m", "benchmarks.meta_step", *CONFIGS[config], f"--K={k}",
         f"--meta_batch={FLAGS.meta_batch}", f"--steps={FLAGS.steps}", "--warmup=1",
         "--nocount_flops", *FLAGS.extra.split()]
  try:
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=FLAGS.timeout)
  except subprocess.TimeoutExpired:
    return {"config": config, "K": k, "error": f"timeout after {FLAGS.timeout} s"}
  lines = [l for l in out.stdout.splitlines() if l.startswith("{")]
  if out.returncode or not lines:
    return {"config": config, "K": k, "error": out.stderr.strip().splitlines()[-1:]}
  return {"config": config, "K": k, **json.loads(lines[-1])}


def write_table(rows: list[dict], path: str) -> None:
  """Markdown: peak RSS (GB) and seconds per meta-step, one row per K."""
  ks = sorted({r["K"] for r in rows})
  configs = [c for c in CONFIGS if any(r["config"] == c for r in rows)]
  cell = {(r["config"], r["K"]): r for r in rows}

  def fmt(r, key, scale, digits):
    if r is None:
      return "–"
    if "error" in r:
      return "failed"
    return f"{r[key] / scale:.{digits}f}"

  head = ("| K | " + " | ".join(f"{c} peak RSS GB" for c in configs) + " | " +
          " | ".join(f"{c} s/step" for c in configs) + " | " +
          " | ".join(f"{c} compile s" for c in configs) + " |")
  lines = [head, "|" + " --- |" * (1 + 3 * len(configs))]
  for k in ks:
    lines.append(
        f"| {k} | " +
        " | ".join(fmt(cell.get((c, k)), "peak_rss_bytes", 1e9, 2) for c in configs) +
        " | " + " | ".join(fmt(cell.get((c, k)), "median_s", 1, 2) for c in configs) +
        " | " + " | ".join(fmt(cell.get((c, k)), "compile_s", 1, 1) for c in configs) +
        " |")
  loads = [r["loadavg_before"] for r in rows if "loadavg_before" in r]
  lines.append("")
  lines.append(f"meta-batch {FLAGS.meta_batch}, {FLAGS.steps} timed steps (median); "
               f"1-min load average before each run: {min(loads, default=0):.1f}–"
               f"{max(loads, default=0):.1f}.")
  with open(path, "w") as f:
    f.write("\n".join(lines) + "\n")


def plot(rows: list[dict], path: str) -> None:
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, (ax_m, ax_t) = plt.subplots(1, 2, figsize=(10, 4))
  for config in CONFIGS:
    pts = sorted((r["K"], r) for r in rows if r["config"] == config and "error" not in r)
    if not pts:
      continue
    ks = [k for k, _ in pts]
    ax_m.plot(ks, [r["peak_rss_bytes"] / 1e9 for _, r in pts], "o-", label=config)
    ax_t.plot(ks, [r["median_s"] for _, r in pts], "o-", label=config)
  for ax, label in ((ax_m, "peak RSS (GB)"), (ax_t, "seconds per meta-step")):
    ax.set_xscale("log")
    ax.set_xlabel("inner steps K")
    ax.set_ylabel(label)
    ax.grid(True, alpha=0.3)
  ax_t.set_yscale("log")
  ax_m.legend()
  fig.suptitle(f"Omniglot 5-way 1-shot, meta-batch {FLAGS.meta_batch}, XLA:CPU")
  fig.tight_layout()
  fig.savefig(path, dpi=100)


def main(argv):
  del argv
  os.makedirs(FLAGS.results_dir, exist_ok=True)
  json_path = os.path.join(FLAGS.results_dir, "memory_vs_steps.json")
  rows = []
  for k in [int(k) for k in FLAGS.Ks]:
    for config in FLAGS.configs:
      row = run_one(config, k)
      rows.append(row)
      print(json.dumps({key: row.get(key) for key in (
          "config", "K", "peak_rss_bytes", "median_s", "compile_s", "error")}),
            flush=True)
      with open(json_path, "w") as f:  # Rewritten after every row: partial results.
        json.dump(rows, f, indent=1)
      write_table(rows, os.path.join(FLAGS.results_dir, "memory_vs_steps.md"))
  plot(rows, os.path.join(FLAGS.results_dir, "memory_vs_steps.png"))


if __name__ == "__main__":
  app.run(main)
