"""Intervals for means of crossed seed × episode evaluations.

A point of a scaling sweep is trained with S seeds, and every seed is scored on the same E
evaluation episodes (the evaluation seed is shared), at P test-time steps: values
``v[S, E]`` or ``v[S, E, P]``. Seeds and episodes are crossed, not nested, so a value is

    y[s, e] = mu + a[s] + b[e] + eps[s, e]

with a seed effect ``a`` (training randomness, variance sigma_a²), an episode effect ``b``
(task difficulty, shared by every seed, sigma_b²) and an interaction / noise term
(sigma_e²). The grand mean then has

    Var(mean) = sigma_a² / S + sigma_b² / E + sigma_e² / (S E),

and treating the S·E values as independent draws (``sd / sqrt(S E)``) drops the first
term, which dominates whenever seeds disagree more than a few episodes do.

* ``variance_components``: the two-way random-effects ANOVA (method of moments) estimate of
  the components and of ``Var(mean)``, with Satterthwaite degrees of freedom.
* ``crossed_bootstrap_means``: replicates of the grand mean under the pigeonhole (two-way
  crossed) bootstrap, which resamples seeds and episodes independently (Owen 2007, "The
  pigeonhole bootstrap", Ann. Appl. Stat. 1(2)).
* ``point_interval``: the interval of one point's mean.
* ``paired_difference``: the interval of ``mean(v_b) - mean(v_a)`` for two points scored on
  the same episodes (paired on episodes, and on seeds when they share seed labels).

Methods (``method=``):

* ``"vc"`` (default): ``mean ± m · sqrt(V)``, ``V = ms_seed/(SE) + max(ms_episode −
  ms_resid, 0)/(SE)`` (the seed means' variance, an exact S − 1 df chi-square term, plus the
  shared episode mean's variance; ``variance_components``), and ``m`` the Cochran-Cox
  multiplier: the t-quantiles of the pieces' own degrees of freedom averaged with the
  variance they carry. With seeds dominating, m → t_{S−1}, as for a t-interval over seed
  means; with episodes dominating, m → t_{E−1}.
* ``"vc_satterthwaite"``: the textbook ``(max(ms_seed − ms_resid, 0) + ms_episode)/(SE)``
  with a Satterthwaite-df t-quantile. Its df is estimated from the same data, and comes out
  large exactly when the seed term comes out small, so it under-covers with few seeds.
* ``"bootstrap"``: the plain crossed percentile bootstrap. Its variance is exactly
  ``((S−1)/S · ms_seed + (E−1)/E · ms_episode + (S−1)(E−1)/(SE) · ms_resid)/(SE)``: the seed
  term shrunk by (S − 1)/S, normal-like tails where t_{S−1} is needed, and the interaction
  counted about three times (Owen 2007), so it under-covers when seeds dominate and
  over-covers when the interaction does.
* ``"bootstrap_corrected"``: the crossed bootstrap with a small-S correction: weights
  rescaled (Rao & Wu 1988) so its variance is ``(ms_seed + ms_episode + ms_resid)/(SE)``, and
  the percentile interval widened about the mean by ``m / z`` (``m`` as for ``"vc"``).

Measured coverage of nominal 95% intervals (min-max over regimes and E), simulating the
model above with normal effects (sigma_seed, sigma_episode, sigma_noise) = seeds dominate
(0.025, 0.12, 0.12; seed means spread like 0.117 / 0.168 / 0.130), episodes dominate
(0, 0.15, 0.05), interaction dominates (0.003, 0.03, 0.20), balanced (0.01, 0.12, 0.10),
and two binomial-accuracy regimes (75 queries an episode, logit-normal seed and episode
effects, seeds or episodes dominating); E in {100, 600}; 10,000 datasets a cell for the
closed forms, 1,000 for the bootstraps (999 replicates); Monte-Carlo s.e. 0.002 / 0.007:

    method                S = 1        S = 2        S = 3        S = 5
    vc (default)          0.945-0.953  0.940-0.976  0.952-0.972  0.948-0.963
    vc_satterthwaite      0.945-0.953  0.866-0.962  0.918-0.966  0.940-0.968
    bootstrap             0.936-0.951  0.681-0.993  0.823-0.994  0.891-0.998
    bootstrap_corrected   0.938-0.955  0.941-1.000  0.938-1.000  0.948-0.999
    pooled S·E values     0.942-0.953  0.331-0.942  0.330-0.941  0.316-0.934
    t over seed means     -            0.711-0.949  0.377-0.948  0.218-0.944

(S = 1 rows: coverage of the seed-conditional mean ``mu + a[1]``.) For ``paired_difference``
(paired seeds with S = 1, 3, 5; unpaired 3 + 3, 3 + 5, 1 + 3; E in {100, 600}; seeds or
episodes dominating the difference): vc 0.949-0.971, vc_satterthwaite 0.923-0.962,
bootstrap 0.839-0.975, bootstrap_corrected 0.939-1.000.

``"vc"`` is the default: it was the only method within 0.94-0.98 in every cell (closest to
0.95 in the worst case), and it is closed form and deterministic. Its cost, over-coverage
up to 0.976 where seeds and episodes both matter (median width 1.0-1.3× Satterthwaite's at
S >= 3, up to 2× at S = 2 where Satterthwaite covers as little as 0.87), is on the safe
side. The bootstraps remain for statistics that are not means
(``crossed_bootstrap_means`` replicates can feed a curve refit). With S == 1 the seed
variance cannot be estimated: every method then gives an interval over episodes only, for
``mu + a[1]``, the mean of that one trained model, and flags it ``single_seed=True``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any, Optional, Union

import numpy as np
from scipy import stats as sps

from metalearn.scaling.curves import jsonable as _jsonable

METHODS = ("vc", "vc_satterthwaite", "bootstrap", "bootstrap_corrected")
DEFAULT_METHOD = "vc"
DEFAULT_N_BOOT = 2000
_CHUNK_ELEMENTS = 4_000_000  # float64 episode weights per chunk of replicates (32 MB).

RngLike = Union[np.random.Generator, int, None]


@dataclasses.dataclass(frozen=True)
class Interval:
  """An interval of a mean (or of a difference of means).

  ``mean``, ``lo``, ``hi``, ``se`` and ``multiplier`` are floats for ``[S, E]`` values and
  arrays over P for ``[S, E, P]`` values.

  Attributes:
    mean: the grand mean (or the difference of grand means).
    lo: lower end.
    hi: upper end.
    level: the nominal coverage.
    se: the standard error behind the interval: ``sqrt`` of the variance estimate for
      the ``"vc"`` methods, the sd of the replicates for the bootstrap methods.
    multiplier: ``(hi - lo) / (2 se)``: the t-like quantile that was used.
    n_seeds: seeds of the point; for a difference, ``(S_a, S_b)``.
    n_episodes: episodes shared by every seed.
    single_seed: True when the seed variance could not be estimated (one seed, or for an
      unpaired difference one seed at either point): the interval then covers episodes
      only and holds for the trained model(s) at hand, not for a new training seed.
    method: the method that produced it (one of ``METHODS``).
    seeds_paired: for a difference, whether seeds were paired; None for a point.
  """
  mean: Any
  lo: Any
  hi: Any
  level: float
  se: Any
  multiplier: Any
  n_seeds: Union[int, tuple[int, int]]
  n_episodes: int
  single_seed: bool
  method: str
  seeds_paired: Optional[bool] = None

  @property
  def half_width(self) -> Any:
    """``(hi - lo) / 2``."""
    return ((np.asarray(self.hi) - np.asarray(self.lo)) / 2)[()]

  def as_dict(self) -> dict:
    """JSON-ready fields (non-finite floats as None)."""
    return _jsonable(dataclasses.asdict(self))


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


def _as_values(v: Any, name: str = "v") -> np.ndarray:
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


def _rng(rng: RngLike) -> np.random.Generator:
  """A generator; None is seed 0, so reports are reproducible."""
  if isinstance(rng, np.random.Generator):
    return rng
  return np.random.default_rng(0 if rng is None else rng)


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


def _vc_terms(arrays: Sequence[np.ndarray], coefs: Sequence[float]
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


def _satterthwaite_variance(arrays: Sequence[np.ndarray],
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


def _cochran_cox(terms: Sequence[Sequence[tuple[Any, Any]]], q: float) -> tuple[Any, Any]:
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
  x = _as_values(v)
  s, e = x.shape[:2]
  ms_a, ms_b, ms_e = _mean_squares(x)
  _, terms, _ = _vc_terms([x], [1.0])
  _, df_satt = _satterthwaite_variance([x], [1.0])
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


def _weights(rng: np.random.Generator, n: int, size: int, rescale: bool) -> np.ndarray:
  """``[n, size]`` multinomial resampling counts (mean 1), Rao-Wu rescaled if asked."""
  idx = rng.integers(0, size, (n, size))
  counts = np.bincount((idx + size * np.arange(n)[:, None]).ravel(), minlength=n * size)
  w = counts.reshape(n, size).astype(np.float64)
  if rescale and size > 1:
    w = 1.0 + math.sqrt(size / (size - 1)) * (w - 1.0)
  return w


def _replicates(arrays: Sequence[np.ndarray], coefs: Sequence[float], n_boot: int,
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
  x = _as_values(v)
  flat = x if x.ndim == 3 else x[..., None]
  out = _replicates([flat], [1.0], int(n_boot), _rng(rng), rescale=False)
  return out if x.ndim == 3 else out[:, 0]


def _interval(arrays: list[np.ndarray], coefs: list[float], *, level: float, method: str,
              n_boot: int, rng: RngLike, squeeze: bool, n_seeds: Any,
              seeds_paired: Optional[bool]) -> Interval:
  """The interval of ``Σ_i c_i · mean(x_i)`` for ``[S_i, E, P]`` arrays."""
  if method not in METHODS:
    raise ValueError(f"unknown method {method!r}; one of {METHODS}")
  if not 0.0 < level < 1.0:
    raise ValueError(f"level must be in (0, 1), got {level}")
  q = 0.5 + level / 2
  estimate, terms, seed_missing = _vc_terms(arrays, coefs)
  var, mult = _cochran_cox(terms, q)
  if method in ("vc", "vc_satterthwaite"):
    if method == "vc_satterthwaite":
      var, df = _satterthwaite_variance(arrays, coefs)
      mult = sps.t.ppf(q, df)
    se = np.sqrt(var)
    lo, hi = estimate - mult * se, estimate + mult * se
  else:
    reps = _replicates(arrays, coefs, int(n_boot), _rng(rng),
                       rescale=method == "bootstrap_corrected")
    r_lo, r_hi = np.quantile(reps, [1.0 - q, q], axis=0)
    se = reps.std(0, ddof=1)
    if method == "bootstrap":
      lo, hi = r_lo, r_hi
    else:
      # Percentiles of the rescaled replicates, widened about the mean by the "vc"
      # multiplier over the normal quantile.
      widen = mult / sps.norm.ppf(q)
      lo = estimate - widen * (estimate - r_lo)
      hi = estimate + widen * (r_hi - estimate)
    with np.errstate(divide="ignore", invalid="ignore"):
      mult = np.where(se > 0, (hi - lo) / (2 * np.where(se > 0, se, 1.0)), math.nan)
  f = (lambda a: float(np.asarray(a).reshape(-1)[0])) if squeeze else np.asarray
  return Interval(mean=f(estimate), lo=f(lo), hi=f(hi), level=float(level), se=f(se),
                  multiplier=f(mult), n_seeds=n_seeds, n_episodes=int(arrays[0].shape[1]),
                  single_seed=bool(seed_missing), method=method, seeds_paired=seeds_paired)


def point_interval(v: Any, *, level: float = 0.95, method: str = DEFAULT_METHOD,
                   n_boot: int = DEFAULT_N_BOOT, rng: RngLike = None) -> Interval:
  """The interval of one point's grand mean over seeds and shared episodes.

  The default, ``"vc"``, is ``mean ± m · sqrt(V)`` with ``V = ms_seed/(SE) + max(ms_episode
  − ms_resid, 0)/(SE)``, the variance-components estimate of ``σa²/S + σb²/E + σe²/(SE)``
  (see ``variance_components``), and ``m`` the Cochran-Cox multiplier (t_{S−1} when seeds
  dominate, t_{E−1} when episodes do). In simulations of the crossed model (module
  docstring) its 95% intervals covered 0.94-0.98 (0.95-0.97 for S in {3, 5}) for S in
  {1, 2, 3, 5} and E in {100, 600}, whether seeds, episodes or the interaction dominated;
  with seed variance dominating at S = 3 the plain crossed percentile bootstrap covered
  0.82-0.92, the Satterthwaite-df interval 0.92-0.94, and pooling all S·E values as
  independent 0.33-0.67.

  With S == 1 the seed variance cannot be estimated, and no method can include it: the
  interval is then over episodes only (``mean ± t_{E−1} · sd_e / sqrt(E)`` for ``"vc"``)
  and covers ``mu + a[1]``, the mean of that one trained model on the episode
  distribution, not the mean over training seeds; ``single_seed`` is True.

  Args:
    v: values ``[S, E]`` or ``[S, E, P]``: S seeds scored on the same E episodes (at P
      test-time steps).
    level: nominal coverage.
    method: ``"vc"`` (default), ``"vc_satterthwaite"`` (textbook estimate with a
      Satterthwaite-df t; under-covers with 2-3 seeds), ``"bootstrap"`` (plain crossed
      percentile bootstrap; under-covers with few seeds) or ``"bootstrap_corrected"``
      (Rao-Wu rescaled crossed bootstrap widened by ``m / z``).
    n_boot: bootstrap replicates (bootstrap methods only).
    rng: generator or seed for the bootstrap methods (None: seed 0).

  Returns:
    An ``Interval``; floats for 2-D ``v``, arrays over P for 3-D.
  """
  x = _as_values(v)
  squeeze = x.ndim == 2
  x = x[..., None] if squeeze else x
  return _interval([x], [1.0], level=level, method=method, n_boot=n_boot, rng=rng,
                   squeeze=squeeze, n_seeds=int(x.shape[0]), seeds_paired=None)


def paired_difference(v_a: Any, v_b: Any, *, seeds_a: Optional[Sequence[Any]] = None,
                      seeds_b: Optional[Sequence[Any]] = None, level: float = 0.95,
                      method: str = DEFAULT_METHOD, n_boot: int = DEFAULT_N_BOOT,
                      rng: RngLike = None) -> Interval:
  """The interval of ``mean(v_b) − mean(v_a)`` for two points scored on the same episodes.

  Episodes are always paired (episode e of ``v_a`` and of ``v_b`` is the same task), which
  removes the shared episode difficulty from the difference. Seeds are paired when
  ``seeds_a`` and ``seeds_b`` hold the same seed labels (in any order; ``v_b`` is then
  reordered to match): the difference ``v_b − v_a`` is then one crossed array and gets
  ``point_interval``'s treatment. Otherwise (labels differ, or are not given) the two
  points' seeds are independent. ``"vc"`` then uses
  ``ms_seed_a/(S_a E) + ms_seed_b/(S_b E)`` (both points' seed-means variances, summed on
  Satterthwaite df) plus ``max(s²(ȳ_b,.e − ȳ_a,.e)/E − ms_resid_a/(S_a E) −
  ms_resid_b/(S_b E), 0)`` (the variance of the episode-paired difference of episode
  effects), with the Cochran-Cox multiplier; ``"vc_satterthwaite"`` uses
  ``s²(ȳ_b,.e − ȳ_a,.e)/E + Σ_i max(ms_seed_i − ms_resid_i, 0)/(S_i E)``; the bootstrap
  methods resample episodes jointly and each point's seeds separately. Treating the same
  training seeds as independent is conservative when their effects are positively
  correlated.

  A point with one seed has no estimable seed variance: the interval then leaves it out
  and ``single_seed`` is True (with paired seeds, when S == 1).

  Args:
    v_a: values ``[S_a, E]`` or ``[S_a, E, P]`` of the first point.
    v_b: values ``[S_b, E]`` or ``[S_b, E, P]`` of the second, on the same episodes.
    seeds_a: seed labels of ``v_a``'s rows, or None.
    seeds_b: seed labels of ``v_b``'s rows, or None.
    level: nominal coverage.
    method: one of ``METHODS`` (default ``"vc"``), as in ``point_interval``.
    n_boot: bootstrap replicates (bootstrap methods only).
    rng: generator or seed for the bootstrap methods (None: seed 0).

  Returns:
    An ``Interval`` of the difference, with ``n_seeds = (S_a, S_b)`` and
    ``seeds_paired``.

  Raises:
    ValueError: shapes disagree beyond the seed axis, or seed labels do not match rows.
  """
  a, b = _as_values(v_a, "v_a"), _as_values(v_b, "v_b")
  if a.shape[1:] != b.shape[1:]:
    raise ValueError(f"v_a and v_b must share episodes (and P): {a.shape} vs {b.shape}")
  squeeze = a.ndim == 2
  if squeeze:
    a, b = a[..., None], b[..., None]
  paired = False
  if seeds_a is not None and seeds_b is not None:
    la, lb = list(seeds_a), list(seeds_b)
    if len(la) != a.shape[0] or len(lb) != b.shape[0]:
      raise ValueError("seed labels must match the seed axes of v_a and v_b")
    if len(set(la)) == len(la) == len(lb) and set(la) == set(lb):
      paired = True
      b = b[[lb.index(s) for s in la]]
  arrays, coefs = ([b - a], [1.0]) if paired else ([a, b], [-1.0, 1.0])
  return _interval(arrays, coefs, level=level, method=method, n_boot=n_boot, rng=rng,
                   squeeze=squeeze, n_seeds=(int(a.shape[0]), int(b.shape[0])),
                   seeds_paired=paired)
