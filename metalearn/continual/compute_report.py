"""The compute-on-a-fixed-stream report: finds a compute run's rows, analyses, writes.

``write`` reads the rows (and per-stream values) that ``compute.run`` wrote for a config
into ``<workdir>/eval/``, analyses them (``compute_analysis.analyse``) and writes
``<workdir>/compute_fits.json``, ``<workdir>/plots/compute.png`` and
``<workdir>/compute_report.md``. It never reruns a stream, so a finished grid can be
re-analysed (``launch.continual --mode=compute_report``). The rows are selected by the
settings they carry (the protocol, the grid, the checkpoint), not by file names.
"""

import datetime
import glob
import itertools
import json
import os
from typing import Optional

import matplotlib

matplotlib.use("Agg")
import matplotlib.ticker  # noqa: E402
from matplotlib import pyplot as plt  # noqa: E402
import ml_collections  # noqa: E402
import numpy as np  # noqa: E402

from metalearn import atomic  # noqa: E402
from metalearn.continual import compute_analysis as analysis_lib  # noqa: E402
from metalearn.continual import compute_headline  # noqa: E402
from metalearn.continual import evaluate as evaluate_lib  # noqa: E402
from metalearn.errors import MetalearnError  # noqa: E402
from metalearn.run import workdir as workdir_lib  # noqa: E402
from metalearn.scaling import plots as plots_lib  # noqa: E402
from metalearn.scaling.statements import curve_section, fmt, pm  # noqa: E402

REPORT = "compute_report.md"
FITS = "compute_fits.json"
PLOT = os.path.join("plots", "compute.png")
_SAME = ("split", "streams", "seed", "online", "lr", "optimizer", "reset_head", "batch",
         "stream")  # Protocol settings every row of one compute run shares.


def _matches(rows: list[dict], config: ml_collections.ConfigDict) -> bool:
  """Whether ``rows`` are this config's compute grid (protocol, grid and longer)."""
  p = evaluate_lib.protocol(config, shuffle=False, epochs=1)
  q = config.compute
  fixed = int(q.classes)
  want = {f"eval_{k}": (list(v) if isinstance(v, tuple) else v)
          for k, v in vars(p).items() if k in _SAME}
  want.update(algorithm=config.algorithm, model=config.model.name, task=config.task)
  if any(r.get(k) != v for r in rows for k, v in want.items()):
    return False
  grid = {(r["steps_per_example"], r["replay_passes"]) for r in rows
          if r["axis"] != "stream_classes" and r["stream_classes"] == fixed}
  longer = {r["stream_classes"] for r in rows if r["axis"] == "stream_classes"}
  return (grid == {(int(k), int(r)) for k, r in itertools.product(q.steps_per_example,
                                                                  q.replay_passes)}
          and longer == {int(n) for n in q.longer if int(n) > fixed})


def find_rows(config: ml_collections.ConfigDict, workdir: str,
              step: Optional[int] = None) -> tuple[str, list[dict], Optional[dict]]:
  """The rows (and per-stream values) of this config's compute run: at checkpoint
  ``step``, or the latest checkpoint that has one.

  Returns:
    ``(path of the rows, rows, values or None)``.

  Raises:
    MetalearnError: no compute run of this config in the workdir.
  """
  found = []
  pattern = os.path.join(workdir, workdir_lib.EVAL, "continual_compute_*.jsonl")
  for path in sorted(glob.glob(pattern)):
    with open(path) as f:
      rows = [json.loads(line) for line in f if line.strip()]
    if rows and _matches(rows, config) and (step is None
                                            or rows[0].get("checkpoint_step") == step):
      found.append((rows[0].get("checkpoint_step") or -1, path, rows))
  if not found:
    at = "" if step is None else f" at --checkpoint_step={step}"
    raise MetalearnError(
        f"--workdir={workdir}: no compute rows for this config{at} under "
        f"{os.path.dirname(pattern)} (run --mode=compute first)")
  _, path, rows = max(found, key=lambda x: x[0])
  npz = path[:-len(".jsonl")] + ".npz"
  values = dict(np.load(npz)) if os.path.exists(npz) else None
  return path, rows, values


def provenance(workdir: str) -> dict:
  """Command, date, machine and load of the invocation that ran the grid (``run.json``)."""
  info = workdir_lib.read_json(workdir, workdir_lib.RUN) or {}
  runs = [i for i in info.get("invocations", []) if i.get("mode") == "compute"]
  if not runs:
    return {}
  last = runs[-1]
  m = last.get("machine", {})
  loads = " ".join(f"{x:.2f}" for x in m.get("load_average", []))
  return {"command": last["command"], "date": f"{last['date']} (UTC, when it finished)",
          "machine": f"{m.get('cpu')}, {m.get('cpu_count')} CPUs, {m.get('backend')}, "
                     f"jax {m.get('jax')}",
          "wall time": f"{last['seconds']:.0f} s",
          "load average (1/5/15 min) at the end": loads or "not recorded"}


def _axis_lines(res: dict) -> list[str]:
  lines = ["| axis | setting | FLOPs per stream | error (95% CI over streams) |",
           "| --- | --- | --- | --- |"]
  names = dict(steps_per_example="steps per example (no replay)",
               replay_passes="replay passes (1 step/example)",
               stream_classes="longer stream (first L classes)",
               seen="longer stream (every class seen)")
  for axis, name in names.items():
    for p in res["points"][axis]:
      label = (f"n = {p['stream_classes']}" if axis in ("stream_classes", "seen")
               else p["label"])
      lines.append(f"| {name} | {label} | {fmt(p['flops'])} | "
                   f"{pm(p['error'], p['ci95'])} |")
  both = [p for p in res["points"]["grid"]
          if p["steps_per_example"] > 1 and p["replay_passes"] > 0]
  for p in both:
    lines.append(f"| both (on no axis) | {p['label']} | {fmt(p['flops'])} | "
                 f"{pm(p['error'], p['ci95'])} |")
  return lines


def _equal_lines(res: dict) -> list[str]:
  lines = ["| setting | FLOPs | error | longer stream at equal FLOPs | setting − longer "
           "(95% CI) | verdict |", "| --- | --- | --- | --- | --- | --- |"]
  for c in res["equal_flops"]:
    s = c["setting"]
    if not c["covered"]:
      lines.append(f"| {s['label']} | {fmt(s['flops'])} | {pm(s['error'], s['ci95'])} | "
                   f"not covered | – | {c['reason']} |")
      continue
    iv = c["interval"]
    ci = "–" if iv is None else f"{iv['diff']:+.4f} [{iv['lo']:+.4f}, {iv['hi']:+.4f}]"
    lines.append(f"| {s['label']} | {fmt(s['flops'])} | {pm(s['error'], s['ci95'])} | "
                 f"{fmt(c['longer_error'], 4)} ({c['between'][0]} … {c['between'][1]}, "
                 f"weight {c['weight']:.2f}) | {ci} | {c['verdict']} |")
  return lines


def _exchange_lines(res: dict) -> list[str]:
  lines = ["| setting | its FLOPs | its error | longer-stream FLOPs at that error "
           "(95% CI) | ratio (95% CI) | status |", "| --- | --- | --- | --- | --- | --- |"]
  for e in res["exchange"]:
    s = e["setting"]
    if e["status"] != "crossed":
      lines.append(f"| {s['label']} | {fmt(s['flops'])} | {fmt(e['level'], 4)} | – | – | "
                   f"{e['status']}: {e['reason']} |")
      continue

    def ci(key):
      v = e.get(key)
      if v is None:
        return ""
      ends = [fmt(x) if x is not None else ("below range" if i == 0 else "beyond range")
              for i, x in enumerate(v)]
      return f" [{ends[0]}, {ends[1]}]"

    share = e.get("outside_range")
    lines.append(f"| {s['label']} | {fmt(s['flops'])} | {fmt(e['level'], 4)} | "
                 f"{fmt(e['longer_flops'])}{ci('longer_flops_ci')} | "
                 f"{fmt(e['ratio'])}{ci('ratio_ci')} | crossed"
                 + (f" ({share:.0%} of replicates outside the range)" if share else "")
                 + " |")
  return lines


def markdown(res: dict, context: dict) -> str:
  """The report: headline, what was run, tables, fits, limits, the figure."""
  metric = "error" if res["metric"] == "accuracy" else "mse"
  lines = [f"# {context.get('title', 'Compute on a fixed stream')}", "",
           "## Headline", ""] + [f"- {s}" for s in res["headline"]] + [""]
  lines += ["## What was run", ""] + [f"- {s}" for s in context.get("protocol", [])]
  lines += [f"- Error is {res['error']} on the held-out examples, at the end of each "
            f"stream, of the fixed stream's first {res['fixed_classes']} classes (the "
            "longer streams' rows scored on 'first'); every setting ran on the same "
            f"{res['streams']} streams (the same classes in the same order).",
            "- FLOPs per stream: the online phase only (the fixed forward passes once per "
            "example, the online SGD steps, the replay steps; `continual/costs.py`); "
            "scoring is not counted.",
            "- Intervals: a point's is the row's, 1.96·sd/√streams over streams; a "
            "difference at equal FLOPs is a per-stream contrast with a t interval over "
            "streams (`scaling.intervals.contrast`); the exchange rate's is a rescaled "
            "bootstrap over streams widened by t/z (`compute_analysis.exchange`). All "
            "are over streams of one meta-trained model: they do not include the spread "
            "over meta-training seeds.", ""]
  prov = context.get("provenance")
  if prov:
    lines += ["## Provenance", ""] + [f"- {k}: {v}" for k, v in prov.items()] + [""]
  lines += ["## Error against FLOPs per stream", ""] + _axis_lines(res) + [""]
  lines += ["## More compute or more data, at equal FLOPs", "",
            "The longer streams' error on the same classes, interpolated linearly in log "
            "FLOPs between the two longer-stream points around each setting's FLOPs; a "
            "setting outside their range is not compared (no extrapolation). Below 0: "
            "the extra compute has the lower error.", ""] + _equal_lines(res) + [""]
  lines += ["### Exchange rate", "",
            "The FLOPs at which the longer streams first reach a setting's error "
            "(linear in log FLOPs between measured points), over the setting's own "
            "FLOPs: above 1 the extra compute is the cheaper way to that error. Given "
            "only where the longer streams' curve crosses that error inside its range.",
            ""] + _exchange_lines(res) + [""]
  lines += ["## Fits", ""]
  for axis in analysis_lib.AXES:
    f = res["fits"][axis]
    lines += [f"### Along {analysis_lib.AXIS_NAMES[axis]}", ""]
    if "y" in f:  # Given to the scaling analysis (which may still have declined).
      lines += curve_section(f, metric, "FLOPs per stream")
    else:
      lines.append(f["declined"][0].upper() + f["declined"][1:])
    if f.get("monotone"):
      lines += ["", f"Note: {f['monotone']}"]
    lines.append("")
  check = res.get("longer_reproduces_base")
  lines += ["## Checks", "",
            "- The longer streams continue the fixed stream (the same first classes), so "
            "after its classes their learner is the base learner: largest difference "
            "over streams in error "
            + ("not measured (no per-stream values)." if check is None else
               f"{check:.3g} (0 up to float noise expected)."), ""]
  lines += ["## What the data do not support", ""]
  lines += [f"- {s}" for s in _limits(res) + list(context.get("limits", []))]
  lines += ["", "## Plot", "", f"![compute]({PLOT})", ""]
  return "\n".join(lines)


def _limits(res: dict) -> list[str]:
  out = []
  longer = res["points"]["stream_classes"]
  if longer:
    out.append(f"Nothing beyond {fmt(longer[-1]['flops'])} FLOPs per stream (the longest "
               f"stream, n = {longer[-1]['stream_classes']}) is compared with a longer "
               "stream: no extrapolation.")
  if res["streams"] < 10:
    out.append(f"Only {res['streams']} streams: the intervals are wide and their "
               "estimates of the spread noisy.")
  declined = [analysis_lib.AXIS_NAMES[a] for a in analysis_lib.AXES
              if "compare" not in res["fits"][a]]
  if declined:
    out.append("No scaling law along " + ", ".join(declined) + " (too few points under "
               "the fitting standards).")
  out.append("One meta-trained model: the intervals cover the streams, not meta-training "
             "seeds.")
  return out


def _short(p: dict) -> str:
  if p["axis"] == "stream_classes":
    return f"n={p['stream_classes']}"
  if p["replay_passes"] == 0:
    return f"k={p['steps_per_example']}"
  return (f"r={p['replay_passes']}" if p["steps_per_example"] == 1 else
          f"k={p['steps_per_example']},r={p['replay_passes']}")


def plot(res: dict, path: str, footer: str = "", title: str = "") -> None:
  """Error against FLOPs per stream, one line per axis, 95% bars over streams."""
  fig, ax = plt.subplots(figsize=(8.5, 6.4))
  rate = res["metric"] == "accuracy"
  pts = res["points"]
  fixed = res["fixed_classes"]

  def bars(ps, **kw):
    x = np.array([p["flops"] for p in ps])
    y = np.array([p["error"] for p in ps])
    ci = np.nan_to_num(np.array([p["ci95"] if p["ci95"] is not None else np.nan
                                 for p in ps], float))
    err = (np.stack([np.minimum(ci, np.maximum(y, 0)), np.minimum(ci, np.maximum(1 - y, 0))])
           if rate else ci)  # A rate's bars clipped to [0, 1].
    ax.errorbar(x, y, err, capsize=2.5, ms=5, **kw)

  seen = pts["seen"][1:]
  if seen:
    bars(pts["seen"], fmt=":o", color="0.55", mfc="none", lw=1,
         label="longer stream, scored on every class seen (other classes)")
  bars(pts["stream_classes"], fmt="-D", color="C2", lw=1.6,
       label=f"longer stream (1 step/example), scored on its first {fixed} classes")
  bars(pts["steps_per_example"], fmt="-o", color="C0", lw=1.6,
       label=f"fixed {fixed}-class stream: k SGD steps per example, no replay")
  bars(pts["replay_passes"], fmt="-s", color="C1", lw=1.6,
       label=f"fixed {fixed}-class stream: r replay passes, 1 step per example")
  both = [p for p in pts["grid"] if p["steps_per_example"] > 1 and p["replay_passes"] > 0]
  if both:
    bars(both, fmt="x", color="0.3", label="fixed stream: k > 1 with replay (on no axis)")
  base = [p for p in pts["grid"] if (p["steps_per_example"], p["replay_passes"]) == (1, 0)]
  if base:
    ax.plot(base[0]["flops"], base[0]["error"], "*", ms=16, color="k", zorder=6,
            label=f"fixed stream, 1 step per example, no replay ({fixed} classes)")
  ax.set_xscale("log")
  ax.margins(x=0.1)  # Room for the labels of the first and last points.
  flops = [p["flops"] for ps in pts.values() for p in ps]
  decades = np.log10(max(flops) / min(flops))
  subs = (1, 1.5, 2, 3, 5, 7) if decades < 1 else (1, 2, 5) if decades < 3 else (1,)
  ax.xaxis.set_major_locator(matplotlib.ticker.LogLocator(base=10, subs=subs))
  ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda x, _: f"{x:.3g}"))
  ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
  ax.set_xlabel("online FLOPs per stream (log scale)")
  name = "error (1 − accuracy)" if rate else "MSE"
  ax.set_ylabel(f"{name} on the fixed stream's {fixed} classes")
  ax.set_title(title or f"Compute on a fixed stream against a longer stream "
               f"({res['streams']} streams; bars: 95% over streams)", fontsize=10)
  ax.grid(alpha=0.3, which="both")
  fig.canvas.draw()  # Labels are placed in display space, after the scales.
  placed = []
  drawn = [("stream_classes", (6, 6)), ("steps_per_example", (6, -12)),
           ("replay_passes", (6, -12))]
  for axis, offset in drawn + [("grid", (6, 6))]:
    for p in pts[axis]:
      if axis == "grid" and not (p["steps_per_example"] > 1 and p["replay_passes"] > 0):
        continue
      if (p["steps_per_example"], p["replay_passes"], p["axis"]) == (1, 0,
                                                                       "steps_per_example"):
        continue  # The base point has its own legend entry.
      px, py = ax.transData.transform((p["flops"], p["error"]))
      px, py = px + offset[0], py + offset[1]
      if any(abs(px - qx) < 40 and abs(py - qy) < 11 for qx, qy in placed):
        continue
      placed.append((px, py))
      ax.annotate(_short(p), (p["flops"], p["error"]), textcoords="offset points",
                  xytext=offset, fontsize=7, color="0.2")
  # Below the axes: inside, it would hide points wherever the lines run.
  ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2,
            frameon=False)
  plots_lib.save_figure(fig, path, footer)


def write(config: ml_collections.ConfigDict, workdir: str, *,
          step: Optional[int] = None, n_boot: int = 1000, fit_boot: int = 200,
          context: Optional[dict] = None) -> dict:
  """Analyses this config's compute rows and writes the report, fits and figure.

  Args:
    config: the run's config (selects the rows).
    workdir: the run's workdir.
    step: the checkpoint whose rows to read (default: the latest that has them).
    n_boot: bootstrap replicates of the exchange rate.
    fit_boot: bootstrap replicates of each fit.
    context: more for the report: ``title``, ``protocol`` and ``limits`` lines.

  Returns:
    The analysis (``compute_analysis.analyse``) with its ``headline``.
  """
  path, rows, values = find_rows(config, workdir, step)
  try:
    res = analysis_lib.analyse(rows, values, n_boot=n_boot, fit_boot=fit_boot,
                               seed=int(config.seed))
  except ValueError as e:
    raise MetalearnError(f"{path}: {e}") from e
  res["headline"] = compute_headline.headline(res)
  prov = provenance(workdir)
  context = dict(context or {})
  q = config.compute
  context.setdefault("title", f"Compute on a fixed stream: {config.algorithm}, "
                     f"{res['fixed_classes']} classes")
  context["protocol"] = [
      f"Rows: `{os.path.relpath(path, workdir)}` (checkpoint step "
      f"{rows[0].get('checkpoint_step')}), per-stream values "
      + ("beside them." if values is not None else "missing: no derived intervals."),
      f"Grid: steps per example {tuple(q.steps_per_example)} × replay passes "
      f"{tuple(q.replay_passes)} on a stream of {int(q.classes)} classes; longer streams "
      f"of {tuple(int(n) for n in q.longer)} classes at 1 step per example, no replay; "
      f"{res['streams']} streams; online lr {config.eval.lr} ({config.eval.optimizer}), "
      f"online parts {tuple(config.eval.online)}.",
  ] + list(context.get("protocol", []))
  context["provenance"] = dict(prov, **{"report generated": datetime.datetime.now(
      datetime.timezone.utc).isoformat(timespec="seconds") + " (UTC)"})
  res = dict(res, rows_path=os.path.relpath(path, workdir), provenance=prov)
  atomic.write_text(os.path.join(workdir, FITS), json.dumps(res, indent=1,
                                                            allow_nan=False))
  os.makedirs(os.path.join(workdir, "plots"), exist_ok=True)
  footer = "; ".join(f"{k}: {v}" for k, v in prov.items() if k != "command")
  plot(res, os.path.join(workdir, PLOT), footer=("grid run " + footer) if footer else "")
  atomic.write_text(os.path.join(workdir, REPORT), markdown(res, context))
  return res


def summary(res: dict) -> str:
  """The headline as printed lines."""
  return "\n".join(f"- {s}" for s in res["headline"])
