"""Reptile (Nichol, Achiam & Schulman 2018).

Each task adapts ``θ`` by K steps of SGD or Adam on its support set; the outer update
moves ``θ`` towards the adapted parameters. It is expressed as the pseudo-gradient
``θ − adapted``, so that any optax optimiser applies it: ``optax.sgd(ε)`` gives the
paper's ``θ ← θ + ε (mean adapted − θ)``, with ε linearly annealed by a schedule as in
the paper's outer step size.

With ``inner.batch_size`` set, each inner step sees a minibatch of the support set,
drawn as the paper's code draws them: the examples are shuffled and cut into
consecutive batches, reshuffling when a pass is used up (a batch may straddle two
passes). The reported ``support_loss_pre`` is then the first minibatch's loss.
"""

from typing import Any

import jax
import jax.numpy as jnp

from metalearn import inner as inner_lib
from metalearn.algorithms import base
from metalearn.errors import ConfigError
from metalearn.inner import InnerConfig
from metalearn.learner import Learner
from metalearn.tasks.episode import Episode


def minibatch_indices(key: jax.Array, num_examples: int, batch_size: int, steps: int
                      ) -> jax.Array:
  """``[steps, batch_size]`` support indices: consecutive slices of shuffled passes.

  Args:
    key: PRNG key.
    num_examples: support set size n.
    batch_size: examples per inner step, at most n.
    steps: inner steps K.

  Returns:
    int32 indices; row k is the minibatch of step k. Every block of n consecutive
    entries (in row-major order) is a permutation of ``range(n)``.
  """
  if not 1 <= batch_size <= num_examples:
    raise ValueError(f"inner batch_size={batch_size}: must be in [1, {num_examples}] "
                     "(the support set size)")
  passes = -(-steps * batch_size // num_examples)
  perms = jax.vmap(lambda k: jax.random.permutation(k, num_examples))(
      jax.random.split(key, passes))
  return perms.reshape(-1)[:steps * batch_size].reshape(steps, batch_size).astype(
      jnp.int32)


def reptile_meta_grad(theta, episode: Episode, key: jax.Array, *, learner: Learner,
                      inner: InnerConfig, log: Any = True):
  """Reptile pseudo-gradient ``θ − adapt(θ)`` for one task, from a fresh inner optimiser.

  Args and returns as ``maml.maml_meta_grad``; the query set is only scored, and
  ``key`` draws the minibatches when ``inner.batch_size`` is set.
  """
  if inner.carry_state:
    raise ValueError("inner carry_state: tasks depend on each other through the inner "
                     "optimiser; use reptile_meta_grad_carried (the meta-step does)")
  grads, aux, _ = reptile_meta_grad_carried(theta, inner.make_optimizer().init(theta),
                                            episode, key, learner=learner, inner=inner,
                                            log=log)
  return grads, aux


def reptile_meta_grad_carried(theta, inner_state, episode: Episode, key: jax.Array, *,
                              learner: Learner, inner: InnerConfig, log: Any = True):
  """Reptile for one task, its inner optimiser starting from ``inner_state``.

  Returns:
    ``(grads, aux, inner_state)``: as ``reptile_meta_grad``, plus the inner
    optimiser's state after this task, for the next task.
  """
  theta = jax.lax.stop_gradient(theta)
  if inner.batch_size:
    batches = minibatch_indices(key, episode.support_x.shape[0], inner.batch_size,
                                inner.steps)
    on_batch = lambda p, i: learner.support_loss(
        p, episode.replace(support_x=episode.support_x[i], support_y=episode.support_y[i]))
    adapted, inner_state, losses_K = inner_lib.adapt_from(
        theta, inner_state, on_batch, cfg=inner, batches=batches)
  else:
    adapted, inner_state, losses_K = inner_lib.adapt_from(
        theta, inner_state, lambda p: learner.support_loss(p, episode), cfg=inner)
  grads = jax.tree.map(lambda t, a: t - a, theta, adapted)
  query_metrics = lambda p: learner.query_loss(p, episode)[1]  # Only scored.
  return grads, base.post_adaptation_metrics(learner, adapted, episode, losses_K,
                                             query_metrics, log), inner_state


def _check(config) -> None:
  if config.inner.carry_state and config.inner.optimizer != "adam":
    raise ConfigError("config.inner.carry_state: carries the inner Adam state; needs "
                      "inner.optimizer='adam'")


REPTILE = base.Algorithm(name="reptile", meta_grad=reptile_meta_grad,
                         differentiates_inner=False,
                         carried_meta_grad=reptile_meta_grad_carried,
                         minibatch_inner=True, min_inner_steps=1, check=_check)
