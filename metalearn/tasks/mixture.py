"""Few-shot classification of Gaussian mixtures: a task family with a known Bayes floor.

A task draws N class means ``mu_c ~ N(0, mean_std² I_d)``; an example of class c is
``x ~ N(mu_c, noise² I_d)``. Episodes are laid out as the image episodes are
(``sampling.py``): K support and Q query examples per class, class-major, labels
``0,0,..,1,1,..``. The means are i.i.d., so label i may as well be class i: a random
label permutation would not change the distribution, and ``class_ids`` is ``arange(N)``.

Given the support set the Bayes-optimal classifier is known in closed form. After
``n_c`` support examples of class c with sum ``s_c``, the posterior of its mean is
``N(m_c, v_c I)`` with

  1/v_c = 1/mean_std² + n_c/noise²,    m_c = v_c · s_c / noise²,

and a query's posterior predictive under class c is ``N(m_c, (v_c + noise²) I)``. With
equal class priors the Bayes rule is the argmax of that density and the class
posterior its softmax (``bayes_logits``). Each query is scored from the support set
alone, as a learner without batch statistics across queries scores it.
``bayes_accuracy`` estimates by Monte Carlo the accuracy (a ceiling no learner beats
in expectation) and the query cross-entropy (a floor) of that classifier.
"""

import dataclasses
import functools
import math
from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax

from metalearn.tasks import base
from metalearn.tasks.episode import Episode


def _normal(key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
  """``jax.random.normal(key, shape)``, drawn flat and reshaped: the same values, but
  XLA on CPU compiles a many-axis draw far more slowly (10 s against 0.8 s measured for
  ``[2000, 5, 16, 16]``)."""
  return jax.random.normal(key, (math.prod(shape),)).reshape(shape)


@functools.partial(jax.jit, static_argnames=("num_tasks", "ways", "shots", "queries",
                                             "dim", "pool_size"))
def sample_episodes(key: jax.Array, num_tasks: int, *, ways: int, shots: int,
                    queries: int, dim: int, mean_std: float, noise: float,
                    pool_size: int = 0, pool_seed: int = 12345) -> Episode:
  """``num_tasks`` independent N-way K-shot Gaussian-mixture episodes.

  Compiled once per episode shape (``mean_std`` and ``noise`` are traced), and callable
  inside a jitted step.

  Args:
    key: PRNG key; the same key gives the same episodes.
    num_tasks: T.
    ways: N, classes per episode.
    shots: K, support examples per class.
    queries: Q, query examples per class.
    dim: d, the input dimension.
    mean_std: prior standard deviation of each coordinate of a class mean.
    noise: standard deviation of each coordinate of an example around its mean.
    pool_size: > 0: each task is one of ``pool_size`` fixed tasks (sets of N class
      means drawn once from ``pool_seed``), picked uniformly; its examples are fresh.
      0: every task is new.
    pool_seed: seed of the pool.

  Returns:
    Episode with ``support_x [T, N*K, d]`` float32, ``support_y [T, N*K]`` int32,
    ``query_x [T, N*Q, d]``, ``query_y [T, N*Q]``, ``class_ids [T, N]`` (arange).
  """
  k_mean, k_x = jax.random.split(key)
  if pool_size:
    pool_PxNx1xD = mean_std * _normal(jax.random.key(pool_seed),
                                      (pool_size, ways, 1, dim))
    mu_TxNx1xD = pool_PxNx1xD[jax.random.randint(k_mean, (num_tasks,), 0, pool_size)]
  else:
    mu_TxNx1xD = mean_std * _normal(k_mean, (num_tasks, ways, 1, dim))
  x_TxNxMxD = mu_TxNx1xD + noise * _normal(
      k_x, (num_tasks, ways, shots + queries, dim))
  labels_N = jnp.arange(ways, dtype=jnp.int32)
  tile = lambda y: jnp.broadcast_to(y, (num_tasks,) + y.shape)
  return Episode(
      support_x=x_TxNxMxD[:, :, :shots].reshape(num_tasks, ways * shots, dim),
      support_y=tile(jnp.repeat(labels_N, shots)),
      query_x=x_TxNxMxD[:, :, shots:].reshape(num_tasks, ways * queries, dim),
      query_y=tile(jnp.repeat(labels_N, queries)),
      class_ids=tile(labels_N))


@dataclasses.dataclass(frozen=True)
class MixtureTasks:
  """The Gaussian-mixture family: ``sample(key, data, num_tasks)`` gives a meta-batch.

  Attributes:
    ways: N.
    shots: K.
    queries: Q, per class.
    dim: d.
    mean_std: prior std of the class means' coordinates.
    noise: std of the examples' coordinates around their class mean.
    pool_size: > 0: meta-train on this many fixed tasks (``sample_episodes``); 0: fresh.
    pool_seed: seed of the pool.
  """

  ways: int = 5
  shots: int = 1
  queries: int = 15
  dim: int = 16
  mean_std: float = 1.0
  noise: float = 1.0
  pool_size: int = 0
  pool_seed: int = 12345

  def input_shape(self) -> tuple[int]:
    return (self.dim,)

  def load(self, split: str) -> None:
    """No data: every split draws fresh tasks on the device."""
    del split

  def sample(self, key: jax.Array, data=None, num_tasks: int = 1) -> Episode:
    """``num_tasks`` episodes (see ``sample_episodes``); ``data`` is unused."""
    del data
    return sample_episodes(key, num_tasks, ways=self.ways, shots=self.shots,
                           queries=self.queries, dim=self.dim, mean_std=self.mean_std,
                           noise=self.noise, pool_size=self.pool_size,
                           pool_seed=self.pool_seed)


def bayes_logits(episode: Episode, mean_std: float, noise: float,
                 ways: Optional[int] = None) -> jax.Array:
  """Log posterior-predictive densities of one episode's queries under each class.

  Pure ``jnp``; ``jax.vmap`` it over a meta-batch. Any number of support examples per
  class is allowed (the posterior is per class).

  Args:
    episode: one episode without the task axis: ``support_x [S, d]``,
      ``support_y [S]`` int32 labels, ``query_x [Q_total, d]``.
    mean_std: prior std of the class means' coordinates (> 0).
    noise: std of the examples around their class mean (> 0).
    ways: N; default ``episode.class_ids.shape[-1]``.

  Returns:
    ``[Q_total, N]``: ``log N(x_q; m_c, (v_c + noise²) I)``. Their argmax is the Bayes
    classifier and their softmax the class posterior (equal class priors).
  """
  if ways is None:
    if episode.class_ids is None:
      raise ValueError("bayes_logits: pass ways= for an episode without class_ids")
    ways = episode.class_ids.shape[-1]
  support_x_SxD, query_x_QxD = episode.support_x, episode.query_x
  onehot_SxN = jax.nn.one_hot(episode.support_y, ways, dtype=support_x_SxD.dtype)
  counts_N = onehot_SxN.sum(0)
  sums_NxD = onehot_SxN.T @ support_x_SxD
  noise_var = jnp.square(noise)
  post_var_N = 1.0 / (1.0 / jnp.square(mean_std) + counts_N / noise_var)
  post_mean_NxD = (post_var_N / noise_var)[:, None] * sums_NxD
  pred_var_N = post_var_N + noise_var
  sq_QxN = jnp.sum(jnp.square(query_x_QxD[:, None, :] - post_mean_NxD[None]), -1)
  dim = support_x_SxD.shape[-1]
  return -0.5 * (sq_QxN / pred_var_N + dim * jnp.log(2 * math.pi * pred_var_N))


class BayesFloor(NamedTuple):
  """Monte Carlo estimates over episodes, each with its standard error (sd / √n).

  Attributes:
    accuracy: mean per-episode query accuracy of the Bayes classifier.
    accuracy_se: its standard error.
    loss: mean per-episode query cross-entropy of the Bayes class posterior (nats).
    loss_se: its standard error.
    episodes: n, the episodes averaged over.
  """

  accuracy: float
  accuracy_se: float
  loss: float
  loss_se: float
  episodes: int


@functools.partial(jax.jit, static_argnames=("num_tasks", "ways", "shots", "queries",
                                             "dim"))
def _bayes_scores(key, mean_std, noise, *, num_tasks, ways, shots, queries, dim):
  """Per-episode accuracy and cross-entropy of the Bayes classifier, ``[T]`` each."""
  episodes = sample_episodes(key, num_tasks, ways=ways, shots=shots, queries=queries,
                             dim=dim, mean_std=mean_std, noise=noise)
  logits_TxQxN = jax.vmap(lambda e: bayes_logits(e, mean_std, noise, ways))(episodes)
  correct_TxQ = jnp.argmax(logits_TxQxN, -1) == episodes.query_y
  xent_TxQ = optax.softmax_cross_entropy_with_integer_labels(logits_TxQxN,
                                                             episodes.query_y)
  return correct_TxQ.mean(-1), xent_TxQ.mean(-1)


def bayes_accuracy(ways: int, shots: int, dim: int, mean_std: float, noise: float,
                   key: jax.Array, episodes: int, *, queries: int = 15,
                   batch: int = 2000) -> BayesFloor:
  """The Bayes-optimal accuracy and cross-entropy of the family, by Monte Carlo.

  Samples ``episodes`` episodes and scores each query with ``bayes_logits``; the
  per-episode means are averaged, as evaluation rows average them.

  Args:
    ways: N.
    shots: K.
    dim: d.
    mean_std: prior std of the class means' coordinates.
    noise: std of the examples around their class mean.
    key: PRNG key.
    episodes: n, episodes to average over (>= 2).
    queries: Q per class; the means do not depend on it, their errors do.
    batch: episodes sampled per compiled call (memory).

  Returns:
    A ``BayesFloor``.
  """
  if not (mean_std > 0 and noise > 0):
    raise ValueError(f"mean_std={mean_std}, noise={noise}: both must be > 0")
  if episodes < 2:
    raise ValueError(f"episodes={episodes}: need >= 2 for a standard error")
  batch = min(batch, episodes)
  acc, xent = [], []
  for i in range(-(-episodes // batch)):
    a, x = _bayes_scores(jax.random.fold_in(key, i), float(mean_std), float(noise),
                         num_tasks=batch, ways=ways, shots=shots, queries=queries,
                         dim=dim)
    acc.append(np.asarray(a, np.float64))
    xent.append(np.asarray(x, np.float64))
  acc, xent = np.concatenate(acc)[:episodes], np.concatenate(xent)[:episodes]
  se = lambda v: float(v.std(ddof=1) / math.sqrt(v.size))
  return BayesFloor(accuracy=float(acc.mean()), accuracy_se=se(acc),
                    loss=float(xent.mean()), loss_se=se(xent), episodes=episodes)


def make(config, evaluation: bool) -> MixtureTasks:
  """Training tasks (from the pool ``config.mixture.pool`` if > 0) or, with
  ``evaluation``, fresh tasks of ``config.eval``'s ways, shots, queries."""
  e = config.eval if evaluation else None
  m = config.mixture
  return MixtureTasks(ways=(e and e.ways) or config.ways,
                      shots=(e and e.shots) or config.shots,
                      queries=(e and e.queries) or config.queries, dim=int(m.dim),
                      mean_std=float(m.mean_std), noise=float(m.noise),
                      pool_size=0 if evaluation else int(m.pool))


KIND = base.TaskKind(
    name="mixture", make=make, loss="xent", data_name=lambda c: "mixture",
    size_keys=("mixture.pool",),
    check=lambda c: base.check_vector_family(c, "mixture"))
