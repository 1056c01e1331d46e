"""The compute-scaling report: rows, fits, plots and a markdown summary in a workdir.

``write_outputs`` reads the finished points of a sweep (``sweep.collect``), fits them
(``analysis_lib.analyse``) and writes ``rows.csv``, ``rows.json``,
``per_episode.npz``, ``fits.json``, ``plots/*.png`` and ``report.md``. ``markdown``
assembles the report from the sentences of ``statements`` (fitted curves) and
``sections`` (the sweep's axes), each generated from a test that could have gone the
other way. Every interval is over training seeds and evaluation episodes; a single-seed
point says its interval is over episodes only.
"""

import csv
import datetime
import json
import math
import os
from typing import Any, Sequence

import numpy as np

from metalearn import atomic
from metalearn.scaling import analysis as analysis_lib
from metalearn.scaling import headline as headline_lib
from metalearn.scaling import plots as plots_lib
from metalearn.scaling import sections
from metalearn.scaling import sweep
from metalearn.scaling.statements import curve_section, fmt, metric_name, pm
from metalearn.scaling.statements import monotone_statement

def markdown(fits: dict, context: dict) -> str:
  """The report, generated from the fits and the run's context.

  Args:
    fits: the output of ``analysis_lib.analyse``.
    context: ``title``, ``protocol`` (lines describing what was run), ``provenance``
      (command, date, machine, seconds, load averages, other processes), ``plots``
      (file names), ``error_metric`` (the metric called "error").

  Returns:
    Markdown text.
  """
  lines = [f"# {context.get('title', 'Compute scaling')}", ""]
  lead = headline_lib.headline(fits)
  if lead:
    lines += ["## Headline", ""] + [f"- {s}" for s in lead] + [""]
  lines += ["## What was run", ""] + [f"- {p}" for p in context.get("protocol", [])]
  groups = fits["groups"]
  along = sorted({g["axis"][:-len("_steps")] for g in groups
                  if g["axis"].endswith("_steps")})
  lines += [f"- Design: one axis at a time around the base point `{fits['base']}` "
            f"(a star of {len(groups)} settings, not a Cartesian product), so "
            "interactions between axes are not measured"
            + (f", except each of {', '.join(along)} with meta-training length (their "
               "runs scored along their steps)." if along else "."), ""]
  prov = context.get("provenance")
  if prov:
    lines += ["## Provenance", ""]
    lines += [f"- {k}: {v}" for k, v in prov.items()] + [""]
  for metric in fits["metrics"]:
    res = fits[metric]
    tt = res["test_time"]
    name = metric_name(metric)
    lines += [f"## {name[0].upper() + name[1:]}", ""]
    lines += ["| setting | K_train | shots (train / test) | tasks | width | meta-steps | "
              f"meta-training FLOPs | k | {metric} at k (95% CI) |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for g in groups:
      s = res["summary"][g["group"]]
      lines.append(f"| {g['group']} | {g['k_train']} | {g['shots']} / {g['eval_shots']} | "
                   f"{g['tasks']} | {g.get('width') or '–'} | {g.get('num_steps') or '–'} | "
                   f"{fmt(g['meta_training_flops'])} | {s['k']} | {pm(s['mean'], s['ci95'])} |")
    lines += ["", sections.interval_note(fits), ""]
    lines += _test_time_lines(tt, metric, "Test-time compute (inner steps k of the base "
                              "model, at the training inner rate)")
    if "test_time_tuned" in res:
      lines += _test_time_lines(res["test_time_tuned"], metric, "Test-time compute at "
                                "the inner rate chosen per k on validation episodes")
    lines += sections.meta_section(res, metric)
    lines += sections.iso_section(res, metric)
    lines += sections.data_section(res, metric)
    lines += sections.size_steps_section(res, metric)
    lines += sections.frontier_section(res, metric)
  lines += sections.agreement_section(fits)
  lines += ["## What the data do not support", ""]
  lines += [f"- {s}" for s in sections.limits(fits, context)]
  if context.get("plots"):
    lines += ["", "## Plots", ""] + [f"![{p}](plots/{p})" for p in context["plots"]]
  return "\n".join(lines) + "\n"


def _test_time_lines(tt: dict, metric: str, title: str) -> list[str]:
  """A test-time curve: its measured points, fits, last doubling and plateau."""
  lines = [f"### {title}", ""]
  kk = ", ".join(f"k={k}: {pm(m, c)}" for k, m, c in zip(tt["k"], tt["mean"], tt["ci95"]))
  lines.append(f"Measured ({tt['episodes']} episodes × {tt['n_seeds']} seed(s)): {kk}.")
  lrs = [(k, lr) for k, lr in zip(tt["k"], tt.get("inner_lr") or []) if k and lr]
  if len({lr for _, lr in lrs}) > 1 or "validation" in title:
    lines.append("Inner rate chosen at each k: " + ", ".join(f"k={k}: {lr:g}"
                                                           for k, lr in lrs) + ".")
  lines.append("")
  fl, k = tt["adaptation_flops"], tt["k"]
  per_step = fl[-1] / max(k[-1], 1)
  lines += [f"Adaptation FLOPs are the inner steps' cost, {fmt(per_step)}·k per episode "
            f"(k = 0 costs nothing and is not fitted on a log axis; its {metric} is "
            f"{pm(tt['mean'][0], tt['ci95'][0])}); scoring the queries costs "
            f"{fmt(tt['query_flops'])} FLOPs per episode on top, whatever k, and is "
            "not on this axis.", ""]
  span = math.log10(max(tt["compute"]) / min(tt["compute"]))
  fitted = [i for i, kk in enumerate(k) if kk in tt["fit_k"]]
  mono = monotone_statement([k[i] for i in fitted], [tt["mean"][i] for i in fitted],
                            [tt["ci95"][i] for i in fitted], "k", metric)
  if mono:
    lines += [f"Note: {mono}", ""]
  lines += curve_section(tt, metric, f"adaptation FLOPs per episode ({span:.2f} "
                          "decades)")
  ld = tt["last_doubling"]
  still = ("still lowers" if ld["diff"] + ld["ci95"] < 0 else
           "raises" if ld["diff"] - ld["ci95"] > 0 else "does not measurably change")
  lines += [f"- Going from k={ld['k_from']} to k={ld['k_to']} {still} the {metric} "
            f"(paired difference {ld['diff']:+.4f} ± {ld['ci95']:.4f})."]
  plateau = sections.plateau_statement(tt.get("plateau"), metric)
  lines += [f"- Plateau: {plateau}"] if plateau else []
  pred = tt.get("predicted")
  if pred and pred["n"]:
    pts = [p for p in pred["points"] if p["k"] >= 1]
    worst = max(pts, key=lambda p: abs(p["diff"]))
    best_k = min(pts, key=lambda p: p["predicted"])
    lines += [f"- Predicted curve (gradient descent from the best start, exact in "
              f"expectation): the measured {metric} is within its 95% interval of the "
              f"prediction at {sum(p['inside'] for p in pts)} of {len(pts)} k >= 1; "
              f"the largest gap is at k = {worst['k']} (measured "
              f"{pm(worst['mean'], worst['ci95'])}, "
              f"predicted {fmt(worst['predicted'], 4)}). The prediction is lowest at "
              f"k = {best_k['k']} ({fmt(best_k['predicted'], 4)}) and rises after it: "
              "more inner steps overfit the support set, so the curve has no floor to fit."
              if pts[-1]["predicted"] > best_k["predicted"] else
              f"- Predicted curve (gradient descent from the best start, exact in "
              f"expectation): the measured {metric} is within its 95% interval of the "
              f"prediction at {sum(p['inside'] for p in pts)} of {len(pts)} k >= 1; "
              f"the largest gap is at k = {worst['k']} (measured "
              f"{pm(worst['mean'], worst['ci95'])}, "
              f"predicted {fmt(worst['predicted'], 4)})."]
  lines += [""]
  return lines


def _csv(path: str, rows: Sequence[dict]) -> None:
  keys = sorted({k for r in rows for k in r})
  with atomic.open_for_write(path, newline="") as f:
    w = csv.DictWriter(f, fieldnames=keys)
    w.writeheader()
    for r in rows:
      w.writerow({k: json.dumps(v) if isinstance(v, (list, dict)) else v
                  for k, v in r.items()})


def _json(path: str, obj: Any, indent: Any = 1) -> None:
  atomic.write_text(path, json.dumps(obj, indent=indent, allow_nan=False))


def write_outputs(workdir: str, sweep_config, *, metrics: Sequence[str], analysis: dict,
                  context: dict) -> dict:
  """Collects the sweep's rows and writes rows, fits, plots and the report.

  Args:
    workdir: the sweep's directory.
    sweep_config: the sweep's config (its points and their protocols).
    metrics: error-like metrics to fit (``'error'``, ``'loss'``).
    analysis: keyword arguments of ``analysis_lib.analyse``.
    context: see ``markdown``; ``plots`` is filled in here.

  Returns:
    The fits.
  """
  rows, per_episode = sweep.collect(workdir, sweep_config)
  if not rows:
    raise ValueError(f"{workdir}: no finished sweep points to report on")
  _csv(os.path.join(workdir, "rows.csv"), rows)
  _json(os.path.join(workdir, "rows.json"), rows, indent=None)  # One line: it is large.
  # What the analysis reads: the analysed metrics of every point, and the support loss
  # of the base and tuned points only (their plateaus); everything else stays in the
  # points' own evaluation files.
  base = {r["point"] for r in rows if r["axis"] in ("base", "tuned")}
  kept = {k: v for k, v in per_episode.items()
          if k.split("/")[1] in metrics or (k.split("/")[0] in base
                                            and k.split("/")[1] == "support_loss")}
  np.savez_compressed(os.path.join(workdir, "per_episode.npz"),
                      **{k.replace("/", "__"): v.astype(np.float32)
                         for k, v in kept.items()})
  fits = analysis_lib.analyse(rows, per_episode, metrics=metrics, **analysis)
  fits["generated"] = datetime.datetime.now(datetime.timezone.utc).isoformat(
      timespec="seconds")
  _json(os.path.join(workdir, "fits.json"), fits)
  plot_dir = os.path.join(workdir, "plots")
  os.makedirs(plot_dir, exist_ok=True)
  prov = context.get("provenance") or {}
  footer = "; ".join(f"{k}: {v}" for k, v in prov.items()
                     if k in ("date", "machine") or "load" in k or "other" in k)
  plots = plots_lib.plot_all(rows, fits, plot_dir, footer=footer)
  text = markdown(fits, dict(context, plots=plots))
  with open(os.path.join(workdir, "report.md"), "w") as f:
    f.write(text)
  return fits
