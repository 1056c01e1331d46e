"""Bayesian linear regression: a task family whose Bayes floor and GD curve are known.

A task draws weights ``w ~ N(0, weight_std² I_d)``; an example is ``x ~ N(0, I_d)``
with target ``y = w·x + ε``, ``ε ~ N(0, noise²)``, on support and query alike. Support
and query points are drawn independently (K and Q per task), targets ``[.., 1]`` as
the sinusoid's.

The MSE convention is the learner's (``Learner.score``): the mean of squared errors,
no factor ½. Write ``X`` for the ``K x d`` support inputs, ``a = weight_std``,
``σ = noise``, and ``λ_i, u_i`` for the eigenpairs of ``XᵀX/K``. Given ``X``:

- Bayes (``bayes_mse``): the posterior mean is ridge regression with penalty
  ``σ²/a²``, its error covariance ``Σ = (XᵀX/σ² + I/a²)⁻¹``, and a fresh query
  ``x ~ N(0, I)`` has expected squared error ``σ² + tr Σ
  = σ² + Σ_i a²σ² / (σ² + a² K λ_i)``.
- Gradient descent (``gd_mse``), as the inner loop takes it: ``k`` steps of SGD with
  rate ``η`` on the support loss ``L(w) = (1/K) Σ (w·x − y)²``, whose gradient is
  ``(2/K) Xᵀ(Xw − y)``. With ``r_i = 1 − 2ηλ_i``, the error ``e_k = w_k − w`` along
  ``u_i`` is ``r_i^k`` times the initial error plus ``(1 − r_i^k)/(K λ_i)`` times the
  noise's projection ``u_iᵀXᵀε``, so, from ``w_0 ~ N(0, init_scale² I)`` independent
  of the task (0: the prior mean, the best start),

    E[(ŷ − y)²] = σ² + E|e_k|² = σ² + Σ_i r_i^{2k} (a² + init_scale²)
                                    + σ² Σ_i (1 − r_i^k)² / (K λ_i).

  The last term's summand is 0 at ``λ_i = 0`` (its limit). With ``bias`` the model
  has a bias too (the ``mlp`` model at ``hidden=()``): the features are ``[x, 1]``,
  the bias starts at 0 and its true value is 0; the same sums run over the
  eigenpairs of ``[X, 1]ᵀ[X, 1]/K`` with ``a² + init_scale²`` replaced by
  ``u_iᵀ D u_i``, ``D = diag(a² + init_scale², .., 0)``.

Both average over ``X`` by Monte Carlo; the expectations over ``w``, ``ε`` and the
query are exact. The same key gives the same ``X``, so curves from one key are paired.
The analysis runs in float64 NumPy (``r^k`` for large k, near-zero eigenvalues).
"""

import dataclasses
import functools
import math
from typing import NamedTuple, Sequence, Union

import jax
import numpy as np

from metalearn.tasks import base
from metalearn.tasks.episode import Episode

Steps = Union[int, Sequence[int]]


def _normal(key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
  """``jax.random.normal(key, shape)``, drawn flat and reshaped: the same values, but
  XLA on CPU compiles a many-axis draw far more slowly (10 s against 0.8 s measured for
  ``[2000, 5, 16, 16]``)."""
  return jax.random.normal(key, (math.prod(shape),)).reshape(shape)


@functools.partial(jax.jit, static_argnames=("num_tasks", "shots", "queries", "dim"))
def sample_episodes(key: jax.Array, num_tasks: int, *, shots: int, queries: int,
                    dim: int, weight_std: float, noise: float) -> Episode:
  """``num_tasks`` independent linear-regression episodes.

  Compiled once per episode shape (``weight_std`` and ``noise`` are traced), and
  callable inside a jitted step.

  Args:
    key: PRNG key; the same key gives the same episodes.
    num_tasks: T.
    shots: K, support points.
    queries: Q, query points.
    dim: d.
    weight_std: prior std of each weight.
    noise: std of the target noise.

  Returns:
    Episode with ``support_x [T, K, d]``, ``support_y [T, K, 1]``, ``query_x [T, Q, d]``,
    ``query_y [T, Q, 1]``, all float32; ``class_ids`` None.
  """
  k_w, k_x, k_eps = jax.random.split(key, 3)
  n = shots + queries
  w_TxDx1 = weight_std * _normal(k_w, (num_tasks, dim, 1))
  x_TxNxD = _normal(k_x, (num_tasks, n, dim))
  y_TxNx1 = x_TxNxD @ w_TxDx1 + noise * _normal(k_eps, (num_tasks, n, 1))
  return Episode(support_x=x_TxNxD[:, :shots], support_y=y_TxNx1[:, :shots],
                 query_x=x_TxNxD[:, shots:], query_y=y_TxNx1[:, shots:])


@dataclasses.dataclass(frozen=True)
class LinregTasks:
  """The linear-regression family: ``sample(key, data, num_tasks)`` gives a meta-batch.

  Attributes:
    shots: K.
    queries: Q.
    dim: d.
    weight_std: prior std of each weight.
    noise: std of the target noise.
  """

  shots: int = 8
  queries: int = 10
  dim: int = 8
  weight_std: float = 1.0
  noise: float = 0.5

  def input_shape(self) -> tuple[int]:
    return (self.dim,)

  def load(self, split: str) -> None:
    """No data: every split draws fresh tasks on the device."""
    del split

  def sample(self, key: jax.Array, data=None, num_tasks: int = 1) -> Episode:
    """``num_tasks`` episodes (see ``sample_episodes``); ``data`` is unused."""
    del data
    return sample_episodes(key, num_tasks, shots=self.shots, queries=self.queries,
                           dim=self.dim, weight_std=self.weight_std, noise=self.noise)


class Estimate(NamedTuple):
  """A Monte Carlo mean over support inputs with its standard error (sd / √n)."""

  mean: Union[float, np.ndarray]
  se: Union[float, np.ndarray]
  n: int


def sample_inputs(key: jax.Array, n: int, shots: int, dim: int) -> np.ndarray:
  """``[n, K, d]`` float64 support inputs ``x ~ N(0, I)``, as ``bayes_mse`` and
  ``gd_mse`` draw them from ``key``."""
  return np.asarray(_normal(key, (n, shots, dim)), np.float64)


def _spectrum(x_NxKxD: np.ndarray):
  """Eigenvalues (clipped at 0) and eigenvectors of ``XᵀX/K``, batched."""
  shots = x_NxKxD.shape[-2]
  lam_NxD, u_NxDxD = np.linalg.eigh(np.swapaxes(x_NxKxD, -1, -2) @ x_NxKxD / shots)
  return np.maximum(lam_NxD, 0.0), u_NxDxD


def bayes_mse_given_x(x_KxD: np.ndarray, weight_std: float, noise: float) -> np.ndarray:
  """``σ² + tr Σ``, the Bayes predictor's expected query MSE given support inputs.

  Args:
    x_KxD: support inputs ``[..., K, d]``.
    weight_std: a.
    noise: σ (> 0).

  Returns:
    ``[...]`` float64, mean squared error (no ½).
  """
  x = np.asarray(x_KxD, np.float64)
  lam, _ = _spectrum(x)
  a2, s2 = weight_std ** 2, noise ** 2
  return s2 + np.sum(a2 * s2 / (s2 + a2 * x.shape[-2] * lam), -1)


def gd_mse_given_x(x_KxD: np.ndarray, k_steps: Steps, lr: float, weight_std: float,
                   noise: float, init_scale: float = 0.0, bias: bool = False
                   ) -> np.ndarray:
  """Expected query MSE after ``k`` SGD steps on the support MSE, given support inputs.

  Args:
    x_KxD: support inputs ``[..., K, d]``.
    k_steps: k, or a sequence of them (a curve).
    lr: η, the inner SGD rate on the mean-squared-error loss.
    weight_std: a.
    noise: σ.
    init_scale: std of the initial weights (drawn independently of the task).
    bias: the model has a bias, starting at 0 (the ``mlp`` model at ``hidden=()``).

  Returns:
    ``[...]`` float64 (``[..., len(k_steps)]`` for a sequence), mean squared error.
  """
  x = np.asarray(x_KxD, np.float64)
  shots, dim = x.shape[-2:]
  prior = weight_std ** 2 + init_scale ** 2
  if bias:
    x = np.concatenate([x, np.ones(x.shape[:-1] + (1,))], -1)
  lam, u = _spectrum(x)
  diag = np.full(x.shape[-1], prior)
  diag[dim:] = 0.0  # The bias starts at its true value, 0.
  init_weight = np.einsum("...ji,j->...i", np.square(u), diag)
  k_M = np.atleast_1d(np.asarray(k_steps, np.float64))
  lam, init_weight, k = lam[..., None, :], init_weight[..., None, :], k_M[:, None]
  step = 2.0 * lr * lam  # [..., M, p]: r = 1 − step.
  with np.errstate(over="ignore", invalid="ignore"):
    r_k = np.power(1.0 - step, k)
    # 1 − r^k without cancellation at small steps (near-zero eigenvalues).
    small = -np.expm1(k * np.log1p(-np.minimum(step, 0.5)))
    shrink = np.where(step < 0.5, small, 1.0 - r_k)
    filt = np.where(lam > 0, shrink / np.where(lam > 0, lam, 1.0), 2.0 * lr * k)
    terms = np.square(r_k) * init_weight + noise ** 2 * np.square(filt) * lam / shots
  out = noise ** 2 + terms.sum(-1)
  return out if np.ndim(k_steps) else out[..., 0]


def _estimate(values_N: np.ndarray) -> Estimate:
  n = values_N.shape[0]
  mean = values_N.mean(0)
  se = values_N.std(0, ddof=1) / math.sqrt(n)
  return Estimate(mean=mean if mean.ndim else float(mean),
                  se=se if se.ndim else float(se), n=n)


def _check_floor_args(weight_std, noise, n):
  if not (weight_std > 0 and noise > 0):
    raise ValueError(f"weight_std={weight_std}, noise={noise}: both must be > 0")
  if n < 2:
    raise ValueError(f"n={n}: need >= 2 draws of the support inputs for an error")


def bayes_mse(shots: int, dim: int, weight_std: float, noise: float, key: jax.Array,
              n: int) -> Estimate:
  """The Bayes-optimal expected query MSE (the floor), ``E_X[σ² + tr Σ]``.

  Args:
    shots: K.
    dim: d.
    weight_std: a.
    noise: σ.
    key: PRNG key of the support inputs (``sample_inputs``).
    n: draws of the support inputs.

  Returns:
    An ``Estimate``: mean squared error (the learner's 'loss', no ½) and its error
    over the draws of ``X``.
  """
  _check_floor_args(weight_std, noise, n)
  return _estimate(bayes_mse_given_x(sample_inputs(key, n, shots, dim), weight_std,
                                     noise))


def gd_mse(k_steps: Steps, lr: float, shots: int, dim: int, weight_std: float,
           noise: float, key: jax.Array, n: int, init_scale: float = 0.0,
           bias: bool = False) -> Estimate:
  """Expected query MSE after ``k`` inner SGD steps from ``w_0 = 0`` (the curve).

  The inner loop's map: ``w ← w − η (2/K) Xᵀ(Xw − y)``, SGD on the learner's support
  MSE. Exact given ``X``; averaged over ``n`` draws of ``X`` from ``key``. GD diverges
  on an ``X`` with ``η > 1/λ_max(XᵀX/K)``, and so does its term of the mean.

  Args:
    k_steps: k, or a sequence of them.
    lr: η.
    shots: K.
    dim: d.
    weight_std: a.
    noise: σ.
    key: PRNG key of the support inputs (``sample_inputs``; the same ``X`` as
      ``bayes_mse`` with this key).
    n: draws of the support inputs.
    init_scale: std of random initial weights (0: the prior mean, the best start).
    bias: the model also has a bias starting at 0 (``mlp`` at ``hidden=()``).

  Returns:
    An ``Estimate`` (arrays over ``k_steps`` for a sequence): mean squared error.
  """
  _check_floor_args(weight_std, noise, n)
  return _estimate(gd_mse_given_x(sample_inputs(key, n, shots, dim), k_steps, lr,
                                  weight_std, noise, init_scale, bias))


def make(config, evaluation: bool) -> LinregTasks:
  """Training tasks or, with ``evaluation``, ``config.eval``'s shots and queries."""
  e = config.eval if evaluation else None
  r = config.linreg
  return LinregTasks(shots=(e and e.shots) or config.shots,
                     queries=(e and e.queries) or config.queries, dim=int(r.dim),
                     weight_std=float(r.weight_std), noise=float(r.noise))


KIND = base.TaskKind(
    name="linreg", make=make, loss="mse", data_name=lambda c: "linreg",
    check=lambda c: base.check_vector_family(c, "linreg"))
