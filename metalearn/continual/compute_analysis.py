"""Compute on a fixed stream, analysed: more compute per example against a longer stream.

Pure functions of the rows ``compute.py`` writes (``<workdir>/eval/continual_compute_*``)
and their per-stream values (the ``.npz`` beside them); no model is loaded. Everything is
error against FLOPs per stream: 1 − accuracy for Omniglot, the MSE for sine waves, scored
at the stream's end on the held-out examples of the fixed stream's L classes.

* Three axes, each starting at the fixed stream learned at one step per example with no
  replay (the base point): ``steps_per_example`` (no replay), ``replay_passes`` (one step
  per example), and ``stream_classes``, the longer streams scored on their first L
  classes (the rows with ``scored_on='first'``: the classes the fixed stream learned, so
  every point is scored on the same classes). The longer streams scored on every class
  they saw are kept apart (``seen``): other classes, not comparable at equal FLOPs.
  Settings with both more steps and replay are listed (``grid``) but on no axis.
* Fits: an axis of fewer than ``MIN_POINTS`` points is not fitted ("too few points to
  fit"); otherwise ``scaling.analysis.fit_curve`` compares a power law with floor with
  its saturating alternatives under the project's fitting standards
  (``scaling.standards.eligible``: 6 points over a decade), which may still decline.
* ``equal_flops``: each extra-compute setting against the longer streams' error
  interpolated linearly in log FLOPs at the same FLOPs (``scaling.records.locate``);
  never extrapolated: a setting outside the longer streams' FLOPs is "not covered". Every
  setting runs on the same streams (stream s has the same classes, in the same order, in
  every run), so the difference is a per-stream contrast with its t interval over
  streams (``scaling.intervals.contrast``).
* ``exchange``: the FLOPs at which the longer streams first reach a setting's error
  (``scaling.exchange.iso_error_contour``) and their ratio to the setting's FLOPs; only
  where the longer streams' curve crosses that error inside its measured range. Its
  interval: the percentiles of a Rao-Wu rescaled bootstrap over streams
  (``scaling.resampling.replicates``; every point resampled with the same streams),
  widened about the estimate by t_{S−1}/z in log FLOPs, as ``intervals``'
  ``bootstrap_corrected``. In simulations as in ``tests/continual_compute_analysis_test.py``
  (300 runs each) with 5 / 10 / 20 streams its 95% intervals covered 0.92 / 0.94 / 0.97
  (the plain percentile bootstrap 0.81 / 0.92 / 0.95).

``compute_headline`` states the result in sentences; ``compute_report`` writes it.
"""

import dataclasses
import math
from typing import Any, Mapping, Optional, Sequence

import numpy as np
from scipy import stats as sps

from metalearn.scaling import analysis as scaling_analysis
from metalearn.scaling import exchange as exchange_lib
from metalearn.scaling import intervals
from metalearn.scaling import records
from metalearn.scaling import resampling
from metalearn.scaling import standards
from metalearn.scaling.curves import jsonable
from metalearn.scaling.statements import fmt, monotone_statement

HELD_OUT = ("accuracy", "mse")  # The held-out metric of each loss; 'train_*' are not used.
MIN_POINTS = 4  # Below this an axis is not fitted at all.
AXES = ("steps_per_example", "replay_passes", "stream_classes")
AXIS_NAMES = dict(steps_per_example="more SGD steps per example",
                  replay_passes="more replay passes", stream_classes="a longer stream")
_FIELDS = ("axis", "metric", "stream_classes", "steps_per_example", "replay_passes",
           "flops", "mean", "ci95", "scored_on")


@dataclasses.dataclass(frozen=True)
class Point:
  """One setting's error at the end of its stream.

  Attributes:
    axis: the row's axis ('steps_per_example', 'replay_passes', 'stream_classes' or
      'steps_per_example,replay_passes').
    steps_per_example: k; replay_passes: r; stream_classes: n.
    scored_on: 'first' (the fixed stream's L classes) or 'seen' (every class seen).
    flops: the online phase's FLOPs per stream.
    error: mean error over streams; ci95: its half-width from the row (1.96·sd/√S).
    streams: S.
    values: per-stream errors ``[S]`` (None without the ``.npz``).
  """
  axis: str
  steps_per_example: int
  replay_passes: int
  stream_classes: int
  scored_on: str
  flops: float
  error: float
  ci95: float
  streams: int
  values: Optional[np.ndarray] = dataclasses.field(default=None, repr=False,
                                                   compare=False)

  @property
  def label(self) -> str:
    if self.axis == "stream_classes":
      return f"n = {self.stream_classes}"
    return f"k = {self.steps_per_example}, r = {self.replay_passes}"

  def to_dict(self) -> dict:
    d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
         if f.name != "values"}
    return dict(d, label=self.label)


def held_out_metric(rows: Sequence[Mapping[str, Any]]) -> str:
  """The held-out metric of the rows: 'accuracy' or 'mse'."""
  found = [m for m in HELD_OUT if any(r.get("metric") == m for r in rows)]
  if len(found) != 1:
    raise ValueError(f"compute rows: expected the metric 'accuracy' or 'mse', found "
                     f"{sorted({r.get('metric') for r in rows})}")
  return found[0]


def _error(metric: str, x: Any) -> Any:
  return 1.0 - x if metric == "accuracy" else x


def _stream_values(values: Mapping[str, np.ndarray], metric: str, k: int, r: int, n: int,
                   fixed: int, scored_on: str, axis: str) -> np.ndarray:
  """Per-stream mean of ``metric`` over the classes scored (as ``evaluate.curves``)."""
  upto = fixed if scored_on == "first" else n
  if axis == "stream_classes":
    name = f"longer_{metric}"
    classes = [int(c) for c in np.asarray(values["classes"]).ravel()]
    if name not in values or n not in classes:
      raise ValueError(f"compute values: no '{name}' at {n} classes")
    return np.asarray(values[name], float)[:, classes.index(n), :upto].mean(1)
  name = f"k{k}_r{r}_{metric}"
  if name not in values:
    raise ValueError(f"compute values: no '{name}' for the row with k = {k}, r = {r}")
  return np.asarray(values[name], float)[:, 0, :upto].mean(1)


def read_points(rows: Sequence[Mapping[str, Any]],
                values: Optional[Mapping[str, np.ndarray]] = None,
                metric: Optional[str] = None) -> dict[str, list[Point]]:
  """The rows of one compute run as points per axis, sorted by FLOPs.

  Args:
    rows: the run's rows (``compute.py``).
    values: its per-stream values (the ``.npz``), or None.
    metric: the held-out metric (default: the one in the rows).

  Returns:
    ``steps_per_example``, ``replay_passes``, ``stream_classes`` (each starting at the
    base point, when it was run), ``seen`` (the base point and the longer streams scored
    on every class seen) and ``grid`` (every fixed-stream setting).

  Raises:
    ValueError: a row lacks a field, a setting appears twice, the fixed stream's length
      is ambiguous, or the per-stream values do not reproduce a row's mean.
  """
  metric = metric or held_out_metric(rows)
  pts, seen_keys = [], set()
  for i, r in enumerate(x for x in rows if x.get("metric") == metric):
    missing = [f for f in _FIELDS if f not in r]
    if missing:
      raise ValueError(f"compute row {i}: missing field(s) {missing}")
    key = (r["axis"] == "stream_classes", r["stream_classes"], r["steps_per_example"],
           r["replay_passes"], r["scored_on"])
    if key in seen_keys:
      raise ValueError(f"compute rows: the setting {key} appears twice")
    seen_keys.add(key)
    pts.append(Point(axis=r["axis"], steps_per_example=int(r["steps_per_example"]),
                     replay_passes=int(r["replay_passes"]),
                     stream_classes=int(r["stream_classes"]), scored_on=r["scored_on"],
                     flops=float(r["flops"]), error=float(_error(metric, r["mean"])),
                     ci95=float(r["ci95"]), streams=int(r.get("streams", 0))))
  fixed = {p.stream_classes for p in pts if p.axis != "stream_classes"}
  if len(fixed) != 1:
    raise ValueError(f"compute rows: expected one fixed stream length, found {sorted(fixed)}")
  n_fixed = fixed.pop()
  if values is not None:
    with_values = []
    for p in pts:
      v = _error(metric, _stream_values(values, metric, p.steps_per_example,
                                        p.replay_passes, p.stream_classes, n_fixed,
                                        p.scored_on, p.axis))
      if not math.isclose(float(v.mean()), p.error, rel_tol=1e-5, abs_tol=1e-6):
        raise ValueError(f"compute values: {p.label} ({p.scored_on}) has mean error "
                         f"{v.mean():.6g} but its row says {p.error:.6g}")
      with_values.append(dataclasses.replace(p, values=v, streams=len(v)))
    pts = with_values
  grid = sorted((p for p in pts if p.axis != "stream_classes"), key=lambda p: p.flops)
  base = [p for p in grid if (p.steps_per_example, p.replay_passes) == (1, 0)]
  longer = [p for p in pts if p.axis == "stream_classes"]

  def by_flops(ps):
    return sorted(ps, key=lambda p: p.flops)

  return dict(
      steps_per_example=by_flops(p for p in grid if p.replay_passes == 0),
      replay_passes=by_flops(p for p in grid if p.steps_per_example == 1),
      stream_classes=by_flops(base + [p for p in longer if p.scored_on == "first"]),
      seen=by_flops(base + [p for p in longer if p.scored_on == "seen"]),
      grid=grid)


def longer_reproduces_base(values: Mapping[str, np.ndarray], metric: str,
                           fixed: int) -> Optional[float]:
  """Max over streams of |longer streams' error after L classes − the base point's|.

  The longer streams are the fixed stream continued (the same classes first), so after
  L classes their learner is the base learner: a wiring check, 0 up to float noise.
  None where the longer run did not score L classes or there is no base point.
  """
  classes = [int(c) for c in np.asarray(values.get("classes", [])).ravel()]
  name = f"k1_r0_{metric}"
  if fixed not in classes or f"longer_{metric}" not in values or name not in values:
    return None
  longer = np.asarray(values[f"longer_{metric}"], float)[:, classes.index(fixed), :fixed]
  base = np.asarray(values[name], float)[:, 0, :fixed]
  return float(np.max(np.abs(longer.mean(1) - base.mean(1))))


def fit_axis(points: Sequence[Point], *, n_boot: int = 200,
             rng: Optional[np.random.Generator] = None) -> dict:
  """The scaling analysis's fits of error against FLOPs along one axis.

  Returns:
    ``declined`` (why) with fewer than ``MIN_POINTS`` points; else
    ``scaling.analysis.fit_curve``'s result (which declines below its standards), with
    ``monotone`` (a sentence when the error rises along the axis beyond the CIs).
  """
  n = len(points)
  if n < MIN_POINTS:
    return dict(n_points=n, declined=(
        f"too few points to fit ({n} point(s); no law is claimed from fewer than "
        f"{MIN_POINTS}, and the scaling standards ask for {standards.MIN_POINTS} over a "
        "decade of FLOPs)."))
  c = np.array([p.flops for p in points])
  y = np.array([p.error for p in points])
  ci = np.array([p.ci95 for p in points])
  have = all(p.values is not None for p in points)
  per_stream = np.stack([p.values for p in points]) if have else None  # [P, streams]
  out = scaling_analysis.fit_curve(
      c, y, ci, per_stream, n_boot=n_boot if have else 0,
      rng=rng if rng is not None else np.random.default_rng(0), paired=True)
  mono = monotone_statement([p.label for p in points], y, ci, "the axis")
  return dict(jsonable(out), n_points=n, monotone=mono)


def _contrast(values: Sequence[np.ndarray], coefs: Sequence[float]) -> Optional[dict]:
  """The t interval over streams of ``Σ c_i · mean(v_i)``, values paired by stream."""
  if any(v is None for v in values):
    return None
  iv = intervals.contrast([np.asarray(v)[None, :] for v in values], coefs)
  return dict(diff=float(iv.mean), lo=float(iv.lo), hi=float(iv.hi),
              ci95=float(iv.half_width))


def _verdict(iv: Optional[dict]) -> str:
  if iv is None:
    return "no interval (no per-stream values)"
  if iv["ci95"] == 0:  # Every stream gave the same difference: sd 0 is no estimate.
    return "no spread over streams"
  return "lower" if iv["hi"] < 0 else "higher" if iv["lo"] > 0 else "indistinguishable"


def extra_settings(points: Mapping[str, list[Point]]) -> list[Point]:
  """Every fixed-stream setting but the base point: more steps, more replay, both."""
  extra = [p for p in points["grid"] if (p.steps_per_example, p.replay_passes) != (1, 0)]
  order = ("steps_per_example", "replay_passes")
  return sorted(extra, key=lambda p: (order.index(p.axis) if p.axis in order else 2,
                                      p.flops))


def equal_flops(points: Mapping[str, list[Point]]) -> list[dict]:
  """Each extra-compute setting against the longer streams at the same FLOPs.

  Returns:
    Per setting: its point, ``covered`` and, where covered, ``longer_error`` (the longer
    streams' mean error interpolated in log FLOPs), ``diff`` = setting − longer (< 0:
    the extra compute wins), its 95% interval over streams and ``verdict`` ('lower',
    'higher', 'indistinguishable'); where not covered, ``reason``.
  """
  longer = points["stream_classes"]
  log_f = np.log([q.flops for q in longer])
  out = []
  for p in extra_settings(points):
    row = dict(setting=p.to_dict())
    loc = records.locate(p.flops, log_f) if len(longer) > 1 else None
    if loc is None:
      where = ("beyond" if len(longer) and p.flops > longer[-1].flops else "outside")
      span = (f"{fmt(longer[0].flops)}–{fmt(longer[-1].flops)}" if longer else "none")
      out.append(dict(row, covered=False, reason=(
          f"{where} the longer streams' FLOPs ({span}): not compared, no extrapolation")))
      continue
    j, t = loc
    coefs = (1.0, -(1.0 - t), -t)
    trio = (p, longer[j], longer[j + 1])
    longer_error = (1.0 - t) * longer[j].error + t * longer[j + 1].error
    iv = _contrast([q.values for q in trio], coefs)
    out.append(dict(row, covered=True, between=[f"n = {longer[j].stream_classes}",
                                                f"n = {longer[j + 1].stream_classes}"],
                    weight=t, longer_error=longer_error, diff=p.error - longer_error,
                    interval=iv, verdict=_verdict(iv)))
  return out


def _crossing(flops: np.ndarray, curves: np.ndarray, levels: np.ndarray) -> np.ndarray:
  """``[B]`` log FLOPs where each curve ``[B, P]`` first reaches its level (linear in log
  FLOPs between points); −inf where its first point is already at or below the level,
  +inf where it never reaches it."""
  rel = curves - levels[:, None]  # The crossing of rel with 0 is that of the curve.
  c = exchange_lib.iso_error_contour(np.arange(1.0, len(rel) + 1), flops, rel, 0.0)
  out = np.array([math.log(f) if f is not None else math.inf
                  for f in c.adaptation_flops])
  out[rel[:, 0] <= 0] = -math.inf  # Even where equal: the first point buys nothing.
  return out


def exchange(points: Mapping[str, list[Point]], *, n_boot: int = 1000,
             rng: Optional[np.random.Generator] = None) -> list[dict]:
  """How many FLOPs of longer stream buy each extra-compute setting's error.

  Returns:
    Per setting: ``status`` 'crossed' (with ``longer_flops``, ``ratio`` = longer FLOPs /
    the setting's FLOPs, > 1: the extra compute is the cheaper way to that error, and a
    95% interval over streams of both, an end None where over 2.5% of replicates fall
    outside the measured range), 'no gain' (the setting's error is
    no lower than the base point's: nothing to buy) or 'not reached' (the longer
    streams never get that low in their range).
  """
  longer = points["stream_classes"]
  flops = np.array([q.flops for q in longer])
  out = []
  have = all(q.values is not None for q in longer)
  reps_rng = rng if rng is not None else np.random.default_rng(0)
  for p in extra_settings(points):
    row = dict(setting=p.to_dict(), level=p.error)
    if len(longer) < 2:
      out.append(dict(row, status="not reached", reason="fewer than two longer-stream "
                      "points"))
      continue
    lf = _crossing(flops, np.array([[q.error for q in longer]]), np.array([p.error]))[0]
    if lf == -math.inf:
      out.append(dict(row, status="no gain", reason=(
          f"its error is no lower than the base point's, {fmt(longer[0].error, 4)}")))
      continue
    if lf == math.inf:
      out.append(dict(row, status="not reached", reason=(
          f"the longer streams' error stays above {fmt(p.error, 4)} up to "
          f"{fmt(flops[-1])} FLOPs, n = {longer[-1].stream_classes}")))
      continue
    row = dict(row, status="crossed", longer_flops=math.exp(lf),
               ratio=math.exp(lf) / p.flops)
    if have and p.values is not None and n_boot > 0:
      v = np.stack([p.values] + [q.values for q in longer], axis=-1)[None]  # [1, S, P]
      reps = resampling.replicates([v], [1.0], n_boot, reps_rng, rescale=True)
      lfb = _crossing(flops, reps[:, 1:], reps[:, 0])
      # Order statistics, not interpolation: an end may be ±inf (outside the range).
      lo = float(np.quantile(lfb, 0.025, method="lower"))
      hi = float(np.quantile(lfb, 0.975, method="higher"))
      widen = sps.t.ppf(0.975, v.shape[1] - 1) / sps.norm.ppf(0.975)
      lo = lf - widen * (lf - lo) if math.isfinite(lo) else lo
      hi = lf + widen * (hi - lf) if math.isfinite(hi) else hi
      row.update(n_boot=n_boot,
                 outside_range=float(np.mean(~np.isfinite(lfb))),
                 longer_flops_ci=[_exp(lo), _exp(hi)],
                 ratio_ci=[_exp(lo, p.flops), _exp(hi, p.flops)])
    out.append(row)
  return out


def _exp(log_f: float, per: float = 1.0) -> Optional[float]:
  return math.exp(log_f) / per if math.isfinite(log_f) else None


def analyse(rows: Sequence[Mapping[str, Any]],
            values: Optional[Mapping[str, np.ndarray]] = None, *, n_boot: int = 1000,
            fit_boot: int = 200, seed: int = 0) -> dict:
  """Everything the report, the figure and ``compute_fits.json`` say.

  Args:
    rows: one compute run's rows.
    values: its per-stream values, or None (then no interval on a derived quantity).
    n_boot: bootstrap replicates of the exchange rate.
    fit_boot: bootstrap replicates of each fit (``fit_bootstrap``).
    seed: the bootstrap's only randomness.

  Returns:
    A JSON-ready dict: ``metric``, ``fixed_classes``, ``streams``, ``points`` (per axis,
    plus ``seen`` and ``grid``), ``fits`` per axis, ``equal_flops``, ``exchange`` and
    ``longer_reproduces_base`` (``compute_headline.headline`` turns it into sentences).
  """
  metric = held_out_metric(rows)
  pts = read_points(rows, values, metric)
  if not pts["grid"]:
    raise ValueError("compute rows: no fixed-stream setting")
  rng = np.random.default_rng(seed)
  fixed = pts["grid"][0].stream_classes
  out = dict(
      metric=metric, error=("1 − accuracy" if metric == "accuracy" else "MSE"),
      fixed_classes=fixed, streams=pts["grid"][0].streams,
      has_values=values is not None,
      points={a: [p.to_dict() for p in ps] for a, ps in pts.items()},
      fits={a: fit_axis(pts[a], n_boot=fit_boot, rng=rng) for a in AXES},
      equal_flops=equal_flops(pts),
      exchange=exchange(pts, n_boot=n_boot, rng=rng),
      longer_reproduces_base=(None if values is None else
                              longer_reproduces_base(values, metric, fixed)))
  return jsonable(out)
