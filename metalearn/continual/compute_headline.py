"""The sentences the compute-on-a-fixed-stream report leads with, and the launch prints.

Generated from ``compute_analysis.analyse``'s result, as ``scaling.headline`` is from a
sweep's fits: which wins at equal FLOPs, more compute per example or a longer stream,
setting by setting with the interval over streams, and whether that holds over the whole
compared range; the exchange rate where it is defined; each axis's fit, or why there is
none. A sentence whose evidence is missing says what is missing.
"""

from typing import Optional

from metalearn.continual.compute_analysis import AXES, AXIS_NAMES
from metalearn.scaling.statements import aic_statement, fmt, pm


def _setting_name(s: dict) -> str:
  if s["replay_passes"] == 0:
    return f"k = {s['steps_per_example']}"
  if s["steps_per_example"] == 1:
    return f"r = {s['replay_passes']}"
  return f"k = {s['steps_per_example']} with r = {s['replay_passes']}"


def _axis_of(s: dict) -> str:
  if s["replay_passes"] == 0:
    return "steps_per_example"
  return "replay_passes" if s["steps_per_example"] == 1 else "both"


def _equal_flops_sentence(axis: str, cmp: list[dict], res: dict) -> Optional[str]:
  mine = [c for c in cmp if _axis_of(c["setting"]) == axis]
  if not mine:
    return None
  what = {"steps_per_example": "More SGD steps per example (k, no replay)",
          "replay_passes": "More replay passes (r, one step per example)",
          "both": "More steps with replay"}[axis]
  parts = []
  for c in mine:
    s = c["setting"]
    head = f"{_setting_name(s)} ({fmt(s['flops'])} FLOPs, error {pm(s['error'], s['ci95'])})"
    if not c["covered"]:
      parts.append(f"{head}: {c['reason']}")
      continue
    iv = c["interval"]
    diff = (f"difference {c['diff']:+.4f}" if iv is None else
            f"difference {iv['diff']:+.4f} [{iv['lo']:+.4f}, {iv['hi']:+.4f}]")
    word = {"lower": "the extra compute wins", "higher": "the longer stream wins",
            "indistinguishable": "indistinguishable",
            "no spread over streams": "the same on every stream"}.get(c["verdict"],
                                                                      c["verdict"])
    parts.append(f"{head} against the longer stream's {fmt(c['longer_error'], 4)} "
                 f"(interpolated between {c['between'][0]} and {c['between'][1]}): "
                 f"{diff}, {word}")
  verdicts = [c["verdict"] for c in mine if c["covered"]]
  covered = [c["setting"]["flops"] for c in mine if c["covered"]]
  if not verdicts:
    whole = "No setting lies inside the longer streams' FLOPs, so nothing is compared."
  elif len(set(verdicts)) == 1 and verdicts[0] in ("lower", "higher"):
    who = "the extra compute" if verdicts[0] == "lower" else "the longer stream"
    where = (f"At the one setting compared ({fmt(covered[0])} FLOPs)" if len(covered) == 1
             else f"Over the whole compared range ({fmt(min(covered))}–"
             f"{fmt(max(covered))} FLOPs, {len(covered)} settings)")
    whole = f"{where} {who} has the lower error, beyond the intervals."
  elif set(verdicts) == {"no spread over streams"}:
    whole = (f"No claim: every one of the {res['streams']} streams gave the same "
             "difference, so there is no interval.")
  else:
    say = {"lower": "the extra compute lower", "higher": "the longer stream lower",
           "indistinguishable": "indistinguishable",
           "no spread over streams": "no interval (every stream the same)"}
    counts = {v: verdicts.count(v) for v in dict.fromkeys(verdicts)}
    whole = (f"No claim holds over the whole compared range ({len(verdicts)} "
             "setting(s)): " + ", ".join(f"{say.get(k, k)} at {v}"
                                          for k, v in counts.items()) + ".")
  return (f"{what} against a longer stream at equal FLOPs, on the fixed stream's "
          f"{res['fixed_classes']} classes (95% intervals over {res['streams']} "
          f"streams): " + "; ".join(parts) + ". " + whole)


def _exchange_sentence(ex: list[dict]) -> Optional[str]:
  if not ex:
    return None
  parts = []
  for e in ex:
    name = _setting_name(e["setting"])
    if e["status"] != "crossed":
      parts.append(f"{name}: {e['status']} ({e['reason']})")
      continue
    ci = e.get("ratio_ci")
    ci_text = ("" if ci is None else " [" + ", ".join(
        fmt(x) if x is not None else ("below the range" if i == 0 else "beyond the range")
        for i, x in enumerate(ci)) + "]")
    parts.append(f"{name}: error {fmt(e['level'], 4)} reached by the longer streams at "
                 f"{fmt(e['longer_flops'])} FLOPs, {fmt(e['ratio'])}×{ci_text} the "
                 "setting's FLOPs")
  return ("Exchange rate (FLOPs of longer stream that buy a setting's error, over the "
          "setting's FLOPs; > 1: the extra compute is the cheaper way there; 95% "
          "intervals, bootstrap over streams): " + "; ".join(parts) + ".")


def _fit_sentence(axis: str, f: dict) -> str:
  name = f"Error against FLOPs along {AXIS_NAMES[axis]}"
  if "declined" in f:
    return f"{name}: {f['declined'][0].lower() + f['declined'][1:]}"
  ranked = [c for c in f["compare"] if c.get("rankable")]
  if not ranked:
    return f"{name}: fitted, but no form is rankable (see compute_fits.json)."
  best = ranked[0]
  text = (f"{name} ({f['n_points']} points, {fmt(f['compute'][0])}–"
          f"{fmt(f['compute'][-1])} FLOPs): {best['model']} ranks first by AIC (Akaike "
          f"weight {fmt(best['ic_weight'], 2)}); {aic_statement(f)}")
  return text + (f" But {f['monotone']}" if f.get("monotone") else "")


def headline(res: dict) -> list[str]:
  """The report's leading sentences, from ``compute_analysis.analyse``'s result."""
  cmp = res["equal_flops"]
  out = [_equal_flops_sentence(a, cmp, res) for a in ("steps_per_example",
                                                       "replay_passes", "both")]
  out.append(_exchange_sentence(res["exchange"]))
  out += [_fit_sentence(a, res["fits"][a]) for a in AXES]
  seen = res["points"]["seen"]
  if len(seen) > 1:
    out.append(f"Scored on every class seen (other classes than the fixed stream's, so "
               f"not compared at equal FLOPs), the longer streams' error goes from "
               f"{pm(seen[0]['error'], seen[0]['ci95'])} at n = "
               f"{seen[0]['stream_classes']} to {pm(seen[-1]['error'], seen[-1]['ci95'])}"
               f" at n = {seen[-1]['stream_classes']}.")
  return [s for s in out if s]
