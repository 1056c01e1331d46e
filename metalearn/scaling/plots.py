"""Plots of a compute-scaling sweep, drawn only from its rows and fits.

``plot_all`` writes ``test_time.png`` (error and loss against adaptation FLOPs with
95% CIs, every model's fit, the bootstrap band and the held-out region), ``iso_flop.png``
(the same FLOPs spent on inner steps, shots, K_train or meta-training tasks) and
``axes.png`` (the k-curve of every trained setting, one panel per axis).
"""

import os
import textwrap
from typing import Optional, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.ticker  # noqa: E402
from matplotlib import pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from metalearn.scaling import fits as fits_lib  # noqa: E402
from metalearn.scaling.analysis import AXIS_FIELD  # noqa: E402

_BARS = ("error bars: 95% intervals over training seeds × evaluation episodes; over "
         "episodes only for settings trained with one seed; a rate's interval clipped "
         "to [0, 1]")
COLORS = {"power_law_floor": "C0", "power_law": "C2", "sigmoid_log": "C3", "m4": "C4"}
LABELS = {"error": "error (1 − accuracy)", "loss": "query loss"}


def _label(metric: str) -> str:
  if metric.startswith("mse>"):
    return f"failure rate (MSE > {metric[4:]})"
  return LABELS.get(metric, metric)


def _is_rate(metric: str) -> bool:
  return metric == "error" or metric.startswith("mse>")


def _errorbar(ax, metric: str, x, mean, ci, **kw):
  """``ax.errorbar`` with a rate's interval clipped to [0, 1], the values a rate can
  take (a few seeds' t multiplier can carry a normal interval past them)."""
  mean, ci = np.asarray(mean, float), np.asarray(ci, float)
  if _is_rate(metric):
    ci = np.stack([np.minimum(ci, np.maximum(mean, 0.0)),
                   np.minimum(ci, np.maximum(1.0 - mean, 0.0))])
  return ax.errorbar(x, mean, ci, **kw)


def _finish_log_log(ax, xlabel: str, metric: str, title: str = "") -> None:
  """Log-log axes with labels, title, a legend when anything is labelled, and a grid."""
  ax.set_xscale("log")
  ax.set_yscale("log")
  ax.set_xlabel(xlabel)
  ax.set_ylabel(_label(metric))
  if title:
    ax.set_title(title, fontsize=9)
  if ax.get_legend_handles_labels()[0]:
    ax.legend(fontsize=6, loc="best")
  ax.grid(alpha=0.3, which="both")


def _y_scale(ax, values) -> None:
  """Log y where the values span more than a factor of 3, linear where they are narrow
  (a log axis would flatten a narrow range into a line)."""
  v = np.asarray([x for x in np.ravel(values) if x is not None and np.isfinite(x)])
  if len(v) and v.min() > 0 and v.max() / v.min() > 3:
    ax.set_yscale("log")
  else:
    ax.set_yscale("linear")


def _log_floor(ax, means) -> None:
  """On a log y axis, the bottom at a third of the lowest mean shown: an interval that
  reaches 0 or below (few seeds, wide t multiplier) would otherwise stretch the axis
  down by decades and flatten every curve; such a bar runs off the bottom instead."""
  v = np.asarray([x for x in np.ravel(means) if x is not None and np.isfinite(x) and x > 0])
  if ax.get_yscale() == "log" and len(v):
    ax.set_ylim(bottom=v.min() / 3)


def _k_axis(ax, flops_per_step: float) -> None:
  """A secondary x axis on top: inner steps k, for adaptation FLOPs = k · per step."""
  if flops_per_step > 0:
    top = ax.secondary_xaxis("top", functions=(lambda f: f / flops_per_step,
                                               lambda k: k * flops_per_step))
    top.set_xlabel("inner steps k", fontsize=8)
    top.xaxis.set_major_locator(matplotlib.ticker.LogLocator(base=2))
    top.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda k, _: f"{k:g}"))
    top.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())


def _seed_lines(ax, x, seed_means, color="0.6") -> None:
  """Each training seed's mean curve, thin: the spread the seeds × episodes bars include."""
  seed_means = np.asarray(seed_means, float)
  if seed_means.ndim != 2 or len(seed_means) < 2:
    return
  for i, m in enumerate(seed_means):
    ax.plot(x, m, "-", lw=0.7, color=color, alpha=0.8,
            label=f"each of the {len(seed_means)} training seeds" if i == 0 else None)


def _test_time_panel(ax, tt: dict, metric: str, tuned: Optional[dict] = None) -> None:
  k = np.array(tt["k"])
  c = np.array(tt["adaptation_flops"])
  y, ci = np.array(tt["mean"]), np.array(tt["ci95"])
  fitted = k >= 1
  _seed_lines(ax, c[fitted], np.array(tt.get("seed_means", []))[:, fitted]
              if tt.get("seed_means") else [])
  _errorbar(ax, metric, c[fitted], y[fitted], ci[fitted], fmt="o", color="k", ms=4, capsize=2,
            label="measured (95% CI, seeds × episodes)", zorder=5)
  if (k == 0).any():
    ax.axhline(y[k == 0][0], color="0.5", ls=":", lw=1,
               label=f"k = 0, no adaptation: {y[k == 0][0]:.3g} (0 FLOPs)")
  grid = np.geomspace(c[fitted].min(), c[fitted].max(), 200)
  # The best ranked form and its best alternative only (the report has them all).
  for f in [f for f in tt.get("compare", []) if f.get("rankable")][:2]:
    m = f["model"]
    ax.plot(grid, fits_lib.predict(m, grid, f["params"]), color=COLORS[m], lw=1.2,
            label=f"{m} (ΔAIC {f['delta_ic']:.1f})")
    b = tt["bootstrap"].get(m, {})
    if "curve_low" in b and b["curve_low"] and b["curve_low"][0] is not None:
      ax.fill_between(b["compute_grid"], b["curve_low"], b["curve_high"],
                      color=COLORS[m], alpha=0.12, lw=0)
  split = None
  best = next((f["model"] for f in tt.get("compare", []) if f.get("rankable")), None)
  for m, e in tt.get("extrapolation", {}).items():
    first = next((s for s in e.get("splits", []) if "fit" in s), None)
    if first is None or m != best:
      continue
    split = first["c_split"]
    xs = np.geomspace(split, c.max(), 50)
    inside = sum(p["inside_ci"] for p in first["points"])
    ax.plot(xs, fits_lib.predict(m, xs, first["fit"]["params"]), color=COLORS[m],
            ls="--", lw=1.2, label=f"{m} fitted below the split ({inside}/"
            f"{len(first['points'])} held out inside their CI)")
  if split is not None:
    ax.axvspan(split, c.max() * 1.2, color="0.85", alpha=0.5, lw=0,
               label="held out (extrapolation)")
  pred = [p for p in (tt.get("predicted") or {}).get("points", []) if p["k"] >= 1]
  if pred:
    ax.plot([c[list(k).index(p["k"])] for p in pred], [p["predicted"] for p in pred],
            "--", color="C8", lw=1.4, label="predicted: gradient descent from the best "
            "start (exact)")
  if tuned:  # The same model at the inner rate chosen per k on validation.
    kt = np.array(tuned["k"])
    pos = kt >= 1
    _errorbar(ax, metric, np.array(tuned["adaptation_flops"])[pos], np.array(tuned["mean"])[pos],
              np.array(tuned["ci95"])[pos], fmt="s", color="C1", ms=3.5, capsize=2,
              mfc="none", label="inner rate chosen per k on validation", zorder=4)
  known = tt.get("known_floor")
  if known:
    ax.axhline(known["value"], color="C2", ls="-.", lw=1.2,
               label=f"Bayes-optimal: {known['value']:.3g} (the task family's floor)")
  _finish_log_log(ax, "adaptation FLOPs per episode", metric)
  lo, hi = (y - ci)[fitted].min(), (y + ci)[fitted].max()
  if known and known["value"] > 0:
    lo = min(lo, known["value"])
  _y_scale(ax, [max(lo, 1e-12), hi])
  pad = 1.3 if ax.get_yscale() == "log" else 1.0
  margin = 0.0 if pad > 1 else 0.08 * (hi - lo)
  ax.set_ylim(max(lo, 1e-12) / pad - margin, hi * pad + margin)  # Not the k=0 outlier.
  _k_axis(ax, float(c[fitted][-1] / k[fitted][-1]))


def _iso_panels(ax_t, ax_m, rows, fits, metric) -> None:
  res = fits[metric]
  tt = res["test_time"]
  pos = np.array(tt["k"]) >= 1
  _errorbar(ax_t, metric, np.array(tt["adaptation_flops"])[pos], np.array(tt["mean"])[pos],
            np.array(tt["ci95"])[pos], fmt="-o", ms=3, color="k", capsize=2,
            label="inner steps k (base model)")
  # Each shots setting's whole k-curve: the iso-FLOP comparison is over curves, not
  # only at k = K_train.
  shown = list(np.array(tt["mean"])[np.array(tt["k"]) >= 1])
  shots = sorted((g for g in fits["groups"] if g["axis"] in ("shots", "test_shots")),
                 key=lambda g: g["eval_shots"])
  for i, g in enumerate(shots):
    c = res["curves"][g["group"]]
    pos = np.array(c["k"]) >= 1
    what = ("test-time shots, same model" if g["axis"] == "test_shots" else
            "shots, trained with them")
    _errorbar(ax_t, metric, np.array(c["adaptation_flops"])[pos], np.array(c["mean"])[pos],
              np.array(c["ci95"])[pos], fmt="-s", ms=2.5, capsize=1.5,
              color=f"C{i + 1}", label=f"{g['eval_shots']} {what}, k = 1 … max")
    shown += list(np.array(c["mean"])[pos])
  tasks = [t for t in res["tasks"]]
  _finish_log_log(ax_t, "adaptation FLOPs per episode", metric,
                  "test-time compute vs data per task")
  _log_floor(ax_t, shown)
  labels = []
  for axis, fmt, color in (("k_train", "-o", "k"), ("shots", "-s", "C1"),
                           ("train_shots", "-s", "C1"), ("steps", "-D", "C4"),
                           ("width", "-v", "C5")):
    e = res["meta_training"].get(axis)
    if e and len(e["values"]) > 1:
      _errorbar(ax_m, metric, e["meta_training_flops"], e["mean"], e["ci95"], fmt=fmt, ms=4,
                color=color, capsize=2, label=f"{axis} (at k = K_train)")
      for g, v, x, y in zip(e["groups"], e["values"], e["meta_training_flops"], e["mean"]):
        if axis != "k_train" and g == fits["base"]:
          continue  # The base point is labelled once, on the K_train curve.
        labels.append((f"{axis}={v}", (x, y), color))
  if len(tasks) > 1:  # All at the base's FLOPs: named in the legend, not one by one.
    _errorbar(ax_m, metric, [t["meta_training_flops"] for t in tasks], [t["mean"] for t in tasks],
              [t["ci95"] for t in tasks], fmt="^", ms=4, color="C2", capsize=2,
              label="meta-training tasks " + ", ".join(
                  f"{t['tasks']:g}" for t in tasks) + " (0 = all/∞)")
  _finish_log_log(ax_m, "meta-training FLOPs", metric, "meta-training compute vs data")
  placed = []  # After the log scales: a label too close to one drawn is skipped.
  for text, xy, color in labels:
    px, py = ax_m.transData.transform(xy)
    if any(abs(px - qx) < 45 and abs(py - qy) < 9 for qx, qy in placed):
      continue
    placed.append((px, py))
    ax_m.annotate(text, xy, textcoords="offset points", xytext=(3, 4), fontsize=6,
                  color=color)


def save_figure(fig, path: str, footer: str) -> None:
  """Saves with the provenance footer: every figure says when, where and beside what."""
  if footer:
    chars = int(fig.get_figwidth() * 72 / (5.5 * 0.62))  # Characters per line at 5.5 pt.
    text = textwrap.fill(footer, chars)
    fig.text(0.005, 0.004, text, fontsize=5.5, color="0.35", va="bottom")
    fig.tight_layout(rect=(0, 0.02 + 0.11 * (text.count("\n") + 1) / fig.get_figheight(),
                           1, 1))
  else:
    fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def plot_all(rows: Sequence[dict], fits: dict, out_dir: str, footer: str = ""
             ) -> list[str]:
  """Writes the plots into ``out_dir`` and returns their file names.

  ``footer`` (date, machine, load, other processes) is printed under every figure.
  """
  metrics = fits["metrics"]
  names = []
  fig, axes = plt.subplots(1, len(metrics), figsize=(6.5 * len(metrics), 4.8),
                           squeeze=False)
  for ax, metric in zip(axes[0], metrics):
    _test_time_panel(ax, fits[metric]["test_time"], metric,
                     fits[metric].get("test_time_tuned"))
  fig.suptitle("Test-time compute: base model adapted for k inner steps", fontsize=10)
  save_figure(fig, os.path.join(out_dir, "test_time.png"), footer)
  names.append("test_time.png")

  fig, axes = plt.subplots(len(metrics), 2, figsize=(12, 4.5 * len(metrics)),
                           squeeze=False)
  for row, metric in zip(axes, metrics):
    _iso_panels(row[0], row[1], rows, fits, metric)
  fig.suptitle(_BARS, fontsize=9)
  save_figure(fig, os.path.join(out_dir, "iso_flop.png"), footer)
  names.append("iso_flop.png")

  fig = _axes_figure(fits, metrics[0])
  save_figure(fig, os.path.join(out_dir, "axes.png"), footer)
  names.append("axes.png")
  for name, draw in (("residuals.png", _residuals_figure), ("drift.png", _drift_figure),
                     ("frontier.png", _frontier_figure),
                     ("loss_vs_capability.png", _capability_figure),
                     ("data.png", _data_figure), ("size_steps.png", _size_steps_figure)):
    fig = draw(fits, metrics)
    if fig is not None:
      save_figure(fig, os.path.join(out_dir, name), footer)
      names.append(name)
  return names


AXIS_TITLES = dict(k_train="K_train", shots="shots (train and test)",
                   train_shots="meta-training shots", tasks="meta-training tasks",
                   width="model width", steps="meta-training steps",
                   test_shots="test-time shots (same model)")


def _axes_figure(fits: dict, metric: str):
  """The k-curve of every setting, one panel per axis the sweep varied."""
  curves = fits[metric]["curves"]
  present = [a for a in ("k_train", "shots", "train_shots", "tasks", "width", "steps",
                         "test_shots") if any(g["axis"] == a for g in fits["groups"])]
  present = present or ["k_train"]
  cols = min(3, len(present))
  rows_n = -(-len(present) // cols)
  fig, axes = plt.subplots(rows_n, cols, figsize=(5 * cols, 4.2 * rows_n),
                           squeeze=False)
  for ax, axis in zip(axes.ravel(), present):
    field = AXIS_FIELD[axis]
    groups = [g for g in fits["groups"] if g["axis"] in ("base", axis)]
    shown, banded = [], False
    for i, g in enumerate(sorted(groups, key=lambda g: g[field] or np.inf)):
      c = curves[g["group"]]
      pos = np.array(c["k"]) >= 1  # k = 0 costs 0 FLOPs: off a log axis.
      x = np.array(c["adaptation_flops"])[pos]
      if len(c.get("seed_means") or []) > 1:  # The seeds' spread, as a band.
        sm = np.array(c["seed_means"], float)[:, pos]
        ax.fill_between(x, sm.min(0), sm.max(0), color=f"C{i}", alpha=0.15, lw=0,
                        label=None if banded else "shaded: range of the seeds' means")
        banded = True
      _errorbar(ax, metric, x, np.array(c["mean"])[pos], np.array(c["ci95"])[pos], fmt="-o",
                ms=2.5, capsize=1.5, color=f"C{i}",
                label=f"{g[field]:g}" + (" (base)" if g["axis"] == "base" else "")
                + (f", {len(g['seeds'])} seeds" if len(g["seeds"]) > 1 else ""))
      shown += list(np.array(c["mean"])[pos])
    _finish_log_log(ax, "adaptation FLOPs per episode (k = 1 … max)", metric,
                    f"k-curves along {AXIS_TITLES[axis]}")
    _y_scale(ax, shown)
    _log_floor(ax, shown)
  for ax in axes.ravel()[len(present):]:
    ax.set_visible(False)
  fig.suptitle(_BARS, fontsize=9)
  return fig


def _data_figure(fits: dict, metrics: Sequence[str]):
  """Test-time shots on one model against the Bayes-optimal value at each shots; and
  error along meta-training steps per number of meta-training tasks."""
  metric = metrics[0]
  res = fits[metric]
  trajectories = res.get("trajectories") or {}
  panels = (["shots"] if res.get("test_shots") else []) + list(trajectories)
  if not panels:
    return None
  shots = res.get("test_shots") or []
  fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.3),
                           squeeze=False)
  for ax, panel in zip(axes[0], panels):
    if panel == "shots":
      x = [t["shots"] for t in shots]
      _errorbar(ax, metric, x, [t["mean"] for t in shots], [t["ci95"] for t in shots], fmt="-o",
                ms=4, capsize=2, color="C0", label=f"k = {shots[0]['k']} inner steps")
      _errorbar(ax, metric, x, [t["k_max_mean"] for t in shots], [t["k_max_ci95"] for t in shots],
                fmt="-s", ms=4, capsize=2, color="C1",
                label=f"k = {shots[0]['k_max']} inner steps")
      known = [(t["shots"], t["bayes"]) for t in shots if t["bayes"] is not None]
      if known:
        ax.plot(*zip(*known), "--", color="k", lw=1,
                label="Bayes-optimal (the best any learner can do)")
      ax.set_xscale("log")
      ax.set_xticks(x)
      ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
      ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
      ax.set_xlabel("test-time shots per class (the base model, not retrained)")
      ax.set_title("test-time data: more shots against more inner steps", fontsize=9)
    else:
      traj = trajectories[panel]
      for i, t in enumerate(traj):
        _errorbar(ax, metric, t["steps"], t["mean"], t["ci95"], fmt="-o", ms=3, capsize=1.5,
                  color=f"C{i}", label=run_name(t)
                  + (", overfits" if t["overfits"] else ""))
      ax.set_xscale("log")
      ax.set_xlabel("meta-training steps (checkpoints along each run)")
      ax.set_title(f"{AXIS_TITLES[panel]} × length, at k = {traj[0]['k']}", fontsize=9)
    ax.set_ylabel(_label(metric))
    ax.legend(fontsize=6)
    ax.grid(alpha=0.3, which="both")
  chars = int(fig.get_figwidth() * 72 / (8 * 0.55))  # Characters per line at 8 pt.
  fig.suptitle(textwrap.fill(_BARS + "; the test-time shots score the base model's own "
                             "seeds", chars), fontsize=8)
  return fig


def run_name(t: dict) -> str:
  """One run along its steps, named by its axis value: 'fresh tasks', '16 tasks',
  '0.25 of the classes' (a class fraction), 'width = 64' (the legend and the report say
  the same)."""
  if t["axis"] == "tasks" and t.get("tasks_key", "").endswith("fraction"):
    return "all classes" if not t["value"] else f"{t['value']:g} of the classes"
  if t["axis"] == "tasks":
    return "fresh tasks" if not t["value"] else f"{t['value']:g} tasks"
  return f"{t['axis']} = {t['value']:g}"


def _size_steps_figure(fits: dict, metrics: Sequence[str]):
  """Each width's run along its meta-training FLOPs, and the best width per budget."""
  metric = metrics[0]
  res = fits[metric]
  runs, ss = (res.get("trajectories") or {}).get("width"), res.get("size_steps") or {}
  if not runs or not ss.get("points"):
    return None
  fig, ax = plt.subplots(figsize=(7.5, 4.8))
  for i, t in enumerate(runs):
    _errorbar(ax, metric, t["meta_training_flops"], t["mean"], t["ci95"], fmt="-o",
              ms=3, capsize=1.5, color=f"C{i}", label=run_name(t))
  best = [(p["budget"], min(p["means"])) for p in ss["points"]]
  ax.plot(*zip(*best), "-", color="k", lw=5, alpha=0.15, zorder=0,
          label="lowest at equal FLOPs (interpolated)")
  _finish_log_log(ax, "meta-training FLOPs (checkpoints along each run)", metric,
                  f"model width against meta-training length, at k = {ss['k']}")
  _y_scale(ax, [m for t in runs for m in t["mean"]])
  chars = int(fig.get_figwidth() * 72 / (8 * 0.55))  # Characters per line at 8 pt.
  fig.suptitle(textwrap.fill(_BARS, chars), fontsize=8)
  return fig


def _residuals_figure(fits: dict, metrics: Sequence[str]):
  """Fitted minus measured along test-time compute, against the points' own CIs."""
  tts = [(m, fits[m]["test_time"]) for m in metrics if fits[m]["test_time"].get("residuals")]
  if not tts:
    return None
  fig, axes = plt.subplots(1, len(tts), figsize=(6 * len(tts), 3.8), squeeze=False)
  for ax, (metric, tt) in zip(axes[0], tts):
    c = np.array(tt["compute"])
    ci = np.array(tt["y_ci95"])
    ax.fill_between(c, -ci, ci, color="0.85", label="measured point's 95% CI")
    for m, r in tt["residuals"].items():
      ax.plot(r["compute"], r["residual"], "-o", ms=3, color=COLORS[m], label=m)
    ax.axhline(0, color="k", lw=0.6)
    ax.set_xscale("log")
    ax.set_xlabel("adaptation FLOPs per episode")
    ax.set_ylabel(f"fitted − measured {_label(metric)}")
    ax.set_title("residuals of the ranked fits (test-time compute)", fontsize=9)
    ax.legend(fontsize=6)
    ax.grid(alpha=0.3, which="both")
  return fig


def _drift_figure(fits: dict, metrics: Sequence[str]):
  """The power law's floor E and exponent α refitted on growing compute ranges."""
  metric = metrics[0]
  drift = fits[metric]["test_time"].get("drift", {})
  if not drift.get("c_max"):
    return None
  fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
  for ax, name in zip(axes, ("E", "alpha")):
    est, se = np.array(drift["estimate"][name], float), np.array(drift["se"][name], float)
    ax.errorbar(drift["c_max"], est, 1.96 * np.nan_to_num(se), fmt="-o", ms=3,
                color="C0", capsize=2, label=f"fitted {name} (±1.96 se)")
    if name == "E":
      ax.axhline(drift["last_point"]["y"], color="k", ls=":", lw=1,
                 label=f"last measured point {drift['last_point']['y']:.3g}")
    ax.set_xscale("log")
    # Labels at 1, 2 and 5 × 10^n only: the fitting ranges can span less than a decade.
    ax.xaxis.set_major_locator(matplotlib.ticker.LogLocator(base=10, subs=(1, 2, 5)))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("largest adaptation FLOPs in the fitting range")
    ax.set_ylabel({"E": f"floor E ({_label(metric)})", "alpha": "exponent α"}[name])
    ax.legend(fontsize=6)
    ax.grid(alpha=0.3, which="both")
  fig.suptitle("Power law with floor refitted on C ≤ c: does the floor move with the "
               "range?", fontsize=10)
  return fig


def runs(env: Sequence[dict]) -> list[tuple[str, int, int, int]]:
  """Consecutive envelope points of one setting: ``(group, first k, last k, index)``."""
  out = []
  for i, p in enumerate(env):
    if out and out[-1][0] == p["group"]:
      out[-1] = (p["group"], out[-1][1], p["k"], out[-1][3])
    else:
      out.append((p["group"], p["k"], p["k"], i))
  return out


def _label_runs(ax, env: Sequence[dict], x_key: str) -> None:
  """One label per run of one setting along the envelope, below-right of its last point
  (the envelope moves on to the right of it)."""
  placed = []  # Display positions of the labels drawn: a label too close is skipped.
  for group, k0, k1, i in runs(env):
    last = i + sum(1 for p in env[i:] if p["group"] == group and k0 <= p["k"] <= k1) - 1
    ks = f"k={k0}" if k0 == k1 else f"k={k0}–{k1}"
    xy = (env[last][x_key], env[last]["error"])
    px, py = ax.transData.transform(xy)
    if any(abs(px - qx) < 80 and abs(py - qy) < 12 for qx, qy in placed):
      continue
    placed.append((px, py))
    ax.annotate(f"{group}, {ks}", xy, textcoords="offset points", xytext=(-4, -10),
                ha="right", fontsize=6, zorder=5,  # Over the line, never through it.
                bbox=dict(boxstyle="square,pad=0.1", fc="white", ec="none", alpha=0.85))


def _frontier_figure(fits: dict, metrics: Sequence[str]):
  """The lower envelope over every (setting, k), per adaptation and total FLOPs."""
  metric = metrics[0]
  fr = fits[metric].get("frontier", {})
  if not fr.get("adaptation"):
    return None
  n_test = next(iter(fr.get("total", {})), None)
  fig, axes = plt.subplots(1, 2 if n_test else 1, figsize=(11, 4), squeeze=False)
  env = fr["adaptation"]
  ax = axes[0][0]
  ax.plot([p["adaptation_flops"] for p in env], [p["error"] for p in env], "-o", ms=4,
          color="C3", label="lower envelope")
  _finish_log_log(ax, "adaptation FLOPs per episode", metric,
                  "best error for its test-time compute")
  _y_scale(ax, [p["error"] for p in env])
  _label_runs(ax, env, "adaptation_flops")  # After the scales: it places in display space.
  if n_test:
    env = fr["total"][n_test]
    ax = axes[0][1]
    ax.plot([p["total_flops"] for p in env], [p["error"] for p in env], "-o", ms=4,
            color="C3", label="lower envelope")
    _finish_log_log(ax, f"meta-training + {int(float(n_test)):,} × adaptation FLOPs",
                    metric, f"best error for its total compute (N_test = "
                    f"{int(float(n_test)):,})")
    _y_scale(ax, [p["error"] for p in env])
    _label_runs(ax, env, "total_flops")
  return fig


def _capability_figure(fits: dict, metrics: Sequence[str]):
  """The capability metric against the loss, every (setting, k) point, one line per
  setting in the order of k: where the two metrics rank points differently the lines
  bend back."""
  ag = fits.get("agreement")
  if not ag:
    return None
  a, b = ag["metrics"]
  fig, ax = plt.subplots(figsize=(7, 4.8))
  groups = fits["groups"]
  for i, g in enumerate(groups):
    ca, cb = fits[a]["curves"][g["group"]], fits[b]["curves"][g["group"]]
    base = g["axis"] == "base"
    ax.errorbar(cb["mean"], ca["mean"], xerr=cb["ci95"], yerr=ca["ci95"], fmt="-o",
                ms=2.5 if not base else 3.5, lw=1.6 if base else 0.8, capsize=1,
                color="k" if base else f"C{i % 10}",
                label=g["group"] + (" (base)" if base and g["group"] != "base" else ""))
  ax.set_xscale("log")
  # Labels at 1, 2 and 5 × 10^n only: minor labels collide when the range is short.
  ax.xaxis.set_major_locator(matplotlib.ticker.LogLocator(base=10, subs=(1, 2, 5)))
  ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
  _y_scale(ax, [m for g in groups for m in fits[a]["curves"][g["group"]]["mean"]])
  ax.set_xlabel(_label(b) + " (log)")
  ax.set_ylabel(_label(a))
  ax.set_title(f"{_label(a)} against {_label(b)}\nevery setting, k = 0 … max along "
               "each line; bars: 95% over seeds × episodes (episodes only for one seed)",
               fontsize=8)
  ax.legend(fontsize=6, ncol=2, loc="best")
  ax.grid(alpha=0.3, which="both")
  return fig
