r"""Markdown table of published vs reproduced results, read from committed result dirs.

Each result dir holds what a run wrote: ``config.json``, ``progress.json`` (training
seconds summed over resumed invocations), ``run.json`` (commands, dates, machine),
``eval/rows_step<S>_seed<E>.jsonl`` and the checkpoint. A ``published.json`` beside
them names the paper's figure: ``{"setting": ..., "published": "98.7 ± 0.4",
"source": "Finn et al. 2017"}``.

  python -m experiments.results_table results/omniglot_*
"""

import glob
import json
import os
import sys


def final_accuracy_row(result_dir: str) -> dict:
  """The accuracy row at the largest test-time step of the latest evaluation."""
  files = glob.glob(os.path.join(result_dir, "eval", "rows_step*_seed*.jsonl"))
  if not files:
    raise FileNotFoundError(f"{result_dir}: no eval/rows_step*_seed*.jsonl")
  latest = max(files, key=lambda p: int(os.path.basename(p).split("_")[1][4:]))
  rows = [json.loads(l) for l in open(latest)]
  acc = [r for r in rows if r["metric"] == "accuracy"]
  return max(acc, key=lambda r: r["k"])


def table(result_dirs: list[str]) -> str:
  lines = ["| setting | published | ours (95% CI) | meta-iterations | train K / test K "
           "| training wall time | date | machine | evaluation command |",
           "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
  for d in result_dirs:
    pub = json.load(open(os.path.join(d, "published.json")))
    run = json.load(open(os.path.join(d, "run.json")))
    row = final_accuracy_row(d)
    first = run["invocations"][0]
    machine = first["machine"]
    progress = os.path.join(d, "progress.json")
    train_time = (f"{json.load(open(progress))['train_seconds'] / 3600:.2f} h"
                  if os.path.exists(progress) else "not recorded")
    lines.append(
        f"| {pub['setting']} | {pub['published']} ({pub['source']}) | "
        f"{100 * row['mean']:.2f} ± {100 * row['ci95']:.2f} ({row['episodes']} episodes) | "
        f"{row['checkpoint_step']} | {row['k_train']} / {row['k']} | "
        f"{train_time} | {first['date'][:10]} | "
        f"{machine['cpu_count']}-core {machine['cpu']}, {machine['backend']} | "
        f"`{first['command']}` |")
  return "\n".join(lines)


if __name__ == "__main__":
  print(table(sys.argv[1:]))
