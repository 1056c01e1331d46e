r"""The Bayes-optimal predictor of the sinusoid family and its query-MSE floor.

The family (``SinusoidTasks``) is ``y = a·sin(x − φ) + ε`` with ``a ~ U[a0, a1]``,
``φ ~ U[p0, p1]``, ``x ~ U[x0, x1]`` and ``ε ~ N(0, σ²)`` on support and query targets
alike. Given a support set ``(x_k, y_k)``, k = 1..K, the predictor minimising the
expected squared error at a query ``x`` is the posterior mean ``E[a·sin(x − φ) | S]``,
and its expected squared error against a noisy query target is exactly

  E[(y_q − ŷ(x))² | S, x] = σ² + Var[a·sin(x − φ) | S],

the posterior predictive variance (used below to Rao–Blackwellise the Monte Carlo
estimate of the floor).

**Quadrature.** With ``s_k(φ) = sin(x_k − φ)`` the likelihood is, for fixed ``φ``, a
Gaussian in ``a``: ``Σ_k (y_k − a·s_k)² = R(φ) + A(φ)·(a − â(φ))²`` with ``A = Σ s_k²``,
``â = Σ y_k s_k / A`` and ``R`` the residual at ``â``. The integral over ``a ∈ [a0, a1]``
is therefore done exactly (a truncated normal, ``τ = σ/√A``):

  m(φ) = ∫ exp(−Σ_k (y_k − a s_k)² / 2σ²) da
       = exp(−R/2σ²) · √(2π)·τ · (Φ(β) − Φ(α)),   α, β = (a0 − â)/τ, (a1 − â)/τ,

with the truncated normal's mean and variance of ``a`` given ``φ``. Where the Gaussian is
wider than ``[a0, a1]`` (``τ > a1 − a0``: no data, or ``φ`` where every ``s_k`` nearly
vanishes) the same three quantities come from a 16-node Gauss–Legendre rule in ``a``
instead, since ``Φ(β) − Φ(α)`` then cancels. Only ``φ`` is gridded: a
midpoint rule with ``grid`` nodes on ``[p0, p1]`` (uniform prior, so the weights are the
normalised ``m(φ_j)``). A midpoint rule is exponentially accurate on a peak narrower
than the interval, which the sharp posteriors of many shots are; a posterior peak at an
end of ``[p0, p1]`` converges as ``h²``. The prediction is
``Σ_j w_j E[a | φ_j] sin(x − φ_j)``. The grid must resolve the φ-posterior, whose
width is about ``σ / (a·√(K/2))``: the default (``π/2048 ≈ 0.0015``) does for σ = 0.1
up to K ≈ 100 at a = 5; a smaller ``σ/√K`` needs a finer grid. The residual is summed
at a point of ``[a0, a1]`` (no cancellation of ``Σy² − (Σys)²/Σs²``), so float32
suffices there; under ``jax_enable_x64`` with float64 inputs everything runs in float64.

**The noiseless family (σ = 0)** has a degenerate posterior and is treated exactly,
not as a limit of small σ:

- K ≥ 2 shots at inputs distinct mod π identify the task: ``a·sin(x − φ) = u·sin x +
  v·cos x`` is linear in ``(u, v)`` and the predictor is the least-squares fit in that
  basis (by SVD, whose rounding grows as 1/|sin(x_1 − x_2)|, not its square). The
  posterior is a point mass and the floor is 0.
- K = 1: every task through ``(x_1, y_1)`` is ``y_1·cos(x − x_1) + d·sin(x − x_1)``
  with slope ``d = f'(x_1)``; ``(a, x_1 − φ)`` are the polar coordinates of
  ``(d, y_1)``, so the uniform prior on ``(a, φ)`` has density ``∝ 1/a`` in ``(d, y_1)``
  and the posterior of ``d`` is ``∝ 1/√(y_1² + d²)`` on the slopes the prior's ranges
  allow, a union of intervals with ends among ``±√(a0² − y_1²)``, ``±√(a1² − y_1²)``
  and ``y_1·cot(x_1 − p0)``, ``y_1·cot(x_1 − p1)``. Its mass and first two moments are
  integrated in closed form on each piece. (The limit σ → 0 on the φ grid fails
  here: for small ``|y_1|`` the posterior has structure at scale ``|y_1|/a1`` in φ.)
- K = 0: the prior, by the quadrature (no likelihood).

The MSE convention is the learner's (``Learner.score``, the sinusoid's evaluation
'loss'): the mean over query points of the squared error, no factor ½.
"""

import dataclasses
import math
from typing import NamedTuple, Optional, Sequence

import jax
import jax.numpy as jnp
from jax.scipy.special import log_ndtr
from jax.scipy.special import ndtr
import numpy as np

from metalearn import compiler
from metalearn.tasks.sinusoid import SinusoidTasks

DEFAULT_GRID = 2048
"""Midpoint nodes in φ: against 32,768 nodes, predictions differ by at most 5e-5 for
σ = 0.1, K = 10 (4e-4 at K = 50) on posteriors peaked at the ends of the prior."""
_AMP_NODES = 16  # Gauss–Legendre nodes in a where the truncated-normal formula cancels.


class BayesMSE(NamedTuple):
  """The Bayes-optimal expected query MSE of one (family, shots), two ways.

  ``mse`` is the direct Monte Carlo estimate against the noisy query targets (what the
  project's evaluation reports as 'loss'); ``mse_rb`` its Rao–Blackwellised form
  ``σ² + E[Var_post]``. ``excess`` / ``excess_rb`` are the noise-free parts (the
  squared error against ``a·sin(x − φ)``), so ``mse_rb = noise² + excess_rb``. Each
  ``*_se`` is a standard error over episodes (sd / √episodes; the 95% half-width is
  ``stats.Z95`` times it).
  """

  shots: int
  noise: float
  episodes: int
  queries: int
  mse: float
  mse_se: float
  mse_rb: float
  mse_rb_se: float
  excess: float
  excess_se: float
  excess_rb: float
  excess_rb_se: float


def _log_gauss_mass(alpha, beta):
  """``log(Φ(β) − Φ(α))`` for ``β − α ≥ 1``, accurate in either tail."""
  # Mirror the interval so its centre is >= 0: then it lies in the right tail (use
  # log Φ(−·), accurate there) or straddles 0 (no cancellation).
  flip = alpha + beta < 0
  lo, hi = jnp.where(flip, -beta, alpha), jnp.where(flip, -alpha, beta)
  log_hi, log_lo = log_ndtr(-lo), log_ndtr(-hi)  # log Φ(−lo) > log Φ(−hi).
  tail = log_hi + jnp.log(-jnp.expm1(log_lo - log_hi))
  central = jnp.log1p(-ndtr(lo) - ndtr(-hi))
  return jnp.where(lo > 0, tail, central)


def _amp_given_phase(x_K, y_K, phase_P, sigma, a0, a1):
  """Log mass ``log m(φ)``, ``E[a | φ]`` and ``Var[a | φ]`` at each phase node."""
  s_PxK = jnp.sin(x_K[None, :] - phase_P[:, None])
  big_a = jnp.sum(s_PxK ** 2, -1)
  a_hat = jnp.sum(y_K * s_PxK, -1) / jnp.maximum(big_a, jnp.finfo(s_PxK.dtype).tiny)
  # Expand around a point inside [a0, a1]: the residual there is a sum of squares,
  # free of the cancellation in Σy² − (Σys)²/Σs².
  a_ref = jnp.clip(a_hat, a0, a1)
  r_PxK = y_K - a_ref[:, None] * s_PxK
  res, grad = jnp.sum(r_PxK ** 2, -1), jnp.sum(r_PxK * s_PxK, -1)
  two_var = 2 * sigma ** 2

  wide = (a1 - a0) * jnp.sqrt(big_a) >= sigma
  big_a_w = jnp.where(wide, big_a, 1.0)  # Keeps the unused lanes finite.
  tau = sigma / jnp.sqrt(big_a_w)
  mu = a_ref + grad / big_a_w
  alpha, beta = (a0 - mu) / tau, (a1 - mu) / tau
  log_z = _log_gauss_mass(alpha, beta)
  log_m_wide = (-(res - grad * (mu - a_ref)) / two_var + jnp.log(tau)
                + 0.5 * math.log(2 * math.pi) + log_z)
  log_norm = -0.5 * math.log(2 * math.pi) - log_z
  pa = jnp.exp(-0.5 * alpha ** 2 + log_norm)
  pb = jnp.exp(-0.5 * beta ** 2 + log_norm)
  mean_wide = mu + tau * (pa - pb)
  var_wide = tau ** 2 * jnp.maximum(1 + alpha * pa - beta * pb - (pa - pb) ** 2, 0.0)

  t_N, gw_N = np.polynomial.legendre.leggauss(_AMP_NODES)
  half = 0.5 * (a1 - a0)
  amp_N = jnp.asarray(0.5 * (a0 + a1) + half * t_N, s_PxK.dtype)
  d_PxN = amp_N[None, :] - a_ref[:, None]
  logit_PxN = (-(res[:, None] - 2 * grad[:, None] * d_PxN + big_a[:, None] * d_PxN ** 2)
               / two_var + jnp.log(jnp.asarray(gw_N, s_PxK.dtype)))
  log_m_narrow = jax.nn.logsumexp(logit_PxN, -1) + math.log(half)
  p_PxN = jax.nn.softmax(logit_PxN, -1)
  mean_narrow = p_PxN @ amp_N
  var_narrow = jnp.sum(p_PxN * (amp_N[None, :] - mean_narrow[:, None]) ** 2, -1)

  return (jnp.where(wide, log_m_wide, log_m_narrow),
          jnp.where(wide, mean_wide, mean_narrow), jnp.where(wide, var_wide, var_narrow))


def _grid_predictive(x_K, y_K, x_Q, family, grid):
  """Posterior mean and variance at ``x_Q`` by the φ grid (noisy, or no shots)."""
  sigma = family.noise or 1.0  # σ is irrelevant without shots.
  (a0, a1), (p0, p1) = family.amplitude, family.phase
  phase_P = p0 + (p1 - p0) * (jnp.arange(grid, dtype=x_K.dtype) + 0.5) / grid
  log_m_P, amp_mean_P, amp_var_P = _amp_given_phase(x_K, y_K, phase_P, sigma, a0, a1)
  weight_P = jax.nn.softmax(log_m_P)
  s_QxP = jnp.sin(x_Q[:, None] - phase_P[None, :])
  f_QxP = amp_mean_P * s_QxP
  mean_Q = f_QxP @ weight_P
  # Centred (law of total variance), not E[f²] − E[f]², which cancels when sharp.
  var_Q = (amp_var_P * s_QxP ** 2 + (f_QxP - mean_Q[:, None]) ** 2) @ weight_P
  return mean_Q, var_Q


def _least_squares_predictive(x_K, y_K, x_Q):
  """The identified noiseless task (K >= 2): least squares in (sin x, cos x)."""
  basis = lambda x: jnp.stack([jnp.sin(x), jnp.cos(x)], -1)
  coef_2, *_ = jnp.linalg.lstsq(basis(x_K), y_K)
  return basis(x_Q) @ coef_2, jnp.zeros_like(x_Q)


def _one_shot_noiseless_predictive(x1, y1, x_Q, family):
  """The noiseless one-shot posterior over the slope d = f'(x1) (module docstring)."""
  (a0, a1), (p0, p1) = family.amplitude, family.phase
  y1 = jnp.where(y1 == 0, jnp.finfo(x_Q.dtype).tiny, y1)  # A null set; keeps 1/|y1|.
  d_lo = jnp.sqrt(jnp.maximum(a0 ** 2 - y1 ** 2, 0.0))
  d_hi = jnp.sqrt(jnp.maximum(a1 ** 2 - y1 ** 2, 0.0))
  ends = jnp.stack([x1 - p0, x1 - p1])
  ends_6 = jnp.concatenate([jnp.stack([d_lo, -d_lo]),
                            y1 * jnp.cos(ends) / jnp.sin(ends), jnp.stack([d_hi, -d_hi])])
  cuts_8 = jnp.sort(jnp.concatenate([jnp.clip(ends_6, -d_hi, d_hi),
                                     jnp.stack([-d_hi, d_hi])]))
  left_7, right_7 = cuts_8[:-1], cuts_8[1:]
  mid_7 = 0.5 * (left_7 + right_7)
  phase_7 = x1 - jnp.arctan2(y1, mid_7)
  in_arc = jnp.mod(phase_7 - p0, 2 * math.pi) <= p1 - p0
  allowed_7 = in_arc & (jnp.abs(mid_7) >= d_lo) & (right_7 > left_7)

  def integral(f):  # ∫ f(d) / √(y1² + d²) dd over the allowed pieces.
    return jnp.sum(jnp.where(allowed_7, f(right_7) - f(left_7), 0.0))

  def radius(d):
    return jnp.sqrt(y1 ** 2 + d ** 2)

  def log_radius(d):  # An antiderivative of 1 / √(y1² + d²).
    return jnp.arcsinh(d / jnp.abs(y1))

  mass = integral(log_radius)
  # No allowed piece of positive length: |y1| > a1 by rounding (take the nearest task,
  # d = 0), or a task at a corner of the prior's ranges (a null set).
  ok = mass > 0
  mass = jnp.where(ok, mass, 1.0)
  mean_d = jnp.where(ok, integral(radius) / mass, 0.0)
  second = integral(lambda d: 0.5 * (d * radius(d) - y1 ** 2 * log_radius(d))) / mass
  var_d = jnp.where(ok, jnp.maximum(second - mean_d ** 2, 0.0), 0.0)
  s_Q, c_Q = jnp.sin(x_Q - x1), jnp.cos(x_Q - x1)
  return y1 * c_Q + mean_d * s_Q, var_d * s_Q ** 2


def predictive(support_x, support_y, query_x, family: SinusoidTasks,
               grid: int = DEFAULT_GRID) -> tuple[jax.Array, jax.Array]:
  """Posterior mean and variance of the noise-free target ``a·sin(x − φ)``.

  Args:
    support_x: one episode's support inputs, ``[K]`` or ``[K, 1]`` (K may be 0).
    support_y: its targets, shaped like ``support_x``.
    query_x: ``[Q]`` or ``[Q, 1]`` query inputs.
    family: the prior: its ``amplitude``, ``phase`` and ``noise`` (not a pool).
    grid: midpoint nodes in φ (unused for noiseless tasks with shots).

  Returns:
    ``(mean, var)``, each shaped like ``query_x``. The expected squared error of
    ``mean`` against a noisy query target is ``family.noise² + var``. Pure jnp: vmap
    over episodes, jit with ``family`` and ``grid`` static.
  """
  dtype = jnp.result_type(support_x, support_y, query_x, jnp.float32)
  x_K, y_K, x_Q = (jnp.reshape(jnp.asarray(v, dtype), (-1,))
                   for v in (support_x, support_y, query_x))
  shots = x_K.shape[0]
  if family.noise == 0 and shots >= 2:
    mean_Q, var_Q = _least_squares_predictive(x_K, y_K, x_Q)
  elif family.noise == 0 and shots == 1:
    mean_Q, var_Q = _one_shot_noiseless_predictive(x_K[0], y_K[0], x_Q, family)
  else:
    mean_Q, var_Q = _grid_predictive(x_K, y_K, x_Q, family, grid)
  shape = jnp.shape(query_x)
  return jnp.reshape(mean_Q, shape), jnp.reshape(var_Q, shape)


def posterior_mean_predict(support_x, support_y, query_x, family: SinusoidTasks,
                           grid: int = DEFAULT_GRID) -> jax.Array:
  """The Bayes-optimal prediction ``E[a·sin(x − φ) | support]`` at ``query_x``.

  Args:
    support_x: one episode's support inputs, ``[K]`` or ``[K, 1]``.
    support_y: its targets, shaped like ``support_x``.
    query_x: ``[Q]`` or ``[Q, 1]``.
    family: the prior (``predictive``).
    grid: midpoint nodes in φ.

  Returns:
    Predictions shaped like ``query_x``.
  """
  return predictive(support_x, support_y, query_x, family, grid)[0]


def _per_episode_errors(key, num_tasks, family, grid):
  episodes = family.sample(key, None, num_tasks)
  clean_y = dataclasses.replace(family, noise=0.0).sample(key, None, num_tasks).query_y
  mean, var = jax.vmap(lambda s_x, s_y, q_x: predictive(s_x, s_y, q_x, family, grid))(
      episodes.support_x, episodes.support_y, episodes.query_x)
  per_episode = lambda e: jnp.mean(jnp.reshape(e, (num_tasks, -1)), -1)
  return (per_episode((mean - episodes.query_y) ** 2), per_episode((mean - clean_y) ** 2),
          per_episode(var))


# Compile-bound at a few thousand episodes: the faster compile pays (``compiler``).
_errors = compiler.jit(_per_episode_errors, fast_compile=True, static_argnums=(1, 2, 3))


def bayes_mse(family: SinusoidTasks, shots: int, key: jax.Array, episodes: int, *,
              grid: int = DEFAULT_GRID, batch: int = 250) -> BayesMSE:
  """The Bayes-optimal expected query MSE (the floor) of ``family`` at ``shots``.

  Episodes are ``family.sample`` with ``shots`` (its queries and noise), batch ``i``
  from ``fold_in(key, i)``; their noise-free targets come from the same key at
  ``noise=0`` (``SinusoidTasks`` draws the noise from a key of its own).

  Args:
    family: the task family (fresh tasks: ``pool_size`` 0).
    shots: K, support points per episode (0 allowed: the prior-mean predictor).
    key: PRNG key; the same key gives the same episodes.
    episodes: number of episodes (>= 2).
    grid: midpoint nodes in φ.
    batch: episodes per compiled call.

  Returns:
    A ``BayesMSE``: means over episodes of the per-episode mean over queries of the
    squared error (the learner's 'loss', no ½), with standard errors.
  """
  if family.pool_size:
    raise ValueError(f"pool_size={family.pool_size}: the Bayes floor is of fresh tasks")
  if episodes < 2:
    raise ValueError(f"episodes={episodes}: need >= 2 for a standard error")
  family = dataclasses.replace(family, shots=int(shots))
  batch = min(batch, episodes)
  chunks = [_errors(jax.random.fold_in(key, i), batch, family, grid)
            for i in range(-(-episodes // batch))]
  direct, excess, excess_rb = (np.concatenate(c)[:episodes].astype(np.float64)
                               for c in zip(*jax.device_get(chunks)))
  est = lambda v: (float(v.mean()), float(v.std(ddof=1) / math.sqrt(episodes)))
  (mse, mse_se), (ex, ex_se), (ex_rb, ex_rb_se) = est(direct), est(excess), est(excess_rb)
  return BayesMSE(shots=family.shots, noise=float(family.noise), episodes=episodes,
                  queries=family.queries, mse=mse, mse_se=mse_se,
                  mse_rb=family.noise ** 2 + ex_rb, mse_rb_se=ex_rb_se, excess=ex,
                  excess_se=ex_se, excess_rb=ex_rb, excess_rb_se=ex_rb_se)


def bayes_curve(key: jax.Array, episodes: int, *, shots: Sequence[int] = range(1, 11),
                noises: Sequence[float] = (0.0, 0.1, 0.3),
                family: Optional[SinusoidTasks] = None,
                grid: int = DEFAULT_GRID) -> list[BayesMSE]:
  """The Bayes floor over shots for each noise level (``bayes_mse`` of each).

  Every (noise, shots) uses the same ``key``: the curves are paired (same amplitudes
  and phases; the same inputs across noise levels at one K).

  Args:
    key: PRNG key.
    episodes: episodes per point.
    shots: the K of each point.
    noises: the σ of each curve.
    family: the family whose ranges and queries to use, its noise replaced (None:
      ``SinusoidTasks()``).
    grid: midpoint nodes in φ.

  Returns:
    One ``BayesMSE`` per (noise, shots), noise-major.
  """
  family = family or SinusoidTasks()
  return [bayes_mse(dataclasses.replace(family, noise=float(noise)), k, key, episodes,
                    grid=grid)
          for noise in noises for k in shots]
