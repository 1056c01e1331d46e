"""The train/test exchange rate: error grids, iso-error contours and their slope.

Pure numpy, over the ``Record``s of ``records``: an ``ErrorGrid`` puts a sweep's errors
on a (meta-training FLOPs M, adaptation FLOPs a) grid, interpolated in log a within each
group's measured range (resampled grids as ``records`` describes).

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

from metalearn.scaling.records import (Record, _at, _boot_curves, _Group, _groups, locate,
                                       as_records)

__all__ = [
    "ErrorGrid", "ExchangeRate", "IsoErrorContour", "bootstrap_error_grids",
    "error_grid_from_records", "exchange_rate", "iso_error_contour",
]


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
      loc = locate(float(aj), g.log_a)
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
