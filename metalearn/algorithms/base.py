"""The contract every algorithm follows.

``meta_grad(theta, episode, key, *, learner, inner) -> (grads, aux)``: for one task,
the (pseudo-)gradient of the meta-objective with respect to the meta-parameters
``theta`` (same pytree structure, to be fed to any optax optimiser) and a dict of
scalar metrics. Algorithms hold no state; the meta-step vmaps them over tasks. ``log``
(a traced or Python boolean, default true) says whether the metrics that cost extra forward
passes are computed (see ``post_adaptation_metrics``).
"""

from typing import Any, Callable, Protocol

import jax
import jax.numpy as jnp

from metalearn.inner import InnerConfig
from metalearn.learner import Learner
from metalearn.tasks.episode import Episode

Params = Any


class MetaGradFn(Protocol):

  def __call__(self, theta: Params, episode: Episode, key: jax.Array, *,
               learner: Learner, inner: InnerConfig, log: Any = True
               ) -> tuple[Params, dict]:
    ...


def require_plain_inner(inner: InnerConfig, algorithm: str) -> None:
  """Refuses what only Reptile supports: minibatch inner steps, a carried inner state."""
  if inner.batch_size:
    raise ValueError(f"{algorithm} adapts on the whole support set; inner "
                     f"batch_size={inner.batch_size} is only supported by reptile")
  if inner.carry_state:
    raise ValueError(f"{algorithm} starts every task from a fresh inner optimiser; "
                     "inner carry_state is only supported by reptile")


def if_logging(log: Any, fn: Callable, x: Any) -> Any:
  """``fn(x)`` when ``log``, else zeros of its shapes: the metrics that cost extra
  forward passes. A traced ``log`` becomes a ``lax.cond``, which XLA's cost analysis
  counts as its costlier branch; a Python bool picks the branch while tracing, so a
  program traced with ``log=False`` (FLOP counting) holds no metric passes at all."""
  def zeros(x):
    return jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), jax.eval_shape(fn, x))
  if isinstance(log, bool):
    return fn(x) if log else zeros(x)
  return jax.lax.cond(log, fn, zeros, x)


def post_adaptation_metrics(learner: Learner, adapted: Params, episode: Episode,
                            support_losses_K: jax.Array, query_metrics,
                            log: Any = True) -> dict:
  """The metrics every algorithm reports for one task, outside any gradient.

  Args:
    learner: the learner.
    adapted: the task's adapted parameters.
    episode: the task.
    support_losses_K: the inner loop's per-step support losses.
    query_metrics: the query metrics at ``adapted`` (a dict), or a function of the
      adapted parameters computing them (when the algorithm does not need them).
    log: when false, the metrics that cost extra forward passes are zeros
      (``if_logging``; the meta-step passes its ``log``).

  Returns:
    Scalar metrics by name.
  """
  adapted = jax.lax.stop_gradient(adapted)

  def extra(adapted):
    _, support_post = learner.support_loss(adapted, episode)
    out = {f"support_{k}_post": v for k, v in support_post.items()}
    if callable(query_metrics):
      out.update({f"query_{k}_post": v for k, v in query_metrics(adapted).items()})
    return out

  aux = if_logging(log, extra, adapted)
  if not callable(query_metrics):
    aux.update({f"query_{k}_post": jax.lax.stop_gradient(v)
                for k, v in query_metrics.items()})
  if support_losses_K.shape[0]:
    aux["support_loss_pre"] = jax.lax.stop_gradient(support_losses_K[0])
  return aux


MetaGrad = Callable[..., tuple[Params, dict]]
