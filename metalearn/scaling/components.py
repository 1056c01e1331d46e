"""Variance components of crossed seed × episode values (the maths behind ``intervals``).

``y[s, e] = mu + a[s] + b[e] + eps[s, e]``: the two-way random-effects ANOVA (method of
moments), its Satterthwaite degrees of freedom and the Cochran-Cox multiplier that
``intervals`` builds its default ``"vc"`` intervals from. See ``intervals``' docstring for
the model, the methods and their measured coverage.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats as sps


@dataclasses.dataclass(frozen=True)
class VarianceComponents:
  """Two-way random-effects ANOVA (method of moments) of ``v[S, E(, P)]``.

  Mean squares: ``ms_seed = E · Σ_s (ȳ_s. − ȳ)² / (S−1)``,
  ``ms_episode = S · Σ_e (ȳ_.e − ȳ)² / (E−1)`` and
  ``ms_resid = Σ_se (y − ȳ_s. − ȳ_.e + ȳ)² / ((S−1)(E−1))``, with expectations
  ``σe² + E σa²``, ``σe² + S σb²`` and ``σe²``; they are independent under normality.

  ``Var(mean) = σa²/S + σb²/E + σe²/(SE)`` is estimated as the sum of two parts:

  * ``var_seed_means = ms_seed / (S E)`` (``S − 1`` df): the variance of the mean of the S
    seed means about ``mu + b̄``, i.e. ``s_a²/S + s_e²/(SE)`` with ``s_a² = (ms_seed −
    ms_resid) / E`` left untruncated. It is an exact chi-square (t-pivot) term, which is
    why it is kept whole rather than split.
  * ``var_episode = max(ms_episode − ms_resid, 0) / (S E)``: ``s_b²/E``, the variance of
    the shared episode mean ``b̄``, truncated at 0, with Satterthwaite df.

  With S == 1 only ``var_episode = ms_episode / E`` (``E − 1`` df) exists: the variance of
  the mean over episodes of the one seed, which cannot include seed variance.

  Attributes:
    ms_seed: seed mean square (nan when S == 1).
    ms_episode: episode mean square.
    ms_resid: residual (interaction) mean square (nan when S == 1).
    sigma2_seed: ``max(ms_seed − ms_resid, 0) / E`` (nan when S == 1).
    sigma2_episode: ``max(ms_episode − ms_resid, 0) / S`` (``ms_episode`` when S == 1,
      where episode effect and interaction cannot be told apart).
    sigma2_resid: ``ms_resid`` (nan when S == 1).
    var_seed_means: ``ms_seed / (S E)`` (nan when S == 1).
    df_seed_means: ``S − 1``.
    var_episode: ``max(ms_episode − ms_resid, 0) / (S E)`` (``ms_episode / E`` if S == 1).
    df_episode: its Satterthwaite degrees of freedom, for information (``E − 1`` when
      S == 1; inf when the term is 0); the ``"vc"`` multiplier does not use it.
    var_mean: the estimate of ``Var(mean)``: ``var_seed_means + var_episode``.
    df_satterthwaite: Satterthwaite df of the textbook estimate
      ``(max(ms_seed − ms_resid, 0) + ms_episode) / (S E)`` used by ``"vc_satterthwaite"``.
  """
  ms_seed: Any
  ms_episode: Any
  ms_resid: Any
  sigma2_seed: Any
  sigma2_episode: Any
  sigma2_resid: Any
  var_seed_means: Any
  df_seed_means: int
  var_episode: Any
  df_episode: Any
  var_mean: Any
  df_satterthwaite: Any


def as_values(v: Any, name: str = "v") -> np.ndarray:
  """``v`` as float64 ``[S, E]`` or ``[S, E, P]``, checked."""
  x = np.asarray(v, dtype=np.float64)
  if x.ndim not in (2, 3):
    raise ValueError(f"{name} must be [seeds, episodes] or [seeds, episodes, P], "
                     f"got shape {x.shape}")
  if x.shape[0] < 1 or x.shape[1] < 2:
    raise ValueError(f"{name} needs at least one seed and two episodes, got shape {x.shape}")
  if not np.all(np.isfinite(x)):
    raise ValueError(f"{name} has non-finite values")
  return x


def _mean_squares(x: np.ndarray) -> tuple[Any, Any, Any]:
  """``(ms_seed, ms_episode, ms_resid)`` over axes 0 and 1 (nan seed terms when S == 1)."""
  s, e = x.shape[:2]
  grand = x.mean((0, 1))
  seed_means = x.mean(1)
  ep_means = x.mean(0)
  ms_b = s * ((ep_means - grand) ** 2).sum(0) / (e - 1)
  if s < 2:
    nan = np.full(np.shape(grand), math.nan)
    return nan, ms_b, nan
  ms_a = e * ((seed_means - grand) ** 2).sum(0) / (s - 1)
  resid = x - seed_means[:, None] - ep_means[None] + grand
  ms_e = (resid ** 2).sum((0, 1)) / ((s - 1) * (e - 1))
  return ms_a, ms_b, ms_e


def _satterthwaite_df(terms: Sequence[tuple[Any, float]]) -> Any:
  """``(Σ t)² / Σ t²/df`` of signed terms; inf where the sum is 0."""
  var = sum(t for t, _ in terms)
  den = sum(t * t / d for t, d in terms)
  with np.errstate(divide="ignore", invalid="ignore"):
    return np.where(den > 0, var * var / np.where(den > 0, den, 1.0), math.inf)


def vc_terms(arrays: Sequence[np.ndarray], coefs: Sequence[float]
              ) -> tuple[Any, list[list[tuple[Any, Any]]], bool]:
  """The ``"vc"`` decomposition of ``Var(Σ_i c_i · mean(x_i))``, independent seeds.

  The ``x_i`` (``[S_i, E, P]``) share their episodes and have independent seeds. Terms:
  per array with two or more seeds, ``c_i² · ms_seed / (S_i E)`` on ``S_i − 1`` df (its
  seed means' variance), summed into one term on Satterthwaite df when both points of an
  unpaired difference have them; and the shared-episode term
  ``s²(Σ_i c_i ȳ_i,.e) / E − Σ_i c_i² · ms_resid_i / (S_i E)``, truncated at 0 (the noise
  of an array with one seed stays in it: it is part of that seed's episode-only variance).

  Returns:
    ``(estimate, terms, seed_missing)``: the combination of grand means; the terms, each a
    list of signed, independent mean-square pieces ``(value, df)`` whose sum is the term
    (seed-means terms first, the episode term last); and whether an array had a single
    seed (its seed variance is then in no term).
  """
  e = arrays[0].shape[1]
  estimate = sum(c * x.mean((0, 1)) for c, x in zip(coefs, arrays))
  ep_var = sum(c * x.mean(0) for c, x in zip(coefs, arrays)).var(0, ddof=1) / e
  episode = [(ep_var, e - 1)]
  seeds = []
  seed_missing = False
  for c, x in zip(coefs, arrays):
    s = x.shape[0]
    if s < 2:
      seed_missing = True
      continue
    ms_a, _, ms_e = _mean_squares(x)
    seeds.append((c * c * ms_a / (s * e), s - 1))
    episode.append((-c * c * ms_e / (s * e), (s - 1) * (e - 1)))
  if len(seeds) > 1:
    # Independent seed sets (an unpaired difference): one seed term on Satterthwaite df.
    seeds = [(sum(m for m, _ in seeds), _satterthwaite_df(seeds))]
  return estimate, [[t] for t in seeds] + [episode], seed_missing


def satterthwaite_variance(arrays: Sequence[np.ndarray],
                            coefs: Sequence[float]) -> tuple[Any, Any]:
  """The textbook estimate of ``Var(Σ_i c_i · mean(x_i))`` and its Satterthwaite df.

  ``s²(Σ_i c_i ȳ_i,.e) / E + Σ_i c_i² · max(ms_seed_i − ms_resid_i, 0) / (S_i E)``: for
  one array, ``(max(ms_seed − ms_resid, 0) + ms_episode) / (S E)``.
  """
  e = arrays[0].shape[1]
  ep = sum(c * x.mean(0) for c, x in zip(coefs, arrays))
  terms = [(ep.var(0, ddof=1) / e, e - 1)]
  for c, x in zip(coefs, arrays):
    s = x.shape[0]
    if s < 2:
      continue
    ms_a, _, ms_e = _mean_squares(x)
    keep = ms_a > ms_e
    scale = c * c / (s * e)
    terms.append((np.where(keep, scale * ms_a, 0.0), s - 1))
    terms.append((np.where(keep, -scale * ms_e, 0.0), (s - 1) * (e - 1)))
  var = np.maximum(sum(t for t, _ in terms), 0.0)
  return var, _satterthwaite_df(terms)


def cochran_cox(terms: Sequence[Sequence[tuple[Any, Any]]], q: float) -> tuple[Any, Any]:
  """The ``"vc"`` variance and its Cochran-Cox multiplier.

  The variance is ``Σ_k max(T_k, 0)`` over terms ``T_k = Σ_j m_kj`` of signed mean-square
  pieces ``m_kj`` on ``df_kj``; the multiplier is ``Σ_k [T_k > 0] Σ_j m_kj · t_q(df_kj)``
  over that variance: every piece keeps the t-quantile of its own degrees of freedom, and
  the quantiles are averaged with the variance they carry (Cochran & Cox 1950). So the
  seed means, on S − 1 df, widen the interval in proportion to their share of the
  variance, and unlike a Satterthwaite df estimated from the same data the multiplier
  does not fall to the normal quantile when that share happens to come out small. (A
  near-zero episode term ``ms_episode − ms_resid`` adds about ``ms_episode · (t_q(E−1) −
  t_q(df_resid))``, which is small, where its own Satterthwaite df would explode.)

  Returns:
    ``(variance, multiplier)``; the multiplier is the normal quantile where the variance
    is 0.
  """
  var = 0.0
  num = 0.0
  for pieces in terms:
    total = sum(m for m, _ in pieces)
    keep = total > 0
    var = var + np.where(keep, total, 0.0)
    num = num + np.where(keep, sum(m * sps.t.ppf(q, d) for m, d in pieces), 0.0)
  with np.errstate(divide="ignore", invalid="ignore"):
    mult = np.where(var > 0, num / np.where(var > 0, var, 1.0), sps.norm.ppf(q))
  return var, mult


def variance_components(v: Any) -> VarianceComponents:
  """The two-way random-effects ANOVA of crossed seed × episode values.

  Args:
    v: values ``[S, E]`` or ``[S, E, P]`` (seeds, shared episodes, test-time steps).

  Returns:
    A ``VarianceComponents`` (floats for 2-D ``v``, arrays over P for 3-D).
  """
  x = as_values(v)
  s, e = x.shape[:2]
  ms_a, ms_b, ms_e = _mean_squares(x)
  _, terms, _ = vc_terms([x], [1.0])
  _, df_satt = satterthwaite_variance([x], [1.0])
  var_ep = np.maximum(sum(m for m, _ in terms[-1]), 0.0)
  df_ep = np.where(var_ep > 0, _satterthwaite_df(terms[-1]), math.inf)
  if s < 2:
    s2_a, s2_b, s2_e, var_sm = ms_a, ms_b, ms_e, ms_a
  else:
    s2_a = np.maximum(ms_a - ms_e, 0.0) / e
    s2_b = np.maximum(ms_b - ms_e, 0.0) / s
    s2_e = ms_e
    var_sm = terms[0][0][0]
  f = lambda a: np.asarray(a, dtype=np.float64)[()]
  return VarianceComponents(
      ms_seed=f(ms_a), ms_episode=f(ms_b), ms_resid=f(ms_e), sigma2_seed=f(s2_a),
      sigma2_episode=f(s2_b), sigma2_resid=f(s2_e), var_seed_means=f(var_sm),
      df_seed_means=s - 1, var_episode=f(var_ep), df_episode=f(df_ep),
      var_mean=f(var_ep + (0.0 if s < 2 else var_sm)), df_satterthwaite=f(df_satt))
