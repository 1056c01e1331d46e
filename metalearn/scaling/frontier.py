"""Compute frontiers: Pareto envelopes, iso-FLOP profiles and the train/test exchange rate.

A sweep trains models at several settings ("groups": K_train, shots, number of tasks, ...)
and evaluates each at several test-time inner-step counts k. Every (group, k) is a
``Record``: meta-training FLOPs M (one per group), adaptation FLOPs per test episode
a(k), the mean error and, optionally, the values it is the mean of. A deployment that
adapts on ``n_test`` test episodes costs ``T = M + n_test * a(k)`` FLOPs in all;
``n_test`` is always an explicit argument, never a default.

Pure numpy. The choices that matter:

* ``lower_envelope``: a point is on the envelope when no other point has compute <= and
  error <= with at least one strict. Exact duplicates keep only the first (lowest index),
  so the envelope is strictly increasing in compute and strictly decreasing in error.
  Points with a non-finite compute or error are never on it.
* Interpolation is linear in log compute (error against ``log a`` within a group) and
  only inside the measured range: outside it the answer is ``None``, never an
  extrapolation. Records with ``a <= 0`` (e.g. k = 0 without a query pass) take no part
  in log interpolation.
* ``iso_flop_profiles`` (Hoffmann et al. 2022, approach 2): at a total budget T, group g
  spends M_g on meta-training and ``(T - M_g) / n_test`` per test episode, which gives one
  point (meta-training share ``f = M_g / T``, error interpolated within g's measured k).
  The optimum is the vertex of a least-squares parabola in the log-allocation
  ``x = log(M / (n_test a)) = log(f / (1 - f))`` through the profile's lowest point and
  ``window`` points either side, clipped to those points' span. This x treats the two
  uses of compute alike, as ``log N`` and ``log D`` are alike in Hoffmann et al.; in
  ``log f`` the profile is lopsided (it rises steeply as f -> 1 starves adaptation) and a
  parabola there was biased several times more on a known surface. We fit a parabola
  rather than take the argmin of a dense interpolation because a piecewise-linear profile
  always has its argmin on a measured group, so the answer could not be finer than the
  grid of groups. A profile whose lowest point is its first or last has no bracketed
  optimum: ``None``. Resolution is the limit: the optimum is only as good as the spacing
  of the groups' M and of the measured a (interpolation in log a overestimates a convex
  error between measured k).
* Resampling (the intervals): within a group one draw of seeds and one of episodes is
  shared by every k (the same models score the same episodes at every k), and the same
  episode draw is used for every seed ("seeds share the same episodes"). Groups are drawn
  independently (different trained models) unless ``share_episodes`` also shares the
  episode draw across groups. 1-D values are replicate errors (a seeds axis with one
  episode each). Intervals are percentile intervals.
* ``iso_error_contour``: along each row (one M) of an error grid, the cheapest test-time
  FLOPs at which the error reaches ``level``: the first measured a with error <= level,
  interpolated in log a against the previous measured a. A row whose first measured
  error is already below the level, or which never reaches it, has no contour point
  (``None``); so does one whose crossing borders an unmeasured (NaN) cell.
* ``exchange_rate``: the local slope ``d log a / d log M`` of the contour (Jones 2021,
  "Scaling Scaling Laws with Board Games"): second-order finite differences
  (``np.gradient``) along each run of adjacent rows with a contour point. It is negative;
  minus the slope is how many factors of test-time compute one factor of meta-training
  compute saves. ``n_test`` scales a but not the slope, so none is needed here.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple, Optional, Union

import numpy as np

__all__ = [
    "Envelope", "ErrorGrid", "ExchangeRate", "IsoErrorContour", "IsoFlopProfile",
    "Record", "RecordFrontier", "adaptation_frontier", "as_records",
    "bootstrap_error_grids", "error_grid_from_records", "exchange_rate",
    "interpolate_log", "iso_error_contour", "iso_flop_profiles", "lower_envelope",
    "total_flops", "total_flops_frontier",
]

# Relative slack, in log compute, when deciding whether a point lies in the measured range.
_LOG_SLACK = 1e-9


# --------------------------------------------------------------------------- records


@dataclasses.dataclass(frozen=True)
class Record:
  """One trained setting evaluated at one test-time step count.

  Attributes:
    group: name of the trained setting (one meta-training run, seeds pooled).
    k: test-time inner steps.
    meta_training_flops: M, the FLOPs of meta-training the group (same at every k).
    adaptation_flops: a(k), the FLOPs of adapting on (and scoring) one test episode.
    error: the mean error.
    values: what ``error`` is the mean of, or None: ``[seeds, episodes]`` per-episode
      values (every seed scored on the same episodes) or 1-D replicate errors.
  """
  group: str
  k: float
  meta_training_flops: float
  adaptation_flops: float
  error: float
  values: Optional[np.ndarray] = dataclasses.field(default=None, repr=False, compare=False)


def _record(r: Union[Record, Mapping[str, Any]]) -> Record:
  """A ``Record`` from a ``Record`` or a mapping with the same fields (``mean`` may stand
  for ``error``; a missing error is the mean of ``values``)."""
  if isinstance(r, Record):
    fields = {f.name: getattr(r, f.name) for f in dataclasses.fields(r)}
  else:
    fields = dict(group=r["group"], k=r["k"], meta_training_flops=r["meta_training_flops"],
                  adaptation_flops=r["adaptation_flops"],
                  error=r.get("error", r.get("mean")), values=r.get("values"))
  values = fields["values"]
  if values is not None:
    values = np.asarray(values, dtype=float)
    if values.ndim == 1:
      values = values[:, None]  # Replicates: a seeds axis with one "episode" each.
    if values.ndim != 2 or values.size == 0:
      raise ValueError(f"values of {fields['group']!r} at k={fields['k']} must be 1-D or "
                       f"[seeds, episodes]; got shape {values.shape}.")
    if not np.all(np.isfinite(values)):
      raise ValueError(f"values of {fields['group']!r} at k={fields['k']} are not finite.")
  error = fields["error"]
  if error is None:
    if values is None:
      raise ValueError(f"{fields['group']!r} at k={fields['k']} has neither error nor "
                       "values.")
    error = float(values.mean())
  elif values is not None and not math.isclose(float(error), float(values.mean()),
                                               rel_tol=1e-6, abs_tol=1e-9):
    raise ValueError(f"error of {fields['group']!r} at k={fields['k']} ({error}) is not "
                     f"the mean of its values ({values.mean()}).")
  return Record(group=str(fields["group"]), k=float(fields["k"]),
                meta_training_flops=float(fields["meta_training_flops"]),
                adaptation_flops=float(fields["adaptation_flops"]), error=float(error),
                values=values)


def as_records(records: Sequence[Union[Record, Mapping[str, Any]]]) -> list[Record]:
  """Validated ``Record``s from ``Record``s or dicts.

  Args:
    records: ``Record``s, or mappings with keys ``group``, ``k``, ``meta_training_flops``,
      ``adaptation_flops``, ``error`` (or ``mean``) and optionally ``values``.

  Returns:
    A list of ``Record``s, 1-D values reshaped to ``[replicates, 1]``.

  Raises:
    ValueError: on malformed or non-finite values, or an error that is not their mean.
  """
  return [_record(r) for r in records]


def total_flops(meta_training_flops: Any, adaptation_flops: Any, n_test: float) -> Any:
  """``M + n_test * a``: the FLOPs of meta-training once and adapting on n_test episodes.

  Args:
    meta_training_flops: M (scalar or array).
    adaptation_flops: a, per test episode (broadcasts with M).
    n_test: number of test episodes (explicit, non-negative).

  Returns:
    The total FLOPs, broadcast.
  """
  _check_n_test(n_test)
  return np.asarray(meta_training_flops, float) + n_test * np.asarray(adaptation_flops,
                                                                       float)


def _check_n_test(n_test: float) -> None:
  if n_test is None or not math.isfinite(n_test) or n_test < 0:
    raise ValueError(f"n_test must be a finite number >= 0; got {n_test!r}.")


# --------------------------------------------------------------------------- envelopes


class Envelope(NamedTuple):
  """The lower-left (Pareto) envelope of a point set.

  Attributes:
    compute: ``[P]`` compute of the envelope's points, strictly increasing.
    error: ``[P]`` their errors, strictly decreasing.
    index: ``[P]`` their indices into the input.
  """
  compute: np.ndarray
  error: np.ndarray
  index: np.ndarray


def lower_envelope(compute: Any, error: Any) -> Envelope:
  """The points that no other point beats on compute without losing on error.

  Point i is dropped when some j has ``compute[j] <= compute[i]`` and ``error[j] <=
  error[i]`` with at least one strict; of exact duplicates only the lowest index stays.
  Non-finite points are never on the envelope.

  Args:
    compute: 1-D compute per point.
    error: 1-D error per point, same length.

  Returns:
    An ``Envelope``, sorted by compute.
  """
  c = np.asarray(compute, dtype=float).ravel()
  e = np.asarray(error, dtype=float).ravel()
  if c.shape != e.shape:
    raise ValueError(f"{c.size} compute values but {e.size} errors.")
  idx = np.flatnonzero(np.isfinite(c) & np.isfinite(e))
  # By compute, then error, then index: a point is on the envelope iff its error is
  # strictly below every error before it.
  idx = idx[np.lexsort((idx, e[idx], c[idx]))]
  keep = []
  best = math.inf
  for i in idx:
    if e[i] < best:
      keep.append(i)
      best = e[i]
  keep = np.array(keep, dtype=int)
  return Envelope(c[keep], e[keep], keep)


class RecordFrontier(NamedTuple):
  """The envelope of (group, k) records.

  Attributes:
    compute: ``[P]`` the compute the envelope is over (adaptation or total FLOPs).
    error: ``[P]`` errors.
    index: ``[P]`` indices into the records given.
    groups: ``[P]`` group of each frontier record.
    k: ``[P]`` test-time steps of each frontier record.
    records: the frontier's ``Record``s.
    n_test: the number of test episodes of total FLOPs (None for adaptation FLOPs).
  """
  compute: np.ndarray
  error: np.ndarray
  index: np.ndarray
  groups: tuple[str, ...]
  k: tuple[float, ...]
  records: tuple[Record, ...]
  n_test: Optional[float]


def _record_frontier(recs: list[Record], compute: np.ndarray,
                     n_test: Optional[float]) -> RecordFrontier:
  env = lower_envelope(compute, [r.error for r in recs])
  on = tuple(recs[i] for i in env.index)
  return RecordFrontier(env.compute, env.error, env.index, tuple(r.group for r in on),
                        tuple(r.k for r in on), on, n_test)


def adaptation_frontier(records: Sequence[Union[Record, Mapping[str, Any]]]
                        ) -> RecordFrontier:
  """The envelope of error against adaptation FLOPs per episode, over every (group, k).

  Args:
    records: ``Record``s or dicts (see ``as_records``).

  Returns:
    A ``RecordFrontier`` over ``adaptation_flops`` (``n_test`` None).
  """
  recs = as_records(records)
  return _record_frontier(recs, np.array([r.adaptation_flops for r in recs]), None)


def total_flops_frontier(records: Sequence[Union[Record, Mapping[str, Any]]],
                         n_test: float) -> RecordFrontier:
  """The envelope of error against ``M + n_test * a(k)``, over every (group, k).

  More test episodes weigh adaptation more, so the frontier moves to records with
  cheaper adaptation (and dearer meta-training) as n_test grows.

  Args:
    records: ``Record``s or dicts (see ``as_records``).
    n_test: number of test episodes (explicit).

  Returns:
    A ``RecordFrontier`` over total FLOPs.
  """
  recs = as_records(records)
  m = np.array([r.meta_training_flops for r in recs])
  a = np.array([r.adaptation_flops for r in recs])
  return _record_frontier(recs, total_flops(m, a, n_test), float(n_test))


# --------------------------------------------------------------------------- interpolation


def _locate(x: float, log_xs: np.ndarray) -> Optional[tuple[int, float]]:
  """(j, t) with ``log x = (1 - t) log_xs[j] + t log_xs[j + 1]`` for ascending
  ``log_xs``; None outside their range (or for x <= 0)."""
  if not x > 0 or len(log_xs) == 0:
    return None
  lx = math.log(x)
  slack = _LOG_SLACK * max(1.0, abs(lx))
  if lx < log_xs[0] - slack or lx > log_xs[-1] + slack:
    return None
  if len(log_xs) == 1:
    return 0, 0.0
  j = int(np.clip(np.searchsorted(log_xs, lx) - 1, 0, len(log_xs) - 2))
  t = float(np.clip((lx - log_xs[j]) / (log_xs[j + 1] - log_xs[j]), 0.0, 1.0))
  return j, t


def interpolate_log(x: float, xs: Any, ys: Any) -> Optional[float]:
  """``ys`` at ``x``, linear in ``log x`` between measured ``xs``; None outside them.

  Args:
    x: where to interpolate (> 0).
    xs: 1-D measured positions (> 0, distinct; any order).
    ys: 1-D values at ``xs``.

  Returns:
    The interpolated value, or None when x lies outside ``[min xs, max xs]``.
  """
  xs = np.asarray(xs, dtype=float).ravel()
  ys = np.asarray(ys, dtype=float).ravel()
  if xs.shape != ys.shape:
    raise ValueError(f"{xs.size} positions but {ys.size} values.")
  if np.any(xs <= 0):
    raise ValueError("positions must be > 0 to interpolate in log.")
  order = np.argsort(xs)
  lxs = np.log(xs[order])
  if np.any(np.diff(lxs) <= 0):
    raise ValueError("positions must be distinct.")
  loc = _locate(float(x), lxs)
  if loc is None:
    return None
  j, t = loc
  y = ys[order]
  return float(y[j] if t == 0.0 else (1 - t) * y[j] + t * y[j + 1])


# --------------------------------------------------------------------------- groups


@dataclasses.dataclass(frozen=True)
class _Group:
  name: str
  meta_training_flops: float
  log_a: np.ndarray  # [K] ascending, a > 0 only.
  error: np.ndarray  # [K]
  values: Optional[np.ndarray]  # [S, E, K] or None.


def _groups(recs: list[Record]) -> list[_Group]:
  """Groups sorted by M, their k with a > 0 sorted by a; distinct M per group."""
  by: dict[str, list[Record]] = {}
  for r in recs:
    by.setdefault(r.group, []).append(r)
  out = []
  for name, rs in by.items():
    ms = {r.meta_training_flops for r in rs}
    if len(ms) != 1:
      raise ValueError(f"group {name!r} has several meta-training FLOPs: {sorted(ms)}.")
    rs = sorted((r for r in rs if r.adaptation_flops > 0), key=lambda r: r.adaptation_flops)
    log_a = np.log([r.adaptation_flops for r in rs])
    if np.any(np.diff(log_a) <= 0):
      raise ValueError(f"group {name!r} has two k with the same adaptation FLOPs.")
    values = None
    if rs and all(r.values is not None for r in rs):
      shapes = {r.values.shape for r in rs}
      if len(shapes) != 1:
        raise ValueError(f"group {name!r} has values of several shapes: {sorted(shapes)}.")
      values = np.stack([r.values for r in rs], axis=-1)
    out.append(_Group(name, ms.pop(), log_a, np.array([r.error for r in rs]), values))
  out.sort(key=lambda g: g.meta_training_flops)
  ms = [g.meta_training_flops for g in out]
  if len(set(ms)) != len(ms):
    raise ValueError("two groups have the same meta-training FLOPs; pass the groups of "
                     "one axis (e.g. K_train) at a time.")
  return out


def _counts(rng: np.random.Generator, n_boot: int, n: int) -> np.ndarray:
  """``[n_boot, n]`` multiplicities of n indices drawn with replacement per replicate."""
  idx = rng.integers(0, n, (n_boot, n)) + n * np.arange(n_boot)[:, None]
  return np.bincount(idx.ravel(), minlength=n_boot * n).reshape(n_boot, n).astype(float)


def _boot_curves(groups: list[_Group], n_boot: int, rng: np.random.Generator,
                 share_episodes: bool) -> list[np.ndarray]:
  """``[n_boot, K]`` resampled mean errors per group (see the module docstring)."""
  missing = [g.name for g in groups if g.values is None]
  if missing:
    raise ValueError(f"resampling needs values at every k; missing in groups {missing}.")
  shared = None
  if share_episodes:
    n_eps = {g.values.shape[1] for g in groups}
    if len(n_eps) != 1:
      raise ValueError(f"share_episodes needs one episode count; got {sorted(n_eps)}.")
    shared = _counts(rng, n_boot, n_eps.pop())
  out = []
  for g in groups:
    s, e, k = g.values.shape
    cs = _counts(rng, n_boot, s)
    ce = shared if shared is not None else _counts(rng, n_boot, e)
    per_seed = (ce @ g.values.transpose(1, 0, 2).reshape(e, s * k)).reshape(n_boot, s, k)
    out.append(np.einsum("bs,bsk->bk", cs, per_seed) / (s * e))
  return out


# --------------------------------------------------------------------------- iso-FLOP


@dataclasses.dataclass(frozen=True)
class IsoFlopProfile:
  """Error against the meta-training share of one total budget.

  Attributes:
    budget: the total FLOPs T.
    n_test: the number of test episodes.
    groups: every group, by meta-training FLOPs.
    meta_training_flops: ``[G]`` M per group.
    meta_fraction: ``[G]`` ``M / T``, the share spent on meta-training (the rest,
      ``n_test * a / T``, on test-time adaptation).
    adaptation_flops: ``[G]`` ``(T - M) / n_test``, the per-episode adaptation FLOPs the
      budget leaves (non-positive where M alone exceeds T).
    error: per group the error interpolated in log a at those FLOPs; None outside the
      group's measured a (never extrapolated).
    bracketed: the lowest profile point has a measured point on either side.
    optimum_fraction: the meta-training share at the parabola's vertex (None if not
      bracketed).
    optimum_meta_training_flops: ``optimum_fraction * T``.
    optimum_adaptation_flops: ``(T - M*) / n_test``.
    optimum_error: the parabola at its vertex.
    optimum_fraction_ci: percentile interval of the resampled optimum share, or None
      (no resampling, or no optimum).
    boot_censored_fraction: share of replicates whose lowest point was at the profile's
      edge; they count at that edge's share (so the interval reaches the edge).
    n_boot: replicates drawn (0 without resampling).
  """
  budget: float
  n_test: float
  groups: tuple[str, ...]
  meta_training_flops: np.ndarray
  meta_fraction: np.ndarray
  adaptation_flops: np.ndarray
  error: tuple[Optional[float], ...]
  bracketed: bool
  optimum_fraction: Optional[float]
  optimum_meta_training_flops: Optional[float]
  optimum_adaptation_flops: Optional[float]
  optimum_error: Optional[float]
  optimum_fraction_ci: Optional[tuple[float, float]]
  boot_censored_fraction: Optional[float]
  n_boot: int


def _vertex(x: np.ndarray, y: np.ndarray, window: int) -> tuple[float, float, bool]:
  """(x, y) of the minimum of a profile sorted by x, and whether it is bracketed.

  Unbracketed: the lowest point itself. Bracketed: the vertex of the least-squares
  parabola through the lowest point and ``window`` neighbours either side, clipped to
  their span; if that parabola is not convex, the three-point one; if neither, the
  lowest point.
  """
  i = int(np.argmin(y))
  if i == 0 or i == len(y) - 1:
    return float(x[i]), float(y[i]), False
  for w in (window, 1) if window > 1 else (1,):
    lo, hi = max(0, i - w), min(len(y), i + w + 1)
    xs, ys = x[lo:hi], y[lo:hi]
    x0 = xs.mean()
    c2, c1, c0 = np.polyfit(xs - x0, ys, 2)
    if c2 > 0:
      xv = float(np.clip(-c1 / (2 * c2), xs[0] - x0, xs[-1] - x0))
      return xv + x0, float(c0 + c1 * xv + c2 * xv * xv), True
  return float(x[i]), float(y[i]), True


def iso_flop_profiles(records: Sequence[Union[Record, Mapping[str, Any]]],
                      budgets: Sequence[float], n_test: float, *,
                      rng: Optional[np.random.Generator] = None, n_boot: int = 200,
                      window: int = 2, percentiles: tuple[float, float] = (2.5, 97.5),
                      share_episodes: bool = False) -> list[IsoFlopProfile]:
  """At each total budget, error against the share spent on meta-training, and its optimum.

  Args:
    records: the (group, k) records of one axis of the sweep (groups must have distinct
      meta-training FLOPs), ``Record``s or dicts (see ``as_records``).
    budgets: total FLOPs T, one profile each.
    n_test: number of test episodes (explicit).
    rng: the only randomness of the resampling; None for no interval.
    n_boot: replicates (used only with ``rng``); every record needs ``values``.
    window: profile points either side of the lowest in the parabola fit (>= 1).
    percentiles: low and high percentiles of the interval.
    share_episodes: one episode draw for every group (they were scored on the same
      episodes), else an independent draw per group.

  Returns:
    One ``IsoFlopProfile`` per budget, in order.
  """
  _check_n_test(n_test)
  if n_test == 0:
    raise ValueError("n_test must be > 0 for an iso-FLOP profile.")
  if window < 1:
    raise ValueError(f"window must be >= 1; got {window}.")
  groups = _groups(as_records(records))
  boot = (_boot_curves(groups, int(n_boot), rng, share_episodes)
          if rng is not None and n_boot > 0 else None)
  m = np.array([g.meta_training_flops for g in groups])
  out = []
  for budget in budgets:
    budget = float(budget)
    if not budget > 0:
      raise ValueError(f"budgets must be > 0; got {budget}.")
    a_left = (budget - m) / n_test
    locs = [_locate(a, g.log_a) for a, g in zip(a_left, groups)]
    err = tuple(None if loc is None else float(_at(g.error, loc))
                for loc, g in zip(locs, groups))
    valid = [i for i, e in enumerate(err) if e is not None]
    x = np.log(m[valid] / (budget - m[valid]))  # log(M / (n_test a)): logit of the share.
    opt = dict(bracketed=False, optimum_fraction=None, optimum_meta_training_flops=None,
               optimum_adaptation_flops=None, optimum_error=None, optimum_fraction_ci=None,
               boot_censored_fraction=None)
    if len(valid) >= 3:
      xv, yv, bracketed = _vertex(x, np.array([err[i] for i in valid]), window)
      opt["bracketed"] = bracketed
      if bracketed:
        f = _share(xv)
        opt.update(optimum_fraction=f, optimum_meta_training_flops=f * budget,
                   optimum_adaptation_flops=(1 - f) * budget / n_test, optimum_error=yv)
      if bracketed and boot is not None:
        ys = np.stack([_at(boot[i], locs[i]) for i in valid], axis=1)  # [B, V]
        fits = [_vertex(x, y, window) for y in ys]
        xs_b = np.array([v[0] for v in fits])
        lo, hi = np.percentile(xs_b, percentiles)
        opt.update(optimum_fraction_ci=(_share(lo), _share(hi)),
                   boot_censored_fraction=float(np.mean([not v[2] for v in fits])))
    out.append(IsoFlopProfile(
        budget=budget, n_test=float(n_test), groups=tuple(g.name for g in groups),
        meta_training_flops=m, meta_fraction=m / budget, adaptation_flops=a_left,
        error=err, n_boot=0 if boot is None else int(n_boot), **opt))
  return out


def _share(x: float) -> float:
  """The meta-training share f of ``x = log(f / (1 - f))``."""
  return float(1.0 / (1.0 + math.exp(-x)))


def _at(curves: np.ndarray, loc: tuple[int, float]) -> np.ndarray:
  """``[..., K]`` curves interpolated at a ``_locate`` position."""
  j, t = loc
  if t == 0.0:
    return curves[..., j]
  return (1 - t) * curves[..., j] + t * curves[..., j + 1]


# --------------------------------------------------------------------------- error grids


class ErrorGrid(NamedTuple):
  """Errors of a sweep on a (meta-training FLOPs, adaptation FLOPs) grid.

  Attributes:
    groups: the group of each row.
    meta_training_flops: ``[nM]`` M per row, ascending.
    adaptation_flops: ``[nA]`` a per column, ascending.
    error: ``[nM, nA]`` errors, NaN outside a row's measured a.
    samples: ``[n_boot, nM, nA]`` resampled errors (NaN where ``error`` is), or None.
  """
  groups: tuple[str, ...]
  meta_training_flops: np.ndarray
  adaptation_flops: np.ndarray
  error: np.ndarray
  samples: Optional[np.ndarray]


def error_grid_from_records(records: Sequence[Union[Record, Mapping[str, Any]]],
                            adaptation_flops: Any = None, *,
                            rng: Optional[np.random.Generator] = None, n_boot: int = 200,
                            share_episodes: bool = False) -> ErrorGrid:
  """Records interpolated (in log a, within each group's range) to a common grid.

  Args:
    records: the records of one axis (distinct meta-training FLOPs per group).
    adaptation_flops: the grid's a values (> 0); default every measured a > 0.
    rng: randomness of the resampled grids; None for none.
    n_boot: resampled grids (used only with ``rng``).
    share_episodes: as in ``iso_flop_profiles``.

  Returns:
    An ``ErrorGrid``.
  """
  groups = _groups(as_records(records))
  if adaptation_flops is None:
    a = np.unique(np.exp(np.concatenate([g.log_a for g in groups])))
  else:
    a = np.unique(np.asarray(adaptation_flops, dtype=float))
    if np.any(a <= 0):
      raise ValueError("adaptation FLOPs of the grid must be > 0.")
  boot = (_boot_curves(groups, int(n_boot), rng, share_episodes)
          if rng is not None and n_boot > 0 else None)
  err = np.full((len(groups), len(a)), np.nan)
  samples = None if boot is None else np.full((int(n_boot), len(groups), len(a)), np.nan)
  for i, g in enumerate(groups):
    for j, aj in enumerate(a):
      loc = _locate(float(aj), g.log_a)
      if loc is not None:
        err[i, j] = _at(g.error, loc)
        if samples is not None:
          samples[:, i, j] = _at(boot[i], loc)
  return ErrorGrid(tuple(g.name for g in groups),
                   np.array([g.meta_training_flops for g in groups]), a, err, samples)


def bootstrap_error_grids(values: Any, n_boot: int, rng: np.random.Generator, *,
                          share_episodes: bool = False) -> np.ndarray:
  """Resampled mean-error grids from per-cell values.

  Args:
    values: ``[nM, nA, seeds, episodes]``: row i is one trained group (its seeds), scored
      on the same episodes at every column.
    n_boot: replicates.
    rng: the only randomness.
    share_episodes: one episode draw for every row, else one per row.

  Returns:
    ``[n_boot, nM, nA]`` mean errors.
  """
  v = np.asarray(values, dtype=float)
  if v.ndim != 4:
    raise ValueError(f"values must be [nM, nA, seeds, episodes]; got shape {v.shape}.")
  if not np.all(np.isfinite(v)):
    raise ValueError("values must be finite.")
  groups = [_Group(str(i), float(i), np.zeros(v.shape[1]), v[i].mean((1, 2)),
                   np.moveaxis(v[i], 0, -1)) for i in range(v.shape[0])]
  return np.stack(_boot_curves(groups, int(n_boot), rng, share_episodes), axis=1)


# --------------------------------------------------------------------------- iso-error


def _contour_log_a(log_a: np.ndarray, err: np.ndarray, level: float) -> np.ndarray:
  """``[..., nM]`` log a of the iso-error contour per row of ``[..., nM, nA]`` errors
  (NaN where a row has none; see the module docstring)."""
  finite = np.isfinite(err)
  reach = finite & (err <= level)
  has = reach.any(-1) & finite.any(-1)
  j = np.argmax(reach, axis=-1)
  first = np.argmax(finite, axis=-1)
  e_j = np.take_along_axis(err, j[..., None], -1)[..., 0]
  prev = np.maximum(j - 1, 0)
  e_p = np.take_along_axis(err, prev[..., None], -1)[..., 0]
  exact = has & (e_j == level)
  ok = has & ~exact & (j > first) & np.isfinite(e_p)
  with np.errstate(invalid="ignore", divide="ignore"):
    t = (e_p - level) / (e_p - e_j)
  out = np.full(err.shape[:-1], np.nan)
  out[exact] = log_a[j[exact]]
  out[ok] = log_a[prev[ok]] + t[ok] * (log_a[j[ok]] - log_a[prev[ok]])
  return out


def _grid(grid_m: Any, grid_a: Any, error_grid: Any) -> tuple[np.ndarray, np.ndarray,
                                                                np.ndarray]:
  lm = np.log(np.asarray(grid_m, dtype=float).ravel())
  la = np.log(np.asarray(grid_a, dtype=float).ravel())
  err = np.asarray(error_grid, dtype=float)
  if err.shape[-2:] != (lm.size, la.size):
    raise ValueError(f"error grid of shape {err.shape} for {lm.size} x {la.size} FLOPs.")
  if not (np.all(np.isfinite(lm)) and np.all(np.isfinite(la))):
    raise ValueError("grid FLOPs must be finite and > 0.")
  if np.any(np.diff(lm) <= 0) or np.any(np.diff(la) <= 0):
    raise ValueError("grid FLOPs must be strictly increasing.")
  return lm, la, err


class IsoErrorContour(NamedTuple):
  """Where the error reaches a level on a (M, a) grid.

  Attributes:
    level: the error level.
    meta_training_flops: ``[nM]`` every row's M.
    adaptation_flops: per row, the cheapest a (per episode) reaching the level, or None.
  """
  level: float
  meta_training_flops: np.ndarray
  adaptation_flops: tuple[Optional[float], ...]


def _opt(v: float) -> Optional[float]:
  return float(v) if math.isfinite(v) else None


def iso_error_contour(grid_M: Any, grid_a: Any, error_grid: Any,
                      level: float) -> IsoErrorContour:
  """The iso-error contour: per meta-training budget, the test-time FLOPs reaching a level.

  Args:
    grid_M: ``[nM]`` meta-training FLOPs of the rows, increasing.
    grid_a: ``[nA]`` adaptation FLOPs per episode of the columns, increasing.
    error_grid: ``[nM, nA]`` errors (NaN: not measured).
    level: the error level.

  Returns:
    An ``IsoErrorContour`` (None for a row that does not reach the level within its
    measured a, or already beats it at the smallest).
  """
  lm, la, err = _grid(grid_M, grid_a, error_grid)
  if err.ndim != 2:
    raise ValueError(f"error_grid must be 2-D; got shape {err.shape}.")
  log_a = _contour_log_a(la, err, float(level))
  return IsoErrorContour(float(level), np.exp(lm), tuple(_opt(v) for v in np.exp(log_a)))


@dataclasses.dataclass(frozen=True)
class ExchangeRate:
  """The train/test compute exchange rate along an iso-error contour.

  Attributes:
    level: the error level.
    meta_training_flops: ``[nM]`` every row's M.
    adaptation_flops: per row, the contour's a, or None.
    slope: per row, ``d log a / d log M`` along the contour, or None (no contour point,
      or no neighbouring one).
    slope_ci: per row, the percentile interval of the resampled slopes at that row, or
      None (no samples, or fewer than half the replicates have a slope there).
    overall_slope: least-squares slope of ``log a`` on ``log M`` over the contour points
      (None with fewer than two).
    overall_slope_ci: its percentile interval over the samples, or None.
    n_samples: resampled grids used.
  """
  level: float
  meta_training_flops: np.ndarray
  adaptation_flops: tuple[Optional[float], ...]
  slope: tuple[Optional[float], ...]
  slope_ci: tuple[Optional[tuple[float, float]], ...]
  overall_slope: Optional[float]
  overall_slope_ci: Optional[tuple[float, float]]
  n_samples: int


def _slopes(lm: np.ndarray, la_c: np.ndarray) -> np.ndarray:
  """``d la_c / d lm`` along each run of adjacent finite rows (NaN elsewhere)."""
  out = np.full(la_c.shape, np.nan)
  ok = np.isfinite(la_c)
  i = 0
  while i < len(ok):
    if not ok[i]:
      i += 1
      continue
    j = i
    while j < len(ok) and ok[j]:
      j += 1
    if j - i >= 2:
      out[i:j] = np.gradient(la_c[i:j], lm[i:j], edge_order=2 if j - i >= 3 else 1)
    i = j
  return out


def _overall(lm: np.ndarray, la_c: np.ndarray) -> float:
  ok = np.isfinite(la_c)
  if ok.sum() < 2:
    return math.nan
  return float(np.polyfit(lm[ok], la_c[ok], 1)[0])


def exchange_rate(grid_M: Any, grid_a: Any, error_grid: Any, level: float, *,
                  error_samples: Any = None,
                  percentiles: tuple[float, float] = (2.5, 97.5)) -> ExchangeRate:
  """The local slope ``d log(test-time FLOPs) / d log(meta-training FLOPs)`` of the
  iso-error contour (Jones 2021), with intervals from resampled error grids.

  Args:
    grid_M: ``[nM]`` meta-training FLOPs of the rows, increasing.
    grid_a: ``[nA]`` adaptation FLOPs per episode of the columns, increasing.
    error_grid: ``[nM, nA]`` errors (NaN: not measured).
    level: the error level.
    error_samples: ``[n, nM, nA]`` resampled error grids (e.g. ``bootstrap_error_grids``
      or ``ErrorGrid.samples``), or None for no intervals.
    percentiles: low and high percentiles of the intervals.

  Returns:
    An ``ExchangeRate``; a sample's slope at a row is taken at that sample's own contour
    point on the row.
  """
  lm, la, err = _grid(grid_M, grid_a, error_grid)
  if err.ndim != 2:
    raise ValueError(f"error_grid must be 2-D; got shape {err.shape}.")
  la_c = _contour_log_a(la, err, float(level))
  slope = _slopes(lm, la_c)
  overall = _overall(lm, la_c)
  ci: list[Optional[tuple[float, float]]] = [None] * len(lm)
  overall_ci = None
  n = 0
  if error_samples is not None:
    _, _, samples = _grid(grid_M, grid_a, error_samples)
    if samples.ndim != 3:
      raise ValueError(f"error_samples must be 3-D; got shape {samples.shape}.")
    n = samples.shape[0]
    la_s = _contour_log_a(la, samples, float(level))
    slopes_s = np.stack([_slopes(lm, row) for row in la_s])
    for i in range(len(lm)):
      s = slopes_s[:, i]
      s = s[np.isfinite(s)]
      if n and len(s) >= 0.5 * n:
        lo, hi = np.percentile(s, percentiles)
        ci[i] = (float(lo), float(hi))
    overall_s = np.array([_overall(lm, row) for row in la_s])
    overall_s = overall_s[np.isfinite(overall_s)]
    if n and len(overall_s) >= 0.5 * n:
      lo, hi = np.percentile(overall_s, percentiles)
      overall_ci = (float(lo), float(hi))
  return ExchangeRate(
      level=float(level), meta_training_flops=np.exp(lm),
      adaptation_flops=tuple(_opt(v) for v in np.exp(la_c)),
      slope=tuple(_opt(v) for v in slope), slope_ci=tuple(ci),
      overall_slope=_opt(overall), overall_slope_ci=overall_ci, n_samples=int(n))
