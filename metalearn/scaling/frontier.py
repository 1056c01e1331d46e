"""Compute frontiers: Pareto envelopes, iso-FLOP profiles and the train/test exchange rate.

The frontier itself is here: the Pareto envelope of error against adaptation FLOPs or
against total FLOPs ``M + n_test * a(k)`` over every (group, k) ``Record``. This module
is also the analysis' entry point: it re-exports the names of

* ``records``: ``Record``, ``as_records``, ``total_flops``, ``interpolate_log`` (what a
  record is, and interpolation in log FLOPs);
* ``allocation``: ``IsoFlopProfile``, ``iso_flop_profiles`` (the best split of a total
  budget between meta-training and adaptation);
* ``exchange``: ``ErrorGrid``, ``error_grid_from_records``, ``bootstrap_error_grids``,
  ``IsoErrorContour``, ``iso_error_contour``, ``ExchangeRate``, ``exchange_rate``
  (iso-error contours and the train/test exchange rate).

Pure numpy. The choice that matters here:

* ``lower_envelope``: a point is on the envelope when no other point has compute <= and
  error <= with at least one strict. Exact duplicates keep only the first (lowest index),
  so the envelope is strictly increasing in compute and strictly decreasing in error.
  Points with a non-finite compute or error are never on it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple, Optional, Union

import numpy as np

from metalearn.scaling.allocation import IsoFlopProfile, iso_flop_profiles
from metalearn.scaling.exchange import (ErrorGrid, ExchangeRate, IsoErrorContour,
                                        bootstrap_error_grids, error_grid_from_records,
                                        exchange_rate, iso_error_contour)
from metalearn.scaling.records import Record, as_records, interpolate_log, total_flops

__all__ = [
    "Envelope", "ErrorGrid", "ExchangeRate", "IsoErrorContour", "IsoFlopProfile",
    "Record", "RecordFrontier", "adaptation_frontier", "as_records",
    "bootstrap_error_grids", "error_grid_from_records", "exchange_rate",
    "interpolate_log", "iso_error_contour", "iso_flop_profiles", "lower_envelope",
    "total_flops", "total_flops_frontier",
]


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
