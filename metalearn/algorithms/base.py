"""The contract every algorithm follows.

``meta_grad(theta, episode, key, *, learner, inner) -> (grads, aux)``: for one task,
the (pseudo-)gradient of the meta-objective with respect to the meta-parameters
``theta`` (same pytree structure, to be fed to any optax optimiser) and a dict of
scalar metrics. Algorithms hold no state; the meta-step vmaps them over tasks.
"""

from typing import Any, Callable, Protocol

import jax

from metalearn.inner import InnerConfig
from metalearn.learner import Learner
from metalearn.tasks.episode import Episode

Params = Any


class MetaGradFn(Protocol):

  def __call__(self, theta: Params, episode: Episode, key: jax.Array, *,
               learner: Learner, inner: InnerConfig) -> tuple[Params, dict]:
    ...


def require_plain_inner(inner: InnerConfig, algorithm: str) -> None:
  """Refuses what only Reptile supports: minibatch inner steps, a carried inner state."""
  if inner.batch_size:
    raise ValueError(f"{algorithm} adapts on the whole support set; inner "
                     f"batch_size={inner.batch_size} is only supported by reptile")
  if inner.carry_state:
    raise ValueError(f"{algorithm} starts every task from a fresh inner optimiser; "
                     "inner carry_state is only supported by reptile")


def post_adaptation_metrics(learner: Learner, adapted: Params, episode: Episode,
                            support_losses_K: jax.Array, query_metrics: dict) -> dict:
  """The metrics every algorithm reports for one task, outside any gradient."""
  adapted = jax.lax.stop_gradient(adapted)
  _, support_post = learner.support_loss(adapted, episode)
  aux = {f"query_{k}_post": jax.lax.stop_gradient(v) for k, v in query_metrics.items()}
  aux.update({f"support_{k}_post": v for k, v in support_post.items()})
  if support_losses_K.shape[0]:
    aux["support_loss_pre"] = jax.lax.stop_gradient(support_losses_K[0])
  return aux


MetaGrad = Callable[..., tuple[Params, dict]]
