"""The report's sections about a sweep's axes: meta-training compute, data or compute at
equal FLOPs, the compute frontier, loss against capability, and what the data do not
support. Each sentence says the range it holds over.
"""

import math

from metalearn.scaling import plots as plots_lib
from metalearn.scaling.statements import counts, curve_section, fmt, metric_name, pm
from metalearn.scaling.statements import verdict
from metalearn.scaling.statements import monotone_statement

def agreement_section(fits: dict) -> list[str]:
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
        f"{m}: α = {fmt(f['estimate']['params']['alpha'])} "
        f"[{fmt(f['param_ci']['alpha'][0])}, {fmt(f['param_ci']['alpha'][1])}], E = "
        f"{fmt(f['estimate']['params']['E'])}" for m, f in fit.items())
        + ". Exponents of different metrics need not agree; each holds over the "
        "measured k only.")
  return lines + [""]


def meta_section(res: dict, metric: str) -> list[str]:
  lines = ["### Meta-training compute (at test-time k = K_train)", ""]
  for axis, entry in res["meta_training"].items():
    pts = ", ".join(f"{axis}={v}: {pm(m, c)} at {fmt(f)} FLOPs" for v, m, c, f in zip(
        entry["values"], entry["mean"], entry["ci95"], entry["meta_training_flops"]))
    lines.append(f"- {axis}: {pts}.")
    mono = monotone_statement(entry["values"], entry["mean"], entry["ci95"], axis,
                              metric)
    if mono:
      lines.append(f"- Note: {mono}")
    lines += [""] + curve_section(entry["fits"], metric, f"meta-training FLOPs "
                                   f"along {axis}") + [""]
  tasks = res["tasks"]
  if len(tasks) > 1:
    pts = ", ".join(f"tasks={t['tasks']}: {pm(t['mean'], t['ci95'])}" for t in tasks)
    lines.append(f"- meta-training tasks (same FLOPs, different data; 0 means all or "
                 f"infinite), at k = K_train: {pts}.")
    pts = ", ".join(f"tasks={t['tasks']}: {pm(t['k_max_mean'], t['k_max_ci95'])}"
                    for t in tasks)
    lines.append(f"- the same at k = {tasks[0]['k_max']}: {pts}.")
  return lines + [""]


def iso_section(res: dict, metric: str) -> list[str]:
  iso = res["iso_flop"]
  lines = ["### Iso-FLOP: data or compute", "",
           "Differences are paired on the shared evaluation episodes, with the base curve "
           "interpolated in log FLOPs between its measured neighbours (95% intervals; "
           "each point's training seeds independent).", ""]
  for e in iso["test_time"]:
    s = e["summary"]
    who = (f"{e['shots']} test-time shots (the base model)"
           if e.get("axis") == "test_shots" else f"{e['shots']} shots")
    if not s["n"]:
      lines.append(f"- {who}: no k of its curve costs as much as an inner "
                   "step of the base model within the base curve's range; nothing to "
                   "compare.")
      continue
    ks = [d["k"] for d in e["diffs"]]
    lines.append(
        f"- {who} against the base model's inner steps at equal adaptation "
        f"FLOPs, at {s['n']} matched points (its k = {min(ks)}…{max(ks)}, "
        f"{fmt(s['x_min'])}–{fmt(s['x_max'])} FLOPs per episode): more shots is "
        f"{counts(s)}. At its k = {ks[0]}: {verdict(e['diffs'][0])}; at k = {ks[-1]}: "
        f"{verdict(e['diffs'][-1])}.")
  for e in iso["meta_training"]:
    name = f"{e['axis']}={e['value']}"
    t = e.get("as_trained")
    lines.append(
        f"- At {fmt(e['meta_training_flops'])} meta-training FLOPs, {name} against the "
        f"K_train axis (K ≈ {fmt(e['k_train_equivalent'], 2)}, interpolated): "
        + (f"each at its own test-time k = K_train: {verdict(t)}" if t else
           "no matching test-time k") + ".")
    s = e["same_k_summary"]
    if s["n"]:
      lines.append(
          f"  - at the same test-time k on both arms ({s['n']} values, k = "
          f"{s['x_min']}…{s['x_max']}): {name} is {counts(s)}; at k = {s['x_max']}: "
          f"{verdict(e['same_k'][-1])}.")
  if len(lines) == 4:
    lines.append("- No shots or tasks points to compare at equal FLOPs.")
  return lines + [""]


def data_section(res: dict, metric: str) -> list[str]:
  """Test-time shots on the same model (with the Bayes-optimal value where known), what
  they are worth in inner steps, and meta-training tasks jointly with length."""
  shots, worth = res.get("test_shots"), res["iso_flop"].get("shot_worth")
  traj = [t for ts in (res.get("trajectories") or {}).values() for t in ts]
  if not (shots or traj):
    return []
  lines = ["### Data: test-time shots on one model; meta-training length per setting", ""]
  for t in shots or []:
    gap = (f"; Bayes-optimal {fmt(t['bayes'], 4)}, gap {fmt(t['mean'] - t['bayes'])} "
           f"at k = {t['k']} and {fmt(t['k_max_mean'] - t['bayes'])} at k = {t['k_max']}"
           if t["bayes"] is not None else "")
    lines.append(f"- {t['shots']} shot(s): {pm(t['mean'], t['ci95'])} at k = {t['k']}, "
                 f"{pm(t['k_max_mean'], t['k_max_ci95'])} at k = {t['k_max']}{gap}.")
  for w in worth or []:
    extra = w["shots"] - w["base_shots"]
    head = (f"- {w['shots']} shots at k = {w['k']} ({pm(w['mean'], w['ci95'])}, "
            f"{fmt(w['adaptation_flops'])} adaptation FLOPs): ")
    if "beyond_range" in w:
      b = w["beyond_range"]
      worth = (f"{extra} extra shot(s) per class are worth more than "
               f"{fmt(b['flops_ratio_above'], 2)}× these adaptation FLOPs spent on inner "
               "steps (a lower bound)" if b["verdict"] == "lower" else
               "whether they are worth more than all the measured inner steps is not "
               "established")
      lines.append(head + f"the base model at {w['base_shots']} shot(s) never gets as low "
                   f"within its measured k; against its best (k = {b['base_k']}) the "
                   f"shots point is {verdict(b)}: {worth}.")
    else:
      lo, hi = w["k_equivalent_range"]
      rng = (f" (k from {fmt(lo, 2) if lo else 'below 1'} to "
             f"{fmt(hi, 2) if hi else 'beyond the range'} over the shots point's 95% "
             "interval; the base curve's own noise not included)")
      lines.append(head + f"the base model reaches the same mean at k ≈ "
                   f"{fmt(w['base_k_equivalent'], 2)}{rng}: {extra} extra shot(s) per "
                   f"class are worth {fmt(w['flops_ratio'], 2)}× these adaptation FLOPs "
                   "in inner steps.")
  for t in traj:
    name = plots_lib.run_name(t)
    pts = ", ".join(f"{s}: {pm(m, c)}" for s, m, c in zip(t["steps"], t["mean"],
                                                           t["ci95"]))
    d = t["last_minus_best"]
    tail = (f"it overfits: the last checkpoint is worse than the best (steps = "
            f"{t['best_steps']}) by {d['diff']:+.4f} ± {d['ci95']:.4f}"
            if t["overfits"] else
            f"no overfitting measured (last minus best, steps = {t['best_steps']}: "
            f"{d['diff']:+.4f} ± {d['ci95']:.4f})")
    lines.append(f"- {name}, {metric} at k = {t['k']} by meta-training steps: {pts}; "
                 f"{tail}.")
  return lines + [""]


def size_steps_section(res: dict, metric: str) -> list[str]:
  """Model width against meta-training length at equal meta-training FLOPs."""
  ss = res.get("size_steps") or {}
  if not ss.get("points"):
    return []
  lines = ["### Model width against meta-training length at equal meta-training FLOPs",
           "", f"Each width's run is scored along its meta-training steps at k = "
           f"{ss['k']}; at each budget the widths whose runs pass through it are compared "
           "(interpolated in log FLOPs between neighbouring checkpoints, none beyond its "
           "run): a smaller model trained longer against a larger one trained shorter. "
           "Gap: the runner-up's " + metric_name(metric) + " minus the best's, 95% "
           "interval with episodes paired and the two widths' seeds independent.", "",
           f"| meta-training FLOPs | {metric_name(metric)} by width | best | gap to the "
           "runner-up |", "| --- | --- | --- | --- |"]
  for p in ss["points"]:
    by = ", ".join(f"{w:g}: {pm(m, c)}" for w, m, c in zip(p["sizes"], p["means"],
                                                          p["ci95"]))
    gap = (f"{p['gap']:+.3g} ± {p['gap_ci95']:.2g} (width {p['runner_up']:g})"
           + ("" if p["decided"] else ", not decided"))
    lines.append(f"| {fmt(p['budget'])} | {by} | {p['best']:g} | {gap} |")
  sm = ss["summary"]
  ranges = "; ".join(f"width {r['size']:g} from {fmt(r['start'])} to {fmt(r['to'])} "
                     f"({r['decided']} of {r['n']} budgets decided)" for r in sm["ranges"])
  lines += ["", f"- Best width by budget: {ranges}. The best width "
            + ("grows with the budget over the whole measured range."
               if sm["monotone"] else "does not grow monotonically with the budget."),
            "- The comparison is between the measured widths only: the best width at a "
            "budget is not a fitted optimum between them, and a budget only one run "
            "reaches is not compared.", ""]
  return lines


def interval_note(fits: dict) -> str:
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


def frontier_section(res: dict, metric: str) -> list[str]:
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
  grid = fr.get("grid", {})
  axis = {"steps": "meta-training-steps", "k_train": "K_train"}[grid.get("axis",
                                                                     "k_train")]
  for n_test, profiles in fr.get("profiles", {}).items():
    n = f"{int(float(n_test)):,}"
    if not profiles:
      lines.append(f"- Iso-FLOP profiles at N_test = {n}: no total budget lets 3 {axis} "
                   "settings spend the rest within their measured k (the test-time FLOPs "
                   "N_test·a are too small or too large against the settings' "
                   "meta-training FLOPs), so no allocation optimum is measured there.")
      continue
    brk = [p for p in profiles if p["bracketed"] and p["optimum_fraction_ci"]]
    edge = [p for p in profiles if not p["bracketed"]]
    lo, hi = fmt(profiles[0]["budget"]), fmt(profiles[-1]["budget"])
    text = (f"- Iso-FLOP profiles at N_test = {n} ({len(profiles)} budgets, {lo}–{hi} "
            f"total FLOPs, 3+ {axis} settings each): ")
    if brk:
      f = [p["optimum_fraction"] for p in brk]
      los = [p["optimum_fraction_ci"][0] for p in brk]
      his = [p["optimum_fraction_ci"][1] for p in brk]
      where = (f"at T = {fmt(brk[0]['budget'])} the optimum meta-training share is "
               f"{f[0]:.2f} (95% interval [{los[0]:.2f}, {his[0]:.2f}]" if len(brk) == 1
               else f"at {len(brk)} budgets ({fmt(brk[0]['budget'])}–"
               f"{fmt(brk[-1]['budget'])}) the optimum meta-training share lies between "
               f"{min(f):.2f} and {max(f):.2f} (per-budget 95% intervals within "
               f"[{min(los):.2f}, {max(his):.2f}]")
      text += (where + ", resampling each setting's seeds and the shared episodes; "
               "one-seed settings add episode variance only)")
    if edge:
      text += (("; " if brk else "") + f"at {len(edge)} budget(s) the lowest error is at "
               "the profile's edge (" + ", ".join(sorted({p['lowest'] for p in edge}))
               + "), so the optimum lies outside the measured allocations")
    lines.append(text + ".")
  if "skipped" in grid:
    lines.append(f"- No meta-training × test-time grid: {grid['skipped']}.")
  elif grid:
    for r in grid["exchange_rates"]:
      if r.get("overall_slope") is None:
        lines.append(f"- At {metric} {fmt(r['level'])}: no iso-error line crosses enough "
                     f"{axis} settings to give an exchange rate.")
        continue
      ci = r.get("overall_slope_ci")
      ci_text = f" (95% CI [{fmt(ci[0])}, {fmt(ci[1])}])" if ci else " (no interval)"
      slope = r["overall_slope"]
      if ci and ci[0] <= 0 <= ci[1]:
        verdict = "the interval includes 0: no exchange between the two is established"
      elif slope < 0:
        verdict = (f"meta-training FLOPs substitute for test-time FLOPs: one more e-fold "
                   f"of meta-training saves {fmt(-slope)} e-folds of test-time compute")
      else:
        verdict = ("positive: along this line more meta-training comes with more test-time "
                   "compute, so the error is not monotone in one of the two here")
      lines.append(f"- Along the {metric} = {fmt(r['level'])} line of the {axis} × k "
                   f"grid, d log(test-time FLOPs) / d log(meta-training FLOPs) = "
                   f"{fmt(slope)}{ci_text}: {verdict}.")
    law = grid.get("law", {})
    if "params" in law:
      p = law["params"]
      ci = grid.get("law_bootstrap", {}).get("param_ci", {})
      fmt_ci = lambda n: fmt(p[n]) + (f" [{fmt(ci[n][0])}, {fmt(ci[n][1])}]" if n in ci
                                  and ci[n] and ci[n][0] is not None else "")
      lof = law.get("lack_of_fit", {})
      lines.append(f"- Two-variable law on that grid ({law['n']} points, Huber loss on "
                   f"log {metric}): E = {fmt_ci('E')}, α (meta-training) = {fmt_ci('alpha')}, "
                   f"β (test-time) = {fmt_ci('beta')}"
                   + ("; the residuals reject this form (lack of fit), so read it as a "
                      "description, not a law" if lof.get("flag") else "")
                   + (f"; at a bound: {', '.join(k for k, v in law['at_bound'].items() if v)}"
                      if any(law.get("at_bound", {}).values()) else "") + ".")
  return lines + [""]


def limits(fits: dict, context: dict) -> list[str]:
  out = []
  m = fits["metrics"][0]
  tt = fits[m]["test_time"]
  out.append(f"Any claim beyond C = {fmt(max(tt['compute']))} adaptation FLOPs "
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


def plateau_statement(p, metric: str):
  """Whether the flat end of the k-curve is an optimisation or an information plateau."""
  if not p:
    return None
  if "skipped" in p:
    return f"none measured: {p['skipped']} (k = {p['k_to']})."
  q, sup = p["query"], p["support"]
  head = (f"from k = {p['k_from']} (the last k at which the {metric} still fell "
          f"significantly) to k = {p['k_to']}, the {metric} changes by "
          f"{q['diff']:+.4f} ± {q['ci95']:.4f} and the support loss by "
          f"{sup['diff']:+.4f} ± {sup['ci95']:.4f} ({fmt(sup['start'])} → "
          f"{fmt(sup['end'])})")
  if p["support_falls"] and not p["query_falls"]:
    return (head + ": the support set is still being fitted and the predictions do not "
            "improve, an information plateau (more inner steps cannot replace data "
            "here), not an optimisation one.")
  if not p["support_falls"]:
    return head + ": the support loss has stopped falling too, an optimisation plateau."
  return head + "."
