"""Compute allocation at a fixed total budget: iso-FLOP profiles and their optimum.

Pure numpy, over the ``Record``s of ``records`` (a deployment on ``n_test`` test
episodes costs ``T = M + n_test * a(k)``; ``n_test`` is always explicit).

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

Intervals resample seeds and episodes as ``records`` describes.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any, Optional, Union

import numpy as np

from metalearn.scaling.records import (Record, _at, _boot_curves, _check_n_test, _groups,
                                       locate, as_records)

__all__ = ["IsoFlopProfile", "iso_flop_profiles"]


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
    locs = [locate(a, g.log_a) for a, g in zip(a_left, groups)]
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
