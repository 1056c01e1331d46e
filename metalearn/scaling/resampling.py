"""Crossed (seeds × shared episodes) bootstrap replicates of means and whole curves.

Values ``v[S, E(, P)]``: S training seeds scored on the same E evaluation episodes (at P
points). A replicate draws seeds and, independently, episodes with replacement (the
pigeonhole bootstrap, Owen 2007), optionally with Rao-Wu rescaled weights (Rao & Wu
1988) so the seed term is not shrunk by (S − 1)/S. ``intervals`` builds intervals of
means from these; ``fit_bootstrap`` refits curves to ``curve_replicates``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any, Union

import numpy as np

from metalearn.scaling.components import as_values, cochran_cox, vc_terms

RngLike = Union[np.random.Generator, int, None]
_CHUNK_ELEMENTS = 4_000_000  # float64 episode weights per chunk of replicates (32 MB).


def as_rng(rng: RngLike) -> np.random.Generator:
  """A generator; None is seed 0, so reports are reproducible."""
  if isinstance(rng, np.random.Generator):
    return rng
  return np.random.default_rng(0 if rng is None else rng)


def _weights(rng: np.random.Generator, n: int, size: int, rescale: bool) -> np.ndarray:
  """``[n, size]`` multinomial resampling counts (mean 1), Rao-Wu rescaled if asked."""
  idx = rng.integers(0, size, (n, size))
  counts = np.bincount((idx + size * np.arange(n)[:, None]).ravel(), minlength=n * size)
  w = counts.reshape(n, size).astype(np.float64)
  if rescale and size > 1:
    w = 1.0 + math.sqrt(size / (size - 1)) * (w - 1.0)
  return w


def replicates(arrays: Sequence[np.ndarray], coefs: Sequence[float], n_boot: int,
                rng: np.random.Generator, rescale: bool) -> np.ndarray:
  """``[n_boot, P]`` replicates of ``Σ_i c_i · mean(x_i)``, x_i as ``[S_i, E, P]``.

  Episodes are resampled once per replicate for all arrays (they are shared); seeds
  independently per array.
  """
  e, p = arrays[0].shape[1], arrays[0].shape[2]
  out = np.empty((n_boot, p))
  chunk = max(1, _CHUNK_ELEMENTS // e)
  for start in range(0, n_boot, chunk):
    n = min(chunk, n_boot - start)
    u = _weights(rng, n, e, rescale)
    acc = np.zeros((n, p))
    for c, x in zip(coefs, arrays):
      s = x.shape[0]
      w = _weights(rng, n, s, rescale)
      for k in range(s):
        acc += (c / (s * e)) * w[:, k, None] * (u @ x[k])
    out[start:start + n] = acc
  return out


def crossed_bootstrap_means(v: Any, n_boot: int, rng: RngLike = None) -> np.ndarray:
  """Pigeonhole (two-way crossed) bootstrap replicates of the grand mean.

  Each replicate draws S seeds and, independently, E episodes with replacement and
  averages the values of every (drawn seed, drawn episode) pair (Owen 2007). The same
  draw is used at every P, so replicates are paired across test-time steps. With S == 1
  it resamples episodes only.

  Args:
    v: values ``[S, E]`` or ``[S, E, P]``.
    n_boot: number of replicates.
    rng: a ``np.random.Generator``, a seed, or None (seed 0).

  Returns:
    ``[n_boot]`` replicates for 2-D ``v``, ``[n_boot, P]`` for 3-D.
  """
  x = as_values(v)
  flat = x if x.ndim == 3 else x[..., None]
  out = replicates([flat], [1.0], int(n_boot), as_rng(rng), rescale=False)
  return out if x.ndim == 3 else out[:, 0]



@dataclasses.dataclass(frozen=True)
class CurveReplicates:
  """Crossed bootstrap replicates of a whole curve's means, for statistics of the curve
  (a fitted exponent, a floor) that have no closed-form interval.

  Attributes:
    estimate: the observed mean curve ``[P]``.
    replicates: ``[n_boot, P]`` replicate curves: seeds and episodes resampled once per
      replicate for every point (so the curve's correlation across P is kept), with
      Rao-Wu rescaled weights when there are several seeds (their seed term is then
      not shrunk by ``(S−1)/S``).
    level: the nominal coverage of ``delta``'s multiplier.
    n_seeds: seeds S.
    single_seed: one seed: the replicates resample episodes only and intervals built
      from them cover that trained model, not a new training seed.
    values: the ``[S, E, P]`` values.
  """
  estimate: np.ndarray
  replicates: np.ndarray
  level: float
  n_seeds: int
  single_seed: bool
  values: np.ndarray = dataclasses.field(repr=False, compare=False)

  def delta(self, gradient: Any) -> tuple[np.ndarray, np.ndarray]:
    """The delta-method standard error and Cochran-Cox multiplier of statistics with
    the given sensitivities to the mean curve.

    A smooth statistic ``θ(ȳ)`` of the mean curve is, to first order, the mean of the
    per-(seed, episode) values ``z[s, e] = Σ_p g_p v[s, e, p]``, so its variance and
    multiplier are those of ``point_interval(z)`` (``"vc"``): a floor set by the seeds
    gets a t_{S−1}-like multiplier, an exponent set by the episodes a t_{E−1}-like one,
    and the interaction is counted once (the crossed bootstrap counts it about three
    times, Owen 2007).

    Args:
      gradient: ``[P]`` or ``[P, M]``: ``dθ_m / dȳ_p`` for M statistics.

    Returns:
      ``(se [M], multiplier [M])``.
    """
    g = np.asarray(gradient, dtype=np.float64)
    z = self.values @ g.reshape(g.shape[0], -1)
    _, terms, _ = vc_terms([z], [1.0])
    var, mult = cochran_cox(terms, 0.5 + self.level / 2)
    return np.sqrt(np.atleast_1d(var)), np.atleast_1d(mult)


def curve_replicates(v: Any, n_boot: int, rng: RngLike = None, *,
                     level: float = 0.95) -> CurveReplicates:
  """Replicates of the mean curve of ``v [S, E, P]`` (S seeds, E shared episodes, P
  points) for refitting a curve to each (``fits.bootstrap``).

  ``fits.bootstrap`` takes the shape of each parameter's interval from the refits'
  percentiles and its width from ``CurveReplicates.delta`` (the variance components
  of the parameter's linearisation, with its Cochran-Cox multiplier). In simulations of
  a power law with floor measured with 3 seeds × 100 episodes (``tests/fits_test.py``)
  the 95% intervals of the floor and the exponent covered about 0.95.

  Args:
    v: ``[S, E, P]`` (or ``[E, P]``, one seed) per-episode values.
    n_boot: replicates.
    rng: generator or seed (None: seed 0).
    level: nominal coverage for ``CurveReplicates.delta``.

  Returns:
    A ``CurveReplicates``.
  """
  x = np.asarray(v, dtype=np.float64)
  x = as_values(x[None] if x.ndim == 2 else x)
  if x.ndim != 3:
    raise ValueError(f"v must be [seeds, episodes, points], got shape {x.shape}")
  reps = replicates([x], [1.0], int(n_boot), as_rng(rng), rescale=x.shape[0] > 1)
  return CurveReplicates(estimate=x.mean((0, 1)), replicates=reps, level=float(level),
                         n_seeds=int(x.shape[0]), single_seed=x.shape[0] < 2, values=x)
