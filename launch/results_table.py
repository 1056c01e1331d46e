r"""Published vs reproduced results, and their learning curves, from committed result dirs.

Each result dir holds what a run wrote: ``config.json``, ``metrics.jsonl`` (training and
validation metrics), ``progress.json`` (training seconds summed over resumed invocations,
and the machines they ran on), ``run.json`` (commands, dates, machine),
``eval/rows_step<S>_seed<E>_<protocol>.jsonl`` (``metalearn.run.workdir``) and the
checkpoint. The table reports the evaluation under the config's own seed and protocol,
lists the same checkpoint scored on other seeds and under other protocols beside it, and
splits the training time by machine. A ``published.json`` beside them names the paper's
figure:
``{"setting": ..., "published": "98.7 ± 0.4", "source": "Finn et al. 2017"}``.

  python -m launch.results_table results/omniglot_*                # the table
  python -m launch.results_table --plot=results/omniglot_curves.png results/omniglot_*
"""

import dataclasses
import datetime
import glob
import json
import os
import re
import shlex
import textwrap

from absl import app
from absl import flags
import ml_collections
import numpy as np

from launch import cli
from metalearn import config as config_lib
from metalearn.run import progress
from metalearn.scaling import plots

_PLOT = flags.DEFINE_string("plot", "", "Also write the learning curves to this PNG.")
_EVAL_FILE = re.compile(r"rows_step(\d+)_seed(\d+)(_\w+)?\.jsonl$")


# How each batch-norm mode normalises the queries (``metalearn.learner``).
_BN_WORDS = {"transductive": "query-batch BN statistics",
             "non_transductive": "support-set BN statistics",
             "transductive_joint": "support+query BN statistics"}
_ROTATE_WORDS = {True: "classes turned by random quarter turns",
                 False: "classes not turned"}
_ALPHABET_WORDS = {True: "classes within one alphabet",
                   False: "classes from the whole split"}
_DEFAULT_BN = config_lib.base_config().bn_mode  # Files written before the key existed.

Protocol = tuple[int, int, int, int, str, bool, bool]


def protocol(row: dict) -> Protocol:
  """(ways, shots, queries per class, test-time steps k, batch-norm mode, rotated
  classes, classes within one alphabet) an evaluation row was scored with."""
  bn = row.get("eval_bn_mode") or row.get("bn_mode", _DEFAULT_BN)
  return (row["eval_ways"], row["eval_shots"], row["eval_queries"], row["k"], bn,
          bool(row.get("eval_rotate", False)),
          bool(row.get("eval_within_alphabet", False)))


def config_protocol(config: dict) -> Protocol:
  """The protocol of a run's own evaluation (``config.json``)."""
  bn = config["eval"].get("bn_mode") or config.get("bn_mode", _DEFAULT_BN)
  c = ml_collections.ConfigDict(config)
  e = c.eval
  return (e.ways or c.ways, e.shots or c.shots, e.queries or c.queries,
          max(config_lib.eval_steps(c)), bn, bool(config["eval"].get("rotate", False)),
          bool(config["eval"].get("within_alphabet", False)))


def evaluations(result_dir: str) -> list[dict]:
  """The accuracy row at the largest test-time k of every evaluation file
  (``metalearn.run.workdir``: one per checkpoint, seed and protocol), by step and seed.
  A file whose rows name another checkpoint or seed than its name is an error."""
  out = []
  for path in glob.glob(os.path.join(result_dir, "eval", "rows_step*_seed*.jsonl")):
    match = _EVAL_FILE.search(path)
    if not match:
      raise ValueError(f"{path}: not an evaluation file name (train.eval_file_stem)")
    with open(path) as f:
      acc = [r for r in map(json.loads, f) if r["metric"] == "accuracy"]
    best = max(acc, key=lambda r: r["k"])
    named = (int(match.group(1)), int(match.group(2)))
    if (best["checkpoint_step"], best["eval_seed"]) != named:
      raise ValueError(f"{path}: rows have checkpoint_step {best['checkpoint_step']} and "
                       f"eval_seed {best['eval_seed']}, the file name says {named}")
    out.append(best)
  return sorted(out, key=lambda r: (r["checkpoint_step"], r["eval_seed"], protocol(r)))


def by_protocol(result_dir: str) -> list[tuple[Protocol, list[dict]]]:
  """Accuracy rows on the config's evaluation seed, grouped by protocol and sorted by
  step: ``[(protocol, [row, ...]), ...]``, the config's own protocol first (possibly with
  no rows), then the others in sorted order. Re-evaluations on other seeds are left out."""
  config = _json(result_dir, "config.json")
  own = config_protocol(config)
  rows = [r for r in evaluations(result_dir) if r["eval_seed"] == config["eval"]["seed"]]
  protocols = [own] + sorted({protocol(r) for r in rows} - {own})
  return [(p, [r for r in rows if protocol(r) == p]) for p in protocols]


def final_accuracy_row(result_dir: str) -> dict:
  """The accuracy row at the largest test-time step of the latest checkpoint's
  evaluation on the config's evaluation seed and protocol."""
  own = by_protocol(result_dir)[0][1]
  if not own:
    raise FileNotFoundError(f"{result_dir}: no evaluation under the config's own seed "
                            "and protocol in eval/")
  return own[-1]


def other_protocols(result_dir: str, step: int) -> list[dict]:
  """Accuracy rows of the same checkpoint and seed under protocols other than the
  config's (e.g. a paper's reference code)."""
  return [r for _, rows in by_protocol(result_dir)[1:] for r in rows
          if r["checkpoint_step"] == step]


def reevaluations(result_dir: str, step: int) -> list[dict]:
  """Accuracy rows of checkpoint ``step`` under the config's own protocol on evaluation
  seeds other than the config's: the same parameters scored on fresh episodes."""
  config = _json(result_dir, "config.json")
  own = config_protocol(config)
  return [r for r in evaluations(result_dir) if r["checkpoint_step"] == step
          and protocol(r) == own and r["eval_seed"] != config["eval"]["seed"]]


def _protocol_flags(row: dict, config: dict) -> str:
  """The ``--config.eval.*`` flags that score a checkpoint under ``row``'s protocol."""
  names = ("ways", "shots", "queries", "steps", "bn_mode", "rotate", "within_alphabet")
  return " ".join(f"--config.eval.{n}={v}" for n, v, own in
                  zip(names, protocol(row), config_protocol(config)) if v != own)


def _describe(row: dict, config: dict) -> str:
  ways, shots, queries, k, bn, rotate, within = protocol(row)
  own = config_protocol(config)
  parts = [f"{ways}-way {shots}-shot"] if (ways, shots) != own[:2] else []
  parts += [f"{queries} quer{'y' if queries == 1 else 'ies'}/class", f"k = {k}"]
  parts += [_BN_WORDS[bn]] if bn != own[4] else []
  parts += [_ROTATE_WORDS[rotate]] if rotate != own[5] else []
  parts += [_ALPHABET_WORDS[within]] if within != own[6] else []
  return (f"{100 * row['mean']:.2f} ± {100 * row['ci95']:.2f} ({', '.join(parts)}, "
          f"{row['episodes']:,} episodes)")


def commands(result_dir: str) -> tuple[str, str]:
  """(train-or-resume command, re-evaluate-on-a-fresh-seed command) of a result dir,
  from the first recorded invocation without its mode and seed flags."""
  first = _json(result_dir, "run.json")["invocations"][0]["command"]
  args = [a for a in shlex.split(first)
          if not a.startswith(("--mode=", "--config.eval.seed=", "--checkpoint_step="))]
  train_cmd = shlex.join(args)
  seed = _json(result_dir, "config.json")["eval"]["seed"] + 1
  return train_cmd, f"{train_cmd} --mode=evaluate --config.eval.seed={seed}"


def _json(result_dir: str, name: str) -> dict:
  with open(os.path.join(result_dir, name)) as f:
    return json.load(f)


def table(result_dirs: list[str]) -> str:
  lines = ["| setting | published | ours (95% CI) | same parameters, fresh episodes "
           "| meta-iterations (of the paper's) | train K / test K | training wall time "
           "| dates (UTC) | machine | same parameters, other test protocols |",
           "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
  for d in result_dirs:
    pub, config = _json(d, "published.json"), _json(d, "config.json")
    invocations = _json(d, "run.json")["invocations"]
    row = final_accuracy_row(d)
    others = other_protocols(d, row["checkpoint_step"])
    fresh = "; ".join(f"{100 * r['mean']:.2f} ± {100 * r['ci95']:.2f} (seed {r['eval_seed']})"
                      for r in reevaluations(d, row["checkpoint_step"]))
    stretches = machine_stretches(d, row["checkpoint_step"])
    days = [i["date"][:10] for i in invocations] + [s.started[:10] for s in stretches
                                                    if s.started]
    dates = " – ".join(sorted({min(days), max(days)}))
    train_time = _hours(progress.train_seconds_at(d, row["checkpoint_step"]))
    if len(stretches) > 1:
      train_time += f" ({' + '.join(_hours(s.seconds) for s in stretches)})"
    machine = "; ".join(
        _machine_words(s.machine) + (f" (steps {s.start:,}–{s.end:,})" if len(stretches) > 1
                                     else "") for s in stretches)
    lines.append(
        f"| {pub['setting']} | {pub['published']} ({pub['source']}) | "
        f"{100 * row['mean']:.2f} ± {100 * row['ci95']:.2f} ({row['episodes']:,} episodes) | "
        f"{fresh or 'not yet scored'} | {row['checkpoint_step']:,} of {config['num_steps']:,} | "
        f"{row['k_train']} / {row['k']} | {train_time} | {dates} | {machine} | "
        f"{'; '.join(_describe(r, config) for r in others) or '–'} |")
  lines.append("")
  lines.append("Commands (the first resumes or continues training and then evaluates; "
               "the second re-evaluates the committed parameters on a fresh seed; any "
               "further one scores them under the other protocols listed):")
  lines.append("")
  for d in result_dirs:
    train_cmd, eval_cmd = commands(d)
    config = _json(d, "config.json")
    extra = [f"  {train_cmd} --mode=evaluate {_protocol_flags(r, config)}"
             for r in other_protocols(d, final_accuracy_row(d)["checkpoint_step"])]
    lines += [f"- `{os.path.basename(d)}`:", "  ```bash", f"  {train_cmd}", f"  {eval_cmd}",
              *extra, "  ```"]
  return "\n".join(lines)


def machine_stretches(result_dir: str, step: int) -> list[progress.Segment]:
  """The training of checkpoint ``step`` as consecutive stretches on one machine each
  (``progress.segments_at``, invocations on the same machine merged). Steps trained
  before ``progress.json`` recorded machines are taken to have run where the first
  recorded invocation in ``run.json`` ran."""
  fallback = _json(result_dir, "run.json")["invocations"][0]["machine"]
  out = []
  for seg in progress.segments_at(result_dir, step):
    seg = dataclasses.replace(seg, machine=seg.machine or fallback)
    if out and _machine_words(out[-1].machine) == _machine_words(seg.machine):
      last = out.pop()
      took = (None if last.seconds is None or seg.seconds is None
              else last.seconds + seg.seconds)
      seg = dataclasses.replace(last, end=seg.end, seconds=took)
    out.append(seg)
  return out


def _machine_words(machine: dict) -> str:
  return f"{machine['cpu_count']}-core {machine['cpu']}, {machine['backend']}"


def _hours(seconds) -> str:
  return "not recorded" if seconds is None else f"{seconds / 3600:.2f} h"


def _published(text: str) -> tuple[float, float]:
  mean, ci = (float(x) for x in re.findall(r"[\d.]+", text)[:2])
  return mean, ci


def _episodes(rows: list[dict]) -> str:
  counts = sorted({r["episodes"] for r in rows})
  return f"{counts[0]:,}" if len(counts) == 1 else f"{counts[0]:,}–{counts[-1]:,}"


def plot_learning_curves(result_dirs: list[str], path: str) -> None:
  """One panel per result dir: smoothed training query accuracy after adaptation,
  validation accuracy, test evaluations with 95% CIs (the config's own protocol filled,
  other protocols hollow), and the published band."""
  from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top
  cols = min(3, len(result_dirs))
  rows_ = -(-len(result_dirs) // cols)
  fig, axes = plt.subplots(rows_, cols, figsize=(5.2 * cols, 3.9 * rows_), squeeze=False)
  for ax in axes.flat[len(result_dirs):]:
    ax.set_axis_off()
  machines = set()
  for ax, d in zip(axes.flat, result_dirs):
    pub, config = _json(d, "published.json"), _json(d, "config.json")
    stretches = machine_stretches(d, config["num_steps"])
    machines.update(s.machine["cpu"] for s in stretches)
    for s in stretches[1:]:  # Where training moved to another machine.
      ax.axvline(s.start, ls=":", lw=0.8, color="0.3")
      ax.text(s.start, 0.02, f" from here on\n {s.machine['cpu']}", fontsize=5.5,
              color="0.3", transform=ax.get_xaxis_transform())
    with open(os.path.join(d, "metrics.jsonl")) as f:
      rows = [json.loads(l) for l in f]
    logged = [(r["step"], r["query_accuracy_post"]) for r in rows
              if "query_accuracy_post" in r]
    if logged:
      s, a = map(np.asarray, zip(*sorted(logged)))
      w = min(10, len(a))
      ax.plot(s[w - 1:], 100 * np.convolve(a, np.ones(w) / w, "valid"), lw=0.8,
              color="0.6", label=f"train query acc. (mean of {w} logs)")
    val = sorted((r["step"], v) for r in rows for k, v in r.items()
                 if k.startswith("val/query_accuracy_k") and not k.endswith("_k0"))
    if val:
      s, a = zip(*val)
      ax.plot(s, 100 * np.asarray(a), "s-", ms=3, color="C1", label="validation")
    groups = by_protocol(d)
    for i, ((_, _, queries, k, bn, rotate, within), points) in enumerate(groups):
      if not points:
        continue
      bn_words = f", {_BN_WORDS[bn]}" if bn != groups[0][0][4] else ""
      bn_words += f", {_ROTATE_WORDS[rotate]}" if rotate != groups[0][0][5] else ""
      bn_words += f", {_ALPHABET_WORDS[within]}" if within != groups[0][0][6] else ""
      steps, means, cis = zip(*[(r["checkpoint_step"], 100 * r["mean"], 100 * r["ci95"])
                                for r in points])
      ax.errorbar(steps, means, cis, fmt="D" if i else "o", ms=4, capsize=2,
                  color=f"C{2 + i}" if i else "C0", mfc="none" if i else None,
                  label=f"test, {queries} quer{'y' if queries == 1 else 'ies'}/class, "
                        f"k = {k}{bn_words}, {_episodes(points)} ep."
                        + (" (own)" if not i else ""))
    mean, ci = _published(pub["published"])
    ax.axhspan(mean - ci, mean + ci, color="C2", alpha=0.25,
               label=f"published {pub['published']}")
    ax.set_xlim(0, config["num_steps"])
    lowest = [100 * r["mean"] - 5 for _, points in groups for r in points]
    ax.set_ylim(max(0, min([mean - 10] + lowest)), 100.5)
    ax.set_xlabel("meta-iteration (x-axis: the paper's full run)")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(textwrap.fill(pub["setting"], 70), fontsize=7)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, loc="lower right")
  footer = (f"Drawn {datetime.date.today().isoformat()} by experiments/results_table.py "
            f"from the committed files in {', '.join(result_dirs)}; training ran on "
            f"{', '.join(sorted(machines))} (CPU only), sharing its two cores with "
            "other runs (loads in run.json).")
  plots.save_figure(fig, path, footer)


def main(argv):
  result_dirs = argv[1:]
  if not result_dirs:
    raise app.UsageError("give one or more result dirs")
  try:
    print(table(result_dirs))
    if _PLOT.value:
      plot_learning_curves(result_dirs, _PLOT.value)
  except (ValueError, OSError) as e:
    cli.fail(str(e))


if __name__ == "__main__":
  app.run(main)
