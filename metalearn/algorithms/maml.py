"""MAML (Finn et al. 2017) with exact second-order gradients, and first-order MAML.

MAML's meta-gradient of one task is ``d/dθ L_query(adapt(θ))``, differentiating
through the K inner steps (Hessian-vector products included). First-order MAML drops
the second-order terms, i.e. treats ``d adapt(θ)/dθ`` as the identity; its gradient is
then just ``∇L_query`` at the adapted parameters, so it is computed without
differentiating through the inner loop at all (memory flat in K).
"""

from typing import Any

import jax

from metalearn import inner as inner_lib
from metalearn.algorithms import base
from metalearn.inner import InnerConfig
from metalearn.learner import Learner
from metalearn.tasks.episode import Episode


def maml_meta_grad(theta, episode: Episode, key: jax.Array, *, learner: Learner,
                   inner: InnerConfig, log: Any = True):
  """Second-order MAML meta-gradient for one task (first-order if inner.first_order).

  Args:
    theta: meta-parameters.
    episode: one unbatched episode.
    key: unused (the contract allows stochastic algorithms).
    learner: model, loss and batch-norm mode.
    inner: inner-loop configuration.

  Returns:
    ``(grads, aux)``: the gradient of the post-adaptation query loss w.r.t. ``theta``,
    and scalar metrics.
  """
  del key
  base.require_plain_inner(inner, "maml")

  def outer_loss(theta):
    adapted, losses_K = inner_lib.adapt(
        theta, lambda p: learner.support_loss(p, episode), cfg=inner)
    loss, metrics = learner.query_loss(adapted, episode)
    return loss, (adapted, losses_K, metrics)

  grads, (adapted, losses_K, metrics) = jax.grad(outer_loss, has_aux=True)(theta)
  return grads, base.post_adaptation_metrics(learner, adapted, episode, losses_K,
                                             metrics, log)


def fomaml_meta_grad(theta, episode: Episode, key: jax.Array, *, learner: Learner,
                     inner: InnerConfig, log: Any = True):
  """First-order MAML: the query-loss gradient at the adapted parameters.

  Args and returns as ``maml_meta_grad``.
  """
  del key
  base.require_plain_inner(inner, "fomaml")
  adapted, losses_K = inner_lib.adapt(
      jax.lax.stop_gradient(theta), lambda p: learner.support_loss(p, episode),
      cfg=inner)
  (_, metrics), grads = jax.value_and_grad(
      learner.query_loss, has_aux=True)(adapted, episode)
  return grads, base.post_adaptation_metrics(learner, adapted, episode, losses_K,
                                             metrics, log)


MAML = base.Algorithm(name="maml", meta_grad=maml_meta_grad)
FOMAML = base.Algorithm(name="fomaml", meta_grad=fomaml_meta_grad, first_order=True)
