"""The records a compute-frontier analysis reads, and what its analyses share.

A sweep trains models at several settings ("groups": K_train, shots, number of tasks, ...)
and evaluates each at several test-time inner-step counts k. Every (group, k) is a
``Record``: meta-training FLOPs M (one per group), adaptation FLOPs per test episode
a(k), the mean error and, optionally, the values it is the mean of. A deployment that
adapts on ``n_test`` test episodes costs ``T = M + n_test * a(k)`` FLOPs in all;
``n_test`` is always an explicit argument, never a default.

Pure numpy. Here: ``Record`` and its validation (``as_records``), ``total_flops``,
interpolation in log FLOPs (``interpolate_log``), and the grouping and resampling of
records that ``allocation`` (iso-FLOP profiles) and ``exchange`` (error grids) share:

* Interpolation is linear in log compute (error against ``log a`` within a group) and
  only inside the measured range: outside it the answer is ``None``, never an
  extrapolation. Records with ``a <= 0`` (e.g. k = 0 without a query pass) take no part
  in log interpolation.
* Resampling (the intervals): within a group one draw of seeds and one of episodes is
  shared by every k (the same models score the same episodes at every k), and the same
  episode draw is used for every seed ("seeds share the same episodes"). Groups are drawn
  independently (different trained models) unless ``share_episodes`` also shares the
  episode draw across groups. 1-D values are replicate errors (a seeds axis with one
  episode each). Intervals are percentile intervals.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any, Optional, Union

import numpy as np

__all__ = ["Record", "as_records", "interpolate_log", "total_flops"]

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

# --------------------------------------------------------------------------- interpolation


def locate(x: float, log_xs: np.ndarray) -> Optional[tuple[int, float]]:
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
  loc = locate(float(x), lxs)
  if loc is None:
    return None
  j, t = loc
  y = ys[order]
  return float(y[j] if t == 0.0 else (1 - t) * y[j] + t * y[j + 1])


def _at(curves: np.ndarray, loc: tuple[int, float]) -> np.ndarray:
  """``[..., K]`` curves interpolated at a ``locate`` position."""
  j, t = loc
  if t == 0.0:
    return curves[..., j]
  return (1 - t) * curves[..., j] + t * curves[..., j + 1]


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
