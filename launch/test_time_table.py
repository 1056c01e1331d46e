r"""Tables of test-time compute and test-time shots on trained runs, from their evaluations.

  python -m launch.test_time_table --runs=results/omniglot_maml_5w1s,results/omniglot_maml_5w5s

For each run directory: the tuned curve (``--mode=tune_inner_lr``: accuracy at every k
at the inner rate chosen per k on validation episodes) and the same checkpoint scored
with 1..10 support shots per class (``launch/omniglot_test_time.sh``), nothing
retrained. Intervals are 95% over the evaluation episodes (one trained model: no seed
variance). Prints markdown.
"""

import glob
import json
import os
import sys

from absl import app
from absl import flags

from launch import cli

_RUNS = flags.DEFINE_list("runs", [], "Run directories (each with eval/).")
_METRIC = flags.DEFINE_string("metric", "accuracy", "The metric to tabulate.")


def _rows(path: str) -> list[dict]:
  with open(path) as f:
    return [json.loads(line) for line in f if line.strip()]


def tuned_curve(run: str, metric: str) -> list[dict]:
  """Rows of the run's tuned curve with the most test-time steps (none if absent)."""
  paths = glob.glob(os.path.join(run, "eval", "tuned_*.jsonl"))
  if not paths:
    return []
  rows = max((_rows(p) for p in paths), key=lambda rs: max(r["k"] for r in rs))
  return sorted((r for r in rows if r["metric"] == metric), key=lambda r: r["k"])


def shots_table(run: str, metric: str) -> dict[int, dict[int, dict]]:
  """``{shots: {k: row}}`` of the test-split evaluations of the final checkpoint at each
  number of support shots scored by ``omniglot_test_time.sh`` (k up to 16)."""
  out: dict[int, dict[int, dict]] = {}
  for p in glob.glob(os.path.join(run, "eval", "rows_step*_test_*_k16_*.jsonl")):
    for r in _rows(p):
      if r["metric"] == metric and r.get("eval_inner_lr") in (None, r["inner_lr"]):
        out.setdefault(int(r["eval_shots"]), {})[int(r["k"])] = r
  return dict(sorted(out.items()))


def _pct(r: dict) -> str:
  return f"{100 * r['mean']:.2f} ± {100 * r['ci95']:.2f}"


def markdown(runs: list[str], metric: str) -> str:
  lines = []
  for run in runs:
    name = os.path.basename(os.path.normpath(run))
    tuned = tuned_curve(run, metric)
    if tuned:
      lines += [f"**{name}**: {metric} (%) at the inner rate chosen per k on validation "
                f"({tuned[0]['tuned_on']['episodes']} validation, {tuned[0]['episodes']} "
                f"test episodes; rates {tuned[0]['tuned_lrs']})", "",
                "| k | " + " | ".join(str(r["k"]) for r in tuned) + " |",
                "| --- |" + " --- |" * len(tuned),
                f"| {metric} | " + " | ".join(_pct(r) for r in tuned) + " |",
                "| rate | " + " | ".join(f"{r['eval_inner_lr']:g}" if r["k"] else "–"
                                         for r in tuned) + " |", ""]
    shots = shots_table(run, metric)
    if shots:
      ks = sorted({k for by_k in shots.values() for k in by_k})
      first = next(iter(next(iter(shots.values())).values()))
      lines += [f"**{name}**: {metric} (%) by test-time shots per class (rows) and inner "
                f"steps k (columns) at the training rate {first['inner_lr']:g}, "
                f"{first['episodes']} test episodes, the final checkpoint (trained at "
                f"{first['shots']} shot(s)), nothing retrained", "",
                "| shots | " + " | ".join(f"k={k}" for k in ks) + " |",
                "| --- |" + " --- |" * len(ks)]
      for s, by_k in shots.items():
        lines.append(f"| {s} | " + " | ".join(_pct(by_k[k]) if k in by_k else "–"
                                              for k in ks) + " |")
      lines.append("")
    if not (tuned or shots):
      lines += [f"**{name}**: no tuned curve or test-time shots evaluations yet.", ""]
  return "\n".join(lines)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  if not _RUNS.value:
    cli.fail("--runs: give one or more run directories")
  for run in _RUNS.value:
    if not os.path.isdir(os.path.join(run, "eval")):
      cli.fail(f"--runs: {run} has no eval/ directory")
  print(markdown(_RUNS.value, _METRIC.value))


if __name__ == "__main__":
  sys.exit(app.run(main, flags_parser=cli.parse_flags))
