"""The few sentences a sweep's report leads with, and the main job prints.

Each sentence is generated from the fits (``analysis.analyse``) and states the range it
holds over and its interval: the base model's test-time curve and its fitted floor
against the task family's known floor, what extra test-time shots are worth in inner
steps, meta-training length, and the exchange rate between meta-training and test-time
compute. A sentence whose evidence is missing is left out, not softened.
"""

from typing import Optional

from metalearn.scaling import plots as plots_lib
from metalearn.scaling.statements import fmt, metric_name, pm


def _test_time(tt: dict, metric: str) -> Optional[str]:
  k, mean, ci = tt["k"], tt["mean"], tt["ci95"]
  first = next((i for i, kk in enumerate(k) if kk >= 1), None)
  if first is None:
    return None
  text = (f"Test-time compute: the base model's {metric_name(metric)} goes from "
          f"{pm(mean[first], ci[first])} at k = {k[first]} to {pm(mean[-1], ci[-1])} at "
          f"k = {k[-1]} inner steps ({tt['n_seeds']} seeds × {tt['episodes']} episodes)")
  plf = tt.get("bootstrap", {}).get("power_law_floor", {})
  known = tt.get("known_floor")
  if "param_ci" in plf and None not in plf["param_ci"]["E"]:
    lo, hi = plf["param_ci"]["E"]
    text += (f"; a power law with floor puts the floor at "
             f"{fmt(plf['estimate']['params']['E'])} [{fmt(lo)}, {fmt(hi)}]")
    if known:
      v = known["value"]
      where = ("consistent with" if lo <= v <= hi else "above" if lo > v else "below")
      text += (f", {where} the Bayes-optimal {fmt(v)}"
               + (": a floor of this learner, not of the data" if where == "above"
                  else ": no predictor gets there, so the fitted form or its range is "
                  "wrong" if where == "below" else ""))
  pred = tt.get("predicted")
  if pred and pred["n"]:
    pts = [p for p in pred["points"] if p["k"] >= 1]
    low = min(pts, key=lambda p: p["predicted"])
    text += (f"; the measured curve is within its interval of gradient descent's exact "
             f"expected curve at {sum(p['inside'] for p in pts)} of {len(pts)} k, and that "
             f"curve is lowest at k = {low['k']} ({fmt(low['predicted'])})"
             + (" and rises after it" if pts[-1]["predicted"] > low["predicted"] else ""))
  plateau = tt.get("plateau") or {}
  if "query" in plateau and not plateau["query_falls"] and plateau["support_falls"]:
    text += (f"; from k = {plateau['k_from']} on, the support loss still falls while the "
             f"{metric_name(metric)} does not (an information plateau)")
  return text + "."


def _shots(res: dict, metric: str) -> Optional[str]:
  worth = res["iso_flop"].get("shot_worth") or []
  shots = {t["shots"]: t for t in res.get("test_shots") or []}
  if not worth:
    return None
  parts = []
  for w in worth:
    t = shots.get(w["shots"])
    what = f"{w['shots']} shots at k = {w['k']}: {pm(w['mean'], w['ci95'])}"
    if "beyond_range" in w:
      b = w["beyond_range"]
      what += (f", below the base shots' best (k = {b['base_k']}) by "
               f"{-b['diff']:.3g} ± {b['ci95']:.2g}: worth more than "
               f"{fmt(b['flops_ratio_above'], 2)}× its adaptation FLOPs in inner steps"
               if b["verdict"] == "lower" else
               f", not distinguishable from the base shots' best (k = {b['base_k']}; "
               f"difference {b['diff']:+.3g} ± {b['ci95']:.2g})")
    else:
      what += (f", which the base shots reach at k ≈ {fmt(w['base_k_equivalent'], 2)}: "
               f"worth {fmt(w['flops_ratio'], 2)}× its adaptation FLOPs")
    if t:
      what += (f"; at k = {t['k_max']}: {pm(t['k_max_mean'], t['k_max_ci95'])}"
               + (f", Bayes-optimal {fmt(t['bayes'], 3)}" if t.get("bayes") is not None
                  else ""))
    parts.append(what)
  base = worth[0]["base_shots"]
  return (f"Test-time data on the same model ({base} shot(s) at training): "
          + "; ".join(parts) + ".")


def _steps(res: dict, metric: str) -> Optional[str]:
  e = res["meta_training"].get("steps")
  if not e or len(e["values"]) < 2:
    return None
  return (f"Meta-training length: at k = K_train the {metric_name(metric)} goes from "
          f"{pm(e['mean'][0], e['ci95'][0])} after {e['values'][0]} meta-steps to "
          f"{pm(e['mean'][-1], e['ci95'][-1])} after {e['values'][-1]} "
          f"({fmt(e['meta_training_flops'][0])} → {fmt(e['meta_training_flops'][-1])} "
          "meta-training FLOPs).")


def _exchange(res: dict, metric: str) -> Optional[str]:
  grid = res["frontier"].get("grid") or {}
  rates = [r for r in grid.get("exchange_rates", []) if r.get("overall_slope") is not None]
  if not rates:
    return None
  axis = {"steps": "meta-training steps", "k_train": "K_train"}[grid.get("axis",
                                                                      "k_train")]
  parts = []
  for r in rates:
    ci = r.get("overall_slope_ci")
    ci_text = f" [{fmt(ci[0])}, {fmt(ci[1])}]" if ci else " (no interval)"
    parts.append(f"at {metric_name(metric)} {fmt(r['level'])}: "
                 f"{fmt(r['overall_slope'])}{ci_text}")
  return (f"Exchange rate on the {axis} × k grid, d log(test-time FLOPs) / d log("
          f"meta-training FLOPs) along an iso-{metric_name(metric)} line: "
          + "; ".join(parts) + " (below 0: meta-training substitutes for test-time "
          "compute).")


def _size_steps(res: dict, metric: str) -> Optional[str]:
  ss = res.get("size_steps") or {}
  ranges = (ss.get("summary") or {}).get("ranges")
  if not ranges:
    return None
  sm = ss["summary"]
  parts = [f"{r['size']:g} from {fmt(r['start'])} to {fmt(r['to'])}" for r in ranges]
  grows = ("grows with the budget" if sm["monotone"] else
           "does not grow monotonically with the budget")
  return (f"Model width against meta-training length at equal meta-training FLOPs "
          f"(k = {ss['k']}): the width with the lowest {metric_name(metric)} "
          f"{grows}: " + "; ".join(parts) + f" FLOPs; the runner-up is worse beyond its "
          f"95% interval at {sm['decided']} of {sm['budgets']} budgets.")


def _tasks_length(res: dict, metric: str) -> Optional[str]:
  traj = (res.get("trajectories") or {}).get("tasks")
  if not traj:
    return None
  parts = []
  for t in traj:
    d = t["last_minus_best"]
    over = (f", overfits (last minus best {d['diff']:+.3g} ± {d['ci95']:.2g})"
            if t["overfits"] else "")
    parts.append(f"{plots_lib.run_name(t)}: {pm(t['mean'][-1], t['ci95'][-1])} after "
                 f"{t['steps'][-1]}{over}")
  return (f"Meta-training data × length at k = {traj[0]['k']}: " + "; ".join(parts)
          + ".")


def headline(fits: dict) -> list[str]:
  """The report's leading sentences for the first analysed metric."""
  metric = fits["metrics"][0]
  res = fits[metric]
  out = [_test_time(res["test_time"], metric), _shots(res, metric),
         _steps(res, metric), _size_steps(res, metric), _tasks_length(res, metric),
         _exchange(res, metric)]
  return [s for s in out if s]
