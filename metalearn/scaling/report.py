"""The compute-scaling report: rows, fits, plots and a markdown summary in a workdir.

``write_outputs`` reads the finished points of a sweep (``sweep.collect``), fits them
(``analysis_lib.analyse``) and writes ``rows.csv``, ``rows.json``,
``per_episode.npz``, ``fits.json``, ``plots/*.png`` and ``report.md``. ``markdown``
turns the fits into statements of what the data support and what they do not, with
the thresholds stated: |ΔAIC| < 2 is "indistinguishable", 2-10 "favoured", > 10
"strongly favoured" (Burnham & Anderson), between forms that may be ranked (none of
their parameters at a bound). Extrapolation is judged against the held-out points' own
95% intervals, never as a ratio between forms. Every interval is over training seeds
and evaluation episodes; a single-seed point says its interval is over episodes only.
"""

import csv
import datetime
import json
import math
import os
from typing import Any, Optional, Sequence

import numpy as np

from metalearn import atomic
from metalearn.scaling import analysis as analysis_lib
from metalearn.scaling import plots as plots_lib
from metalearn.scaling import sweep

NAMES = {"power_law_floor": "power law with floor E + A·C^-α",
         "power_law": "pure power law A·C^-α",
         "sigmoid_log": "sigmoid in log C", "m4": "M4"}
METRIC_NAMES = {"error": "error (1 − accuracy)", "loss": "query loss",
                "mse": "query MSE"}
WORSE_RATIO = 1.25


def _f(x: Optional[float], digits: int = 3) -> str:
  if x is None or (isinstance(x, float) and not math.isfinite(x)):
    return "–"
  return f"{x:.{digits}g}"


def _pm(mean: Optional[float], ci: Optional[float]) -> str:
  return f"{_f(mean, 4)} ± {_f(ci, 2)}"


def _by_model(fits: dict) -> dict[str, dict]:
  return {f["model"]: f for f in fits["compare"]}


def _ranked(fits: dict) -> dict[str, dict]:
  return {f["model"]: f for f in fits["compare"] if f.get("rankable")}


def aic_statement(fits: dict, a: str = "power_law_floor", b: str = "sigmoid_log") -> str:
  """What AIC says about forms ``a`` and ``b`` on one curve (rankable fits only)."""
  m, every = _ranked(fits), _by_model(fits)
  for name in (a, b):
    if name not in m:
      why = (every[name].get("unranked_reason") if name in every else
             fits.get("declined_models", {}).get(name, "not fitted"))
      return f"{NAMES[a]} vs {NAMES[b]}: not compared, the {NAMES[name]} is not ranked ({why})."
  d = m[a]["aic"] - m[b]["aic"]
  n = m[a]["n"]
  if abs(d) < 2:
    return (f"{NAMES[a]} and {NAMES[b]} are indistinguishable on this range "
            f"(ΔAIC = {d:+.2f}, {n} points).")
  better, worse = (a, b) if d < 0 else (b, a)
  strength = "strongly favour" if abs(d) > 10 else "favour"
  return (f"the data {strength} the {NAMES[better]} over the {NAMES[worse]} "
          f"(ΔAIC = {abs(d):.1f}, {n} points).")


def aicc_statement(fits: dict) -> Optional[str]:
  """Says so when the small-sample correction (AICc) reverses AIC's ranking."""
  ok = list(_ranked(fits).values())
  finite = [f for f in ok if f["aicc"] is not None and math.isfinite(f["aicc"])]
  if not finite:
    return None
  by_aic = min(ok, key=lambda f: f["aic"])["model"]
  by_aicc = min(finite, key=lambda f: f["aicc"])["model"]
  if by_aic == by_aicc:
    return f"AICc (the small-sample correction) agrees: {by_aicc} ranks first."
  return (f"AIC and AICc disagree: AIC ranks {by_aic} first, AICc ranks {by_aicc} "
          f"first (the correction is large with {ok[0]['n']} points), so these points do "
          "not decide between them.")


def unranked_statements(fits: dict) -> list[str]:
  """Forms fitted but not ranked, and forms not fitted, with the reason."""
  out = [f"{NAMES[f['model']]}: fitted but not ranked ({f['unranked_reason']})."
         for f in fits["compare"] if not f.get("rankable")]
  out += [f"{NAMES[m]}: not fitted ({why})."
          for m, why in fits.get("declined_models", {}).items()]
  return out


def extrapolation_statements(fits: dict) -> list[str]:
  """Held-out predictions judged against the held-out points' own 95% intervals."""
  out = []
  for m, e in fits["extrapolation"].items():
    if "summary" not in e:
      out.append(f"{NAMES[m]}: not tested ({e.get('skipped', 'no eligible split')}).")
      continue
    splits = [s["n_holdout"] for s in e["splits"] if "fit" in s]
    held = (f" (holding out the top {', '.join(map(str, splits))} point(s))"
            if splits else "")
    out.append(f"{NAMES[m]}{held}: {e['summary']['verdict']}")
  if fits.get("shared_bias"):
    out.append(fits["shared_bias"])
  return out


def ci_statements(fits: dict) -> list[str]:
  """Bootstrap intervals of the parameters that carry the scaling claims."""
  out = []
  b = fits.get("bootstrap", {})
  plf = b.get("power_law_floor", {})
  if "param_ci" in plf:
    e_lo, e_hi = plf["param_ci"]["E"]
    a_lo, a_hi = plf["param_ci"]["alpha"]
    est = plf["estimate"]["params"]
    over = ("evaluation episodes (one training seed)" if plf.get("single_seed") in
            (True, None) else "training seeds × evaluation episodes (crossed "
            "bootstrap percentiles scaled to the delta-method variance components)")
    out.append(f"power law with floor: α = {_f(est['alpha'])} (95% CI "
               f"[{_f(a_lo)}, {_f(a_hi)}]), floor E = {_f(est['E'])} "
               f"([{_f(e_lo)}, {_f(e_hi)}]), 95% over {over}, from "
               f"{plf['n_boot']} bootstrap replicates "
               f"({plf['success_fraction']:.0%} converged).")
    if e_lo is not None and e_lo <= 1e-6:
      out.append("the floor E is not distinguishable from 0: the data do not "
                 "establish an irreducible error.")
    elif a_lo is not None and a_hi is not None and a_hi > 3 * max(a_lo, 1e-12):
      out.append("the exponent α is poorly determined (its CI spans more than a "
                 "factor of 3).")
  sig = b.get("sigmoid_log", {})
  if "param_ci" in sig:
    est = sig["estimate"]["params"]
    lo, hi = sig["param_ci"]["E"]
    out.append(f"sigmoid in log C: floor E = {_f(est['E'])} ([{_f(lo)}, {_f(hi)}]), "
               f"upper plateau U = {_f(est['U'])}, slope s = {_f(est['s'])} per e-fold.")
  return out


def _fit_table(fits: dict) -> list[str]:
  lines = ["| model | rank | parameters | AIC | ΔAIC | ΔAICc | Akaike weight |",
           "| --- | --- | --- | --- | --- | --- | --- |"]
  for f in fits["compare"]:
    params = ", ".join(f"{k}={_f(v)}" + (" (at bound)" if k in f.get("at_bound", []) else "")
                       for k, v in f["params"].items())
    rank = f["rank"] if f.get("rank") else "not ranked"
    lines.append(f"| {f['model']} | {rank} | {params} | {_f(f['aic'], 4)} | "
                 f"{_f(f['delta_ic'], 3)} | {_f(f.get('delta_aicc'), 3)} | "
                 f"{_f(f['ic_weight'], 2)} |")
  return lines


def _curve_section(fits: dict, metric: str, x_name: str) -> list[str]:
  if "declined" in fits:
    return [f"No curve is fitted to {metric_name(metric)} against {x_name}. "
            f"{fits['declined']}"]
  lines = [f"Fits of {metric_name(metric)} against {x_name} "
           f"({len(fits['y'])} points, weighted by {fits.get('weighting', '1/CI²')}):",
           ""]
  lines += _fit_table(fits) + [""]
  lines += [f"- Not ranked: {s}" for s in unranked_statements(fits)]
  lines.append(f"- AIC: {aic_statement(fits)}")
  lines.append(f"- AIC: {aic_statement(fits, 'power_law', 'power_law_floor')}")
  aicc = aicc_statement(fits)
  if aicc:
    lines.append(f"- AICc: {aicc}")
  lines += [f"- Extrapolation: {s}" for s in extrapolation_statements(fits)]
  lines += [f"- Bootstrap: {s}" for s in ci_statements(fits)]
  drift = fits.get("drift", {})
  if "statement" in drift:
    lines.append(f"- Floor against the fitting range (power law with floor refitted on "
                 f"C ≤ c for growing c): {drift['statement']}")
  return lines


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
  lines += ["## What was run", ""] + [f"- {p}" for p in context.get("protocol", [])]
  groups = fits["groups"]
  lines += [f"- Design: one axis at a time around the base point `{fits['base']}` "
            f"(a star of {len(groups)} trained settings, not a Cartesian product), so "
            "interactions between axes are not measured.", ""]
  prov = context.get("provenance")
  if prov:
    lines += ["## Provenance", ""]
    lines += [f"- {k}: {v}" for k, v in prov.items()] + [""]
  for metric in fits["metrics"]:
    res = fits[metric]
    tt = res["test_time"]
    name = metric_name(metric)
    lines += [f"## {name[0].upper() + name[1:]}", ""]
    lines += ["| setting | K_train | shots | tasks | meta-training FLOPs | "
              f"k | {metric} at k (95% CI) |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for g in groups:
      s = res["summary"][g["group"]]
      lines.append(f"| {g['group']} | {g['k_train']} | {g['shots']} | {g['tasks']} | "
                   f"{_f(g['meta_training_flops'])} | {s['k']} | {_pm(s['mean'], s['ci95'])} |")
    lines += ["", _interval_note(fits), "",
              "### Test-time compute (inner steps k of the base model)", ""]
    kk = ", ".join(f"k={k}: {_pm(m, c)}" for k, m, c in zip(tt["k"], tt["mean"], tt["ci95"]))
    lines.append(f"Measured ({tt['episodes']} episodes × {tt['n_seeds']} seed(s)): {kk}.")
    lines.append("")
    fl, k = tt["adaptation_flops"], tt["k"]
    per_step = fl[-1] / max(k[-1], 1)
    lines += [f"Adaptation FLOPs are the inner steps' cost, {_f(per_step)}·k per episode "
              f"(k = 0 costs nothing and is not fitted on a log axis; its {metric} is "
              f"{_pm(tt['mean'][0], tt['ci95'][0])}); scoring the queries costs "
              f"{_f(tt['query_flops'])} FLOPs per episode on top, whatever k, and is "
              "not on this axis.", ""]
    span = math.log10(max(tt["compute"]) / min(tt["compute"]))
    fitted = [i for i, kk in enumerate(k) if kk in tt["fit_k"]]
    mono = monotone_statement([k[i] for i in fitted], [tt["mean"][i] for i in fitted],
                              [tt["ci95"][i] for i in fitted], "k", metric)
    if mono:
      lines += [f"Note: {mono}", ""]
    lines += _curve_section(tt, metric, f"adaptation FLOPs per episode ({span:.2f} "
                            "decades)")
    ld = tt["last_doubling"]
    still = ("still lowers" if ld["diff"] + ld["ci95"] < 0 else
             "raises" if ld["diff"] - ld["ci95"] > 0 else "does not measurably change")
    lines += [f"- Going from k={ld['k_from']} to k={ld['k_to']} {still} the {metric} "
              f"(paired difference {ld['diff']:+.4f} ± {ld['ci95']:.4f}).", ""]
    lines += _meta_section(res, metric)
    lines += _iso_section(res, metric)
    lines += _frontier_section(res, metric)
  lines += _agreement_section(fits)
  lines += ["## What the data do not support", ""]
  lines += [f"- {s}" for s in _limits(fits, context)]
  if context.get("plots"):
    lines += ["", "## Plots", ""] + [f"![{p}](plots/{p})" for p in context["plots"]]
  return "\n".join(lines) + "\n"


def metric_name(metric: str) -> str:
  """A metric's name in words."""
  if metric.startswith("mse>"):
    return f"failure rate (fraction of tasks with query MSE > {metric[4:]})"
  return METRIC_NAMES.get(metric, metric)


def _agreement_section(fits: dict) -> list[str]:
  """Where the capability metric and the loss tell different stories."""
  ag = fits.get("agreement")
  if not ag:
    return []
  a, b = ag["metrics"]
  lines = [f"## Loss against capability: {metric_name(a)} and {metric_name(b)}", "",
           "Each step from one test-time k to the next along every setting's curve, as "
           "two paired differences (the same seeds and episodes), one per metric: they "
           "agree when both have the same verdict (lower, higher or indistinguishable at "
           "95%).", ""]
  total = {k: sum(s[k] for s in ag["settings"]) for k in ("agree", "opposite", "one_moves")}
  n = sum(total.values())
  lines.append(f"- Over {n} steps in {len(ag['settings'])} settings: {total['agree']} "
               f"agree, {total['one_moves']} move only one metric, {total['opposite']} "
               "move them in opposite directions.")
  for st in ag["settings"]:
    odd = [x for x in st["steps"] if x["kind"] != "agree"]
    if not odd:
      continue
    parts = []
    for x in odd[:4]:
      parts.append(f"k {x['k_from']}→{x['k_to']}: {a} {x['a']['diff']:+.4f} ± "
                   f"{x['a']['ci95']:.4f} ({x['a']['verdict']}), {b} "
                   f"{x['b']['diff']:+.4f} ± {x['b']['ci95']:.4f} ({x['b']['verdict']})")
    more = f"; and {len(odd) - 4} more" if len(odd) > 4 else ""
    lines.append(f"- {st['group']}: " + "; ".join(parts) + more + ".")
  base = next(st for st in ag["settings"] if st["group"] == fits["base"])
  last = {}
  for key, m in (("a", a), ("b", b)):
    falls = [x["k_to"] for x in base["steps"] if x[key]["verdict"] == "lower"]
    last[m] = max(falls) if falls else None
  if all(v is not None for v in last.values()):
    ks = [x["k_to"] for x in base["steps"]]
    words = "; ".join(f"{metric_name(m)} up to k = {k}" for m, k in last.items())
    lines.append(f"- Base model, over k = {base['steps'][0]['k_from']}…{max(ks)}: the "
                 f"last step that still lowers each metric significantly: {words}.")
    if last[a] < last[b]:
      lines.append(f"  Beyond k = {last[a]} more inner steps still lower the "
                   f"{metric_name(b)} but not measurably the {metric_name(a)}.")
    elif last[b] < last[a]:
      lines.append(f"  Beyond k = {last[b]} more inner steps still lower the "
                   f"{metric_name(a)} but not measurably the {metric_name(b)}.")
  fit = {m: fits[m]["test_time"].get("bootstrap", {}).get("power_law_floor", {})
         for m in (a, b)}
  if all("param_ci" in f for f in fit.values()):
    lines.append("- Power law with floor on the base model's k-curve: " + "; ".join(
        f"{m}: α = {_f(f['estimate']['params']['alpha'])} "
        f"[{_f(f['param_ci']['alpha'][0])}, {_f(f['param_ci']['alpha'][1])}], E = "
        f"{_f(f['estimate']['params']['E'])}" for m, f in fit.items())
        + ". Exponents of different metrics need not agree; each holds over the "
        "measured k only.")
  return lines + [""]


def monotone_statement(values: Sequence, mean: Sequence[float],
                       ci: Sequence[float], axis: str, metric: str = "error"
                       ) -> Optional[str]:
  """Says so when error rises along an axis by more than the CIs allow."""
  rises = [(values[i], values[j]) for i in range(len(mean)) for j in range(i + 1, len(mean))
           if mean[j] - mean[i] > math.hypot(ci[i], ci[j])]
  if not rises:
    return None
  best = values[int(np.argmin(mean))]
  a, b = rises[0]
  return (f"the {metric} is not monotone along {axis}: it is lowest at {axis}={best} and "
          f"higher at {axis}={b} than at {axis}={a} beyond the 95% CIs, so a "
          "decreasing curve (every model fitted here) misdescribes this axis; the fits "
          "below describe its decreasing part at best.")


def _meta_section(res: dict, metric: str) -> list[str]:
  lines = ["### Meta-training compute (at test-time k = K_train)", ""]
  for axis, entry in res["meta_training"].items():
    pts = ", ".join(f"{axis}={v}: {_pm(m, c)} at {_f(f)} FLOPs" for v, m, c, f in zip(
        entry["values"], entry["mean"], entry["ci95"], entry["meta_training_flops"]))
    lines.append(f"- {axis}: {pts}.")
    mono = monotone_statement(entry["values"], entry["mean"], entry["ci95"], axis,
                              metric)
    if mono:
      lines.append(f"- Note: {mono}")
    lines += [""] + _curve_section(entry["fits"], metric, f"meta-training FLOPs "
                                   f"along {axis}") + [""]
  tasks = res["tasks"]
  if len(tasks) > 1:
    pts = ", ".join(f"tasks={t['tasks']}: {_pm(t['mean'], t['ci95'])}" for t in tasks)
    lines.append(f"- meta-training tasks (same FLOPs, different data; 0 means all or "
                 f"infinite), at k = K_train: {pts}.")
    pts = ", ".join(f"tasks={t['tasks']}: {_pm(t['k_max_mean'], t['k_max_ci95'])}"
                    for t in tasks)
    lines.append(f"- the same at k = {tasks[0]['k_max']}: {pts}.")
  return lines + [""]


def _verdict(d: dict, better: str = "lower (better)", worse: str = "higher (worse)") -> str:
  word = {"lower": better, "higher": worse}.get(d["verdict"], "indistinguishable")
  return f"{word} (difference {d['diff']:+.4f} ± {d['ci95']:.4f})"


def _counts(s: dict) -> str:
  parts = [f"{s[v]} {w}" for v, w in (("lower", "lower"), ("indistinguishable",
                                      "indistinguishable"), ("higher", "higher")) if s[v]]
  return ", ".join(parts)


def _iso_section(res: dict, metric: str) -> list[str]:
  iso = res["iso_flop"]
  lines = ["### Iso-FLOP: data or compute", "",
           "Differences are paired on the shared evaluation episodes, with the base curve "
           "interpolated in log FLOPs between its measured neighbours (95% intervals; "
           "each point's training seeds independent).", ""]
  for e in iso["test_time"]:
    s = e["summary"]
    if not s["n"]:
      lines.append(f"- {e['shots']} shots: no k of its curve costs as much as an inner "
                   "step of the base model within the base curve's range; nothing to "
                   "compare.")
      continue
    ks = [d["k"] for d in e["diffs"]]
    lines.append(
        f"- {e['shots']} shots against the base model's inner steps at equal adaptation "
        f"FLOPs, at {s['n']} matched points (its k = {min(ks)}…{max(ks)}, "
        f"{_f(s['x_min'])}–{_f(s['x_max'])} FLOPs per episode): more shots is "
        f"{_counts(s)}. At its k = {ks[0]}: {_verdict(e['diffs'][0])}; at k = {ks[-1]}: "
        f"{_verdict(e['diffs'][-1])}.")
  for e in iso["meta_training"]:
    name = f"{e['axis']}={e['value']}"
    t = e.get("as_trained")
    lines.append(
        f"- At {_f(e['meta_training_flops'])} meta-training FLOPs, {name} against the "
        f"K_train axis (K ≈ {_f(e['k_train_equivalent'], 2)}, interpolated): "
        + (f"each at its own test-time k = K_train: {_verdict(t)}" if t else
           "no matching test-time k") + ".")
    s = e["same_k_summary"]
    if s["n"]:
      lines.append(
          f"  - at the same test-time k on both arms ({s['n']} values, k = "
          f"{s['x_min']}…{s['x_max']}): {name} is {_counts(s)}; at k = {s['x_max']}: "
          f"{_verdict(e['same_k'][-1])}.")
  if len(lines) == 4:
    lines.append("- No shots or tasks points to compare at equal FLOPs.")
  return lines + [""]


def _interval_note(fits: dict) -> str:
  single = [g["group"] for g in fits["groups"] if len(g["seeds"]) < 2]
  multi = [g["group"] for g in fits["groups"] if len(g["seeds"]) >= 2]
  text = ("Intervals: 95% over training seeds and the evaluation episodes every seed "
          "shares (seeds × episodes crossed: variance components, with a t multiplier "
          "averaged over the components' degrees of freedom; metalearn.scaling.intervals).")
  if multi:
    text += f" Several seeds: {', '.join(multi)}."
  if single:
    text += (f" One seed ({', '.join(single)}): their intervals are over episodes only "
             "and cannot include training-seed variance.")
  return text


def _frontier_section(res: dict, metric: str) -> list[str]:
  fr = res.get("frontier", {})
  lines = ["### Compute frontier: which setting and k to buy", ""]
  if fr.get("adaptation"):
    pts = ", ".join(f"{g} (k={k0}" + (f"–{k1})" if k1 != k0 else ")")
                    for g, k0, k1, _ in plots_lib.runs(fr["adaptation"]))
    lines.append(f"- Lowest {metric} for its adaptation FLOPs per episode (the lower "
                 f"envelope over every setting and k >= 1): {pts}.")
  for n_test, env in fr.get("total", {}).items():
    pts = ", ".join(f"{g} (k={k0}" + (f"–{k1})" if k1 != k0 else ")")
                    for g, k0, k1, _ in plots_lib.runs(env))
    lines.append(f"- Against total FLOPs M + N_test·a with N_test = {int(float(n_test)):,} "
                 f"test episodes, the envelope is: {pts}.")
  for n_test, profiles in fr.get("profiles", {}).items():
    n = f"{int(float(n_test)):,}"
    if not profiles:
      lines.append(f"- Iso-FLOP profiles at N_test = {n}: no total budget lets 3 K_train "
                   "settings spend the rest within their measured k (the test-time FLOPs "
                   "N_test·a are too small or too large against the settings' "
                   "meta-training FLOPs), so no allocation optimum is measured there.")
      continue
    brk = [p for p in profiles if p["bracketed"] and p["optimum_fraction_ci"]]
    edge = [p for p in profiles if not p["bracketed"]]
    lo, hi = _f(profiles[0]["budget"]), _f(profiles[-1]["budget"])
    text = (f"- Iso-FLOP profiles at N_test = {n} ({len(profiles)} budgets, {lo}–{hi} "
            f"total FLOPs, 3+ K_train settings each): ")
    if brk:
      f = [p["optimum_fraction"] for p in brk]
      los = [p["optimum_fraction_ci"][0] for p in brk]
      his = [p["optimum_fraction_ci"][1] for p in brk]
      text += (f"at {len(brk)} budget(s) ({_f(brk[0]['budget'])}–{_f(brk[-1]['budget'])}) "
               f"the optimum meta-training share lies between {min(f):.2f} and "
               f"{max(f):.2f} (per-budget 95% intervals within [{min(los):.2f}, "
               f"{max(his):.2f}], resampling each setting's seeds and the shared "
               "episodes; one-seed settings add episode variance only)")
    if edge:
      text += (("; " if brk else "") + f"at {len(edge)} budget(s) the lowest error is at "
               "the profile's edge (" + ", ".join(sorted({p['lowest'] for p in edge}))
               + "), so the optimum lies outside the measured allocations")
    lines.append(text + ".")
  grid = fr.get("grid", {})
  if "skipped" in grid:
    lines.append(f"- No meta-training × test-time grid: {grid['skipped']}.")
  elif grid:
    for r in grid["exchange_rates"]:
      if r.get("overall_slope") is None:
        lines.append(f"- At {metric} {_f(r['level'])}: no iso-error line crosses enough "
                     "K_train settings to give an exchange rate.")
        continue
      ci = r.get("overall_slope_ci")
      ci_text = f" (95% CI [{_f(ci[0])}, {_f(ci[1])}])" if ci else " (no interval)"
      slope = r["overall_slope"]
      if ci and ci[0] <= 0 <= ci[1]:
        verdict = "the interval includes 0: no exchange between the two is established"
      elif slope < 0:
        verdict = (f"meta-training FLOPs substitute for test-time FLOPs: one more e-fold "
                   f"of meta-training saves {_f(-slope)} e-folds of test-time compute")
      else:
        verdict = ("positive: along this line more meta-training comes with more test-time "
                   "compute, so the error is not monotone in one of the two here")
      lines.append(f"- Along the {metric} = {_f(r['level'])} line of the K_train × k "
                   f"grid, d log(test-time FLOPs) / d log(meta-training FLOPs) = "
                   f"{_f(slope)}{ci_text}: {verdict}.")
    law = grid.get("law", {})
    if "params" in law:
      p = law["params"]
      ci = grid.get("law_bootstrap", {}).get("param_ci", {})
      fmt = lambda n: _f(p[n]) + (f" [{_f(ci[n][0])}, {_f(ci[n][1])}]" if n in ci
                                  and ci[n] and ci[n][0] is not None else "")
      lof = law.get("lack_of_fit", {})
      lines.append(f"- Two-variable law on that grid ({law['n']} points, Huber loss on "
                   f"log {metric}): E = {fmt('E')}, α (meta-training) = {fmt('alpha')}, "
                   f"β (test-time) = {fmt('beta')}"
                   + ("; the residuals reject this form (lack of fit), so read it as a "
                      "description, not a law" if lof.get("flag") else "")
                   + (f"; at a bound: {', '.join(k for k, v in law['at_bound'].items() if v)}"
                      if any(law.get("at_bound", {}).values()) else "") + ".")
  return lines + [""]


def _limits(fits: dict, context: dict) -> list[str]:
  out = []
  m = fits["metrics"][0]
  tt = fits[m]["test_time"]
  out.append(f"Any claim beyond C = {_f(max(tt['compute']))} adaptation FLOPs "
             f"(k = {max(tt['k'])}): the fits are descriptions of "
             f"{math.log10(max(tt['compute']) / min(tt['compute'])):.2f} decades of "
             "compute, and only the held-out test above speaks to extrapolation.")
  single = [g["group"] for g in fits["groups"] if len(g["seeds"]) < 2]
  if single:
    out.append(f"Training-seed variance for {len(single)} of {len(fits['groups'])} "
               "settings: they ran one seed, so their intervals cover evaluation "
               "episodes only, and differences between them may be seed noise.")
  out.append("Independence across k: the k-curve is measured on the same episodes, so "
             "the fits' residuals are correlated and AIC differences overstate the "
             "evidence somewhat; the bootstrap resamples episodes jointly (paired) to "
             "keep that correlation in the intervals.")
  if context.get("missing"):
    out.append(f"The settings that did not finish: {', '.join(context['missing'])} "
               "(the grid is reported as far as it ran).")
  out += context.get("limits", [])
  return out


def _csv(path: str, rows: Sequence[dict]) -> None:
  keys = sorted({k for r in rows for k in r})
  with atomic.open_for_write(path, newline="") as f:
    w = csv.DictWriter(f, fieldnames=keys)
    w.writeheader()
    for r in rows:
      w.writerow({k: json.dumps(v) if isinstance(v, (list, dict)) else v
                  for k, v in r.items()})


def _json(path: str, obj: Any) -> None:
  atomic.write_text(path, json.dumps(obj, indent=1, allow_nan=False))


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
  _json(os.path.join(workdir, "rows.json"), rows)
  np.savez_compressed(os.path.join(workdir, "per_episode.npz"),
                      **{k.replace("/", "__"): v.astype(np.float32)
                         for k, v in per_episode.items()})
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
