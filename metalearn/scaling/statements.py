"""Sentences about fitted curves, each generated from a test that could have gone the
other way, with its threshold stated: |ΔAIC| < 2 is "indistinguishable", 2-10
"favoured", > 10 "strongly favoured" (Burnham & Anderson), between forms that may be
ranked (none of their parameters at a bound); extrapolation is judged against the
held-out points' own 95% intervals, never as a ratio between forms.
"""

import math
from typing import Optional, Sequence

import numpy as np

NAMES = {"power_law_floor": "power law with floor E + A·C^-α",
         "power_law": "pure power law A·C^-α",
         "sigmoid_log": "sigmoid in log C", "m4": "M4"}
METRIC_NAMES = {"error": "error (1 − accuracy)", "loss": "query loss",
                "mse": "query MSE"}
WORSE_RATIO = 1.25


def fmt(x: Optional[float], digits: int = 3) -> str:
  if x is None or (isinstance(x, float) and not math.isfinite(x)):
    return "–"
  return f"{x:.{digits}g}"


def pm(mean: Optional[float], ci: Optional[float]) -> str:
  return f"{fmt(mean, 4)} ± {fmt(ci, 2)}"


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
    out.append(f"power law with floor: α = {fmt(est['alpha'])} (95% CI "
               f"[{fmt(a_lo)}, {fmt(a_hi)}]), floor E = {fmt(est['E'])} "
               f"([{fmt(e_lo)}, {fmt(e_hi)}]), 95% over {over}, from "
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
    out.append(f"sigmoid in log C: floor E = {fmt(est['E'])} ([{fmt(lo)}, {fmt(hi)}]), "
               f"upper plateau U = {fmt(est['U'])}, slope s = {fmt(est['s'])} per e-fold.")
  return out


def _fit_table(fits: dict) -> list[str]:
  lines = ["| model | rank | parameters | AIC | ΔAIC | ΔAICc | Akaike weight |",
           "| --- | --- | --- | --- | --- | --- | --- |"]
  for f in fits["compare"]:
    params = ", ".join(f"{k}={fmt(v)}" + (" (at bound)" if k in f.get("at_bound", []) else "")
                       for k, v in f["params"].items())
    rank = f["rank"] if f.get("rank") else "not ranked"
    lines.append(f"| {f['model']} | {rank} | {params} | {fmt(f['aic'], 4)} | "
                 f"{fmt(f['delta_ic'], 3)} | {fmt(f.get('delta_aicc'), 3)} | "
                 f"{fmt(f['ic_weight'], 2)} |")
  return lines


def curve_section(fits: dict, metric: str, x_name: str) -> list[str]:
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
  known = known_floor_statement(fits)
  if known:
    lines.append(f"- Known floor: {known}")
  return lines


def known_floor_statement(fits: dict) -> Optional[str]:
  """The fitted floor E against the task family's known Bayes-optimal floor."""
  known = fits.get("known_floor")
  plf = fits.get("bootstrap", {}).get("power_law_floor", {})
  if not known or "param_ci" not in plf:
    return None
  value, source = known["value"], known["source"]
  lo, hi = plf["param_ci"]["E"]
  e = plf["estimate"]["params"]["E"]
  if lo is None or hi is None:
    return None
  if lo <= value <= hi:
    return (f"the task family's Bayes-optimal value is {fmt(value)} ({source}); the "
            f"fitted floor E = {fmt(e)} [{fmt(lo)}, {fmt(hi)}] is consistent with it.")
  side = "above" if lo > value else "below"
  what = ("so it is a floor of this learner (its model, meta-training and inner "
          "rate), not of the data" if side == "above" else
          "which no predictor can reach: the form or the range is wrong")
  return (f"the task family's Bayes-optimal value is {fmt(value)} ({source}); the fitted "
          f"floor E = {fmt(e)} [{fmt(lo)}, {fmt(hi)}] lies {side} it, {what}.")


def metric_name(metric: str) -> str:
  """A metric's name in words."""
  if metric.startswith("mse>"):
    return f"failure rate (fraction of tasks with query MSE > {metric[4:]})"
  return METRIC_NAMES.get(metric, metric)


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


def verdict(d: dict, better: str = "lower (better)", worse: str = "higher (worse)") -> str:
  word = {"lower": better, "higher": worse}.get(d["verdict"], "indistinguishable")
  return f"{word} (difference {d['diff']:+.4f} ± {d['ci95']:.4f})"


def counts(s: dict) -> str:
  parts = [f"{s[v]} {w}" for v, w in (("lower", "lower"), ("indistinguishable",
                                      "indistinguishable"), ("higher", "higher")) if s[v]]
  return ", ".join(parts)
