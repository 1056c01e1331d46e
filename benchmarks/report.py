"""Renders benchmarks/results/*.jsonl into the tables of benchmarks/README.md.

Usage: ``python -m benchmarks.report`` (run by ``benchmarks/run_all.sh``). Only the
text between the GENERATED markers of the README is replaced; the rest is prose.
"""

import json
import os
import statistics

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")
README = os.path.join(HERE, "README.md")
BEGIN, END = "<!-- BEGIN GENERATED -->", "<!-- END GENERATED -->"


def emit(row: dict, out: str = "") -> None:
  """Prints ``row`` as one JSON line and, given ``out``, appends it there: the rows
  this module renders."""
  line = json.dumps(row)
  print(line, flush=True)
  if out:
    with open(out, "a") as f:
      f.write(line + "\n")


def _rows(name: str) -> list[dict]:
  path = os.path.join(RESULTS, name)
  if not os.path.exists(path):
    return []
  with open(path) as f:
    return [json.loads(line) for line in f if line.startswith("{")]


def _load(r: dict) -> str:
  return f"{r.get('loadavg_before', r['loadavg'][0]):.1f} / {r['loadavg'][0]:.1f}"


def _seconds(r: dict) -> str:
  """A row's median seconds per step with its range."""
  return f"{r['median_s']:.2f} ({r['min_s']:.2f}–{r['max_s']:.2f})"


def _fill_flops(rows: list[dict]) -> None:
  """Rows run with --nocount_flops take the count of the same maths (algorithm, K,
  first_order, sizes) from another row: the task batching does not change the flops."""
  def key(r):
    s = r["settings"]
    return tuple(s[k] for k in ("algorithm", "first_order", "K", "ways", "shots",
                                "queries", "meta_batch", "model", "dtype"))
  counted = {key(r): r["flops_per_step"] for r in rows
             if r["flops_per_step"] == r["flops_per_step"]}  # Not NaN.
  for r in rows:
    if r["flops_per_step"] != r["flops_per_step"] and key(r) in counted:
      r["flops_per_step"] = counted[key(r)]
      r["achieved_gflops"] = r["flops_per_step"] / r["median_s"] / 1e9


def meta_step_table(rows: list[dict]) -> list[str]:
  _fill_flops(rows)
  out = ["| algorithm | K | remat | tasks via | conv | s/step (min–max) | meta-steps/s | "
         "compile s (CPU s) | GFLOP/step | GFLOP/s | peak RSS GB | load before / after |",
         "|" + " --- |" * 12]
  for r in rows:
    s = r["settings"]
    alg = s["algorithm"] + (" (first_order)" if s["first_order"] else "")
    compile_s = f"{r['compile_s']:.1f}"
    if "compile_cpu_s" in r:
      compile_s += f" ({r['compile_cpu_s']:.1f})"
    out.append(
        f"| {alg} | {s['K']} | {'yes' if s['remat'] else 'no'} | {s['task_map']} | "
        f"{s['conv_impl']} | {_seconds(r)} | "
        f"{r['meta_steps_per_s']:.2f} | {compile_s} | "
        f"{r['flops_per_step'] / 1e9:.1f} | {r['achieved_gflops']:.1f} | "
        f"{r['peak_rss_bytes'] / 1e9:.2f} | {_load(r)} |")
  return out


def eval_table(rows: list[dict]) -> list[str]:
  out = ["| K (curve points) | episodes per call | episodes/s | s/call | compile s | "
         "MFLOP/episode | GFLOP/s | load before / after |", "|" + " --- |" * 8]
  for r in rows:
    s = r["settings"]
    out.append(f"| {s['K']} ({r['curve_points']}) | {s['batch']} | "
               f"{r['episodes_per_s']:.1f} | {r['median_s']:.2f} | {r['compile_s']:.1f} | "
               f"{r['flops_per_episode'] / 1e6:.0f} | {r['achieved_gflops']:.1f} | "
               f"{_load(r)} |")
  return out


def roofline_table(rows: list[dict]) -> list[str]:
  kernels = ["matmul_2048", "conv1_xla", "conv2_xla", "conv2_im2col_matmul",
             "conv2_batched_matmul"]
  out = ["| XLA_FLAGS | " + " | ".join(kernels) + " | load |",
         "|" + " --- |" * (len(kernels) + 2)]
  for r in rows:
    cells = [f"{r[k + '_gflops']:.1f} (best {r[k + '_best_gflops']:.1f})" for k in kernels]
    out.append(f"| {r['xla_flags'] or 'default'} | " + " | ".join(cells) +
               f" | {r['loadavg'][0]:.1f} |")
  return out


def compare_table(rows: list[dict]) -> list[str]:
  out = ["| algorithm | K | remat | queries | tasks via | lax.map batch | conv | "
         "XLA options | s/step (min–max) | speedup vs first of its group | compile s | "
         "load |", "|" + " --- |" * 12]
  for r in rows:
    s = r["settings"]
    out.append(f"| {s['algorithm']} | {s['K']} | {'yes' if s['remat'] else 'no'} | "
               f"{s['queries']} | {s['task_map']} | {s.get('map_batch', 1)} | "
               f"{s['conv_impl']} | {s.get('xla_options') or 'default'} | {_seconds(r)}"
               f" | {r['speedup']:.3f} | {r['compile_s']:.1f} | {r['loadavg'][0]:.1f} |")
  return out


def alternate_table(rows: list[dict]) -> list[str]:
  """Pairs of separate processes in turn (second order, then first order): each pair's
  ratio of median step times, then the median ratio over pairs."""
  pairs = list(zip(rows[0::2], rows[1::2]))
  for so, fo in pairs:
    if (so["settings"]["algorithm"], fo["settings"]["algorithm"]) != ("maml", "fomaml"):
      raise ValueError("alternate.jsonl: expected rows in turn maml, fomaml, ...")
  out = ["| pair | K | maml s/step (min–max) | fomaml s/step (min–max) | "
         "fomaml speedup | load before / after |", "|" + " --- |" * 6]
  ratios = []
  for i, (so, fo) in enumerate(pairs, 1):
    ratios.append(so["median_s"] / fo["median_s"])
    out.append(f"| {i} | {so['settings']['K']} | {_seconds(so)} | {_seconds(fo)} | "
               f"{ratios[-1]:.2f} | "
               f"{so.get('loadavg_before', so['loadavg'][0]):.1f} / {fo['loadavg'][0]:.1f} |")
  if ratios:
    out += ["", f"Median speedup over {len(ratios)} pairs: **{statistics.median(ratios):.2f}×** "
            f"(range {min(ratios):.2f}–{max(ratios):.2f})."]
  if len(rows) % 2:
    out += ["", f"Left out: the last row ({rows[-1]['settings']['algorithm']}, "
            f"{rows[-1]['date']}) has no partner; an interrupted run?"]
  return out


def pinned_table(rows: list[dict]) -> list[str]:
  """Interleaved comparisons of the Omniglot training workloads, one process pinned to
  each core as the training runs are."""
  out = ["| CPU | workload | K | remat | tasks via | conv | s/step (min–max) | "
         "speedup vs first of its group | compile s | date |", "|" + " --- |" * 10]
  for r in rows:
    s = r["settings"]
    out.append(f"| {r['cpu_model']}, {r['cpus_usable']} of {r['cpus']} cores | "
               f"{s['ways']}-way {s['shots']}-shot, {s['queries']} quer"
               f"{'y' if s['queries'] == 1 else 'ies'}/class, meta-batch {s['meta_batch']} | "
               f"{s['K']} | {'yes' if s['remat'] else 'no'} | {s['task_map']} | "
               f"{s['conv_impl']} | {_seconds(r)} | {r['speedup']:.3f} | "
               f"{r['compile_s']:.1f} | {r['date'][:16]} |")
  return out


def compile_table(rows: list[dict]) -> list[str]:
  out = ["| algorithm | K | remat | options | lowering s | lowering + compile s | "
         "compile CPU s | s/step (median of n) | date | load before / after |",
         "|" + " --- |" * 10]
  for r in rows:
    opts = "fast_compile" if r["fast_compile"] else "XLA defaults"
    out.append(f"| {r['algorithm']} | {r['K']} | {'yes' if r['remat'] else 'no'} | {opts} | "
               f"{r['lower_wall_s']:.1f} | **{r['compile_wall_s']:.1f}** | "
               f"{r['compile_cpu_s']:.1f} | {r['step_s_median']:.2f} (n = {r['steps']}) | "
               f"{r['date']} | {r['load_average_before']:.1f} / "
               f"{r['load_average'][0]:.1f} |")
  return out


def learners_table(rows: list[dict], memory: list[dict]) -> list[str]:
  """Every learner on the reference workload (``benchmarks/learners.sh``): meta-steps/s,
  the compiled step's temporary buffers and the process's peak RSS; then iMAML's and
  MAML's compiled memory against K."""
  out = ["| algorithm | K | meta-steps/s | s/step | compiled temp MB | peak RSS GB | "
         "compile s | date | load |", "|" + " --- |" * 9]
  for r in rows:
    out.append(f"| {r['algorithm']} | {r['k_train']} | {r['meta_steps_per_s']:.2f} | "
               f"{1 / r['meta_steps_per_s']:.2f} | {r['compiled_temp_bytes'] / 1e6:.1f} | "
               f"{r['peak_rss_bytes'] / 1e9:.2f} | {r['compile_s']:.1f} | "
               f"{r['date'][:16]} | {r['loadavg'][0]:.1f} |")
  if memory:
    out += ["", "| algorithm | K | compiled temp MB | of the same algorithm at its "
            "smallest K |", "| --- | --- | --- | --- |"]
    first: dict[str, float] = {}
    for m in memory:
      alg, mb = m["algorithm"], m["temp_bytes"] / 1e6
      first.setdefault(alg, mb)
      out.append(f"| {alg} | {m['K']} | {mb:.1f} | {mb / first[alg]:.2f}× |")
  return out


def versus_table(rows: list[dict]) -> list[str]:
  """Old and new code in turn per configuration (``benchmarks/versus.sh``): each one's
  median of its processes' median s/step, their spread, and the old/new ratio with the
  range of the per-pair ratios."""
  groups: dict[tuple, dict[str, list[dict]]] = {}
  for r in rows:
    s = r["settings"]
    key = (s["algorithm"] + (" (first_order)" if s["first_order"] else ""), s["K"])
    groups.setdefault(key, {}).setdefault(r["tree"], []).append(r)
  out = ["| algorithm | K | old s/step (processes) | new s/step (processes) | "
         "speedup (range over pairs) | revs | load |", "|" + " --- |" * 7]
  for (alg, k), by in groups.items():
    old, new = by.get("old", []), by.get("new", [])
    if not old or not new:
      continue
    mo = statistics.median(r["median_s"] for r in old)
    mn = statistics.median(r["median_s"] for r in new)
    pairs = [o["median_s"] / n["median_s"] for o, n in zip(old, new)]
    spread = lambda rs: ", ".join(f"{r['median_s']:.2f}" for r in rs)  # noqa: E731
    loads = [r["loadavg"][0] for r in old + new]
    out.append(f"| {alg} | {k} | {mo:.2f} ({spread(old)}) | {mn:.2f} ({spread(new)}) | "
               f"**{mo / mn:.2f}×** ({min(pairs):.2f}–{max(pairs):.2f}) | "
               f"{old[0]['rev']} → {new[0]['rev']} | {min(loads):.1f}–{max(loads):.1f} |")
  return out


def render() -> str:
  parts = []
  meta = _rows("meta_step.jsonl")
  if meta:
    r0 = meta[0]
    parts += [f"Measured {r0['date']} on `{r0['host']}` ({r0['cpus']} CPUs, "
              f"{r0['backend']}, jax {r0['jax']}). Load = 1-minute load average.", ""]
    parts += ["### Meta-step: omniglot-5w1s, meta-batch 32", ""]
    parts += meta_step_table(meta) + [""]
  cmp_rows = _rows("compare.jsonl")
  if cmp_rows:
    parts += ["### Interleaved comparisons (one process, A B C A B C …, meta-batch 32)",
              "", "Each group's first row is its reference; `python -m "
              "benchmarks.meta_step --compare=FIELD=V1,V2,...`.", ""]
    parts += compare_table(cmp_rows) + [""]
  alt = _rows("alternate.jsonl")
  if alt:
    parts += ["### First order against second order, separate processes in turn", "",
              "`python -m benchmarks.meta_step --algorithm=maml|fomaml --K=5 "
              "--nocount_flops`, one process each, maml and fomaml alternating "
              "(`ALTERNATE` in `run_all.sh`).", ""]
    parts += alternate_table(alt) + [""]
  fusion = _rows("fusion.jsonl")
  if fusion:
    parts += ["### XLA's fusion emitters on (XLA's default) and off (`fast_compile`), "
              "interleaved", "", "`python -m benchmarks.meta_step --compare=xla_options="
              "xla_cpu_use_fusion_emitters=true,xla_cpu_use_fusion_emitters=false`; "
              "each pair's first row is its reference.", ""]
    parts += compare_table(fusion) + [""]
  pinned = _rows("pinned_training_workloads.jsonl")
  if pinned:
    parts += ["### The Omniglot training workloads, one pinned process per core", "",
              "The settings of the MAML 5-way 5-shot and 20-way 1-shot runs, each "
              "comparison interleaved in one process (`python -m benchmarks.meta_step "
              "--ways=W --shots=S --queries=S --meta_batch=B --K=K --inner_lr=A [--remat] "
              "--steps=7 --nocount_flops --compare=FIELD=V1,V2`) under `taskset -c 0` "
              "(5-shot) and `taskset -c 1` (20-way) side by side, as the training runs "
              "are; training was stopped meanwhile. Each group's first row is its "
              "reference.", ""]
    parts += pinned_table(pinned) + [""]
  ct = _rows("compile_time.jsonl")
  if ct:
    parts += ["### Compile time (one process per row, `benchmarks/compile_time.py`)", "",
              "Wall seconds to lower and compile the meta-step (meta-batch 32, 15 queries "
              "per class), then the median of n steps in that process.", ""]
    parts += compile_table(ct) + [""]
  versus = _rows("versus.jsonl")
  if versus:
    parts += ["### Old code against new, processes in turn (`bash benchmarks/versus.sh`)",
              "", "Reference workload, one process per row (`benchmarks.meta_step "
              "--steps=10 --nocount_flops`), old and new alternating; speedup = old "
              "median / new median.", ""]
    parts += versus_table(versus) + [""]
  learners = _rows("learners.jsonl")
  if learners:
    parts += ["### Every learner on the reference workload (`bash benchmarks/learners.sh`)",
              "", "Omniglot conv net, 5-way 1-shot, 15 queries per class, meta-batch 32, "
              "real data, each learner's own config file with those settings forced; "
              "`benchmarks/train_steps.py` per row (one process, compiled, 3 warm-up "
              "steps, then the timed steps back to back).", ""]
    parts += learners_table(learners, _rows("learners_memory.jsonl")) + [""]
  ev = _rows("eval_curve.jsonl")
  if ev:
    parts += ["### Evaluation: whole accuracy curve k = 0..K in one pass", ""]
    parts += eval_table(ev) + [""]
  roof = _rows("roofline.jsonl")
  if roof:
    parts += ["### Roofline: GFLOP/s median of 10 calls (best in brackets)", ""]
    parts += roofline_table(roof) + [""]
  mem = os.path.join(RESULTS, "memory_vs_steps.md")
  if os.path.exists(mem):
    parts += ["### Peak memory and time against K (one process per cell)", ""]
    with open(mem) as f:
      parts += [f.read().rstrip(), ""]
    parts += ["![memory vs K](results/memory_vs_steps.png)", ""]
  load = os.path.join(RESULTS, "load.txt")
  if os.path.exists(load):
    with open(load) as f:
      parts += ["### What else was running", "", "```", f.read().rstrip(), "```", ""]
  return "\n".join(parts)


def main() -> None:
  with open(README) as f:
    text = f.read()
  head, rest = text.split(BEGIN, 1)
  _, tail = rest.split(END, 1)
  with open(README, "w") as f:
    f.write(head + BEGIN + "\n" + render() + "\n" + END + tail)


if __name__ == "__main__":
  main()
