"""Prototypical Networks (Snell, Swersky & Zemel 2017).

No inner loop. An embedding ``f`` (the model's body: the network without its final
linear layer, ``anil.body_model``) maps the support set to one prototype per class, the
mean embedding of its support examples, ``c_n = mean_{i: y_i = n} f(x_i)``; a query
``x`` gets the logits ``−‖f(x) − c_n‖²`` (squared Euclidean distance, the paper's
choice) and the loss is the cross-entropy of the queries. The meta-gradient is the
gradient of that loss with respect to the embedding's parameters.

``theta`` is the body's parameters alone (``init_theta`` drops the head of the model's
initialisation), so the model's head is neither trained nor checkpointed, and the
number of classes is free: an episode's ways are read from ``episode.class_ids``, and
training may use more ways than testing (the paper trains Omniglot 1-shot with 60 ways
and tests with 5 and 20; ``Algorithm.has_head=False`` lets ``config.eval.ways`` differ
from ``config.ways``). Batch norm keeps the learner's ``bn_mode`` (``anil.features``).

Evaluation reports the metrics every algorithm reports (the query's loss and accuracy,
``support_loss``: the support set classified by its own prototypes) at each requested
test-time step; they are constant in k, as nothing adapts. The test-time program
(``adapted_query_loss``: embeddings, prototypes, distances, loss) is the same at every
k, so ``flops.inner_step_flops`` is 0 and the whole cost is ``flops.query_flops``.
"""

from typing import Any, Sequence

import jax
import jax.numpy as jnp

from metalearn import tasks
from metalearn.algorithms import anil
from metalearn.algorithms import base
from metalearn.errors import ConfigError
from metalearn.inner import InnerConfig
from metalearn.learner import Learner
from metalearn.tasks.episode import Episode

Params = Any


def num_ways(episode: Episode) -> int:
  """The episode's number of classes N (static: ``class_ids`` has shape ``[N]``)."""
  if episode.class_ids is None:
    raise ValueError("protonet needs the episode's class_ids (its number of classes)")
  return episode.class_ids.shape[-1]


def prototypes(support_f_SxD: jax.Array, support_y_S: jax.Array, ways: int
               ) -> jax.Array:
  """``[N, D]``: the mean support embedding of each class (labels in ``[0, N)``)."""
  onehot_SxN = jax.nn.one_hot(support_y_S, ways, dtype=support_f_SxD.dtype)
  return (onehot_SxN.T @ support_f_SxD) / onehot_SxN.sum(0)[:, None]


def logits(f_BxD: jax.Array, prototypes_NxD: jax.Array) -> jax.Array:
  """``[B, N]``: minus the squared Euclidean distance to each prototype."""
  return -jnp.sum(jnp.square(f_BxD[:, None, :] - prototypes_NxD[None]), axis=-1)


def _scores(learner: Learner, theta: Params, episode: Episode):
  """``(query loss, query metrics, (support embeddings, prototypes))``."""
  fs, fq = anil.features(learner, theta, episode)
  protos = prototypes(fs, episode.support_y, num_ways(episode))
  loss, query = learner.score(logits(fq, protos), episode.query_y)
  return loss, query, (fs, protos)


def _support_metrics(learner: Learner, episode: Episode, fs_and_protos) -> dict:
  """The support set classified by its own prototypes."""
  fs, protos = fs_and_protos
  return learner.score(logits(fs, protos), episode.support_y)[1]


def _check_inner(inner: InnerConfig) -> None:
  base.require_plain_inner(inner, "protonet")


def protonet_meta_grad(theta: Params, episode: Episode, key: jax.Array, *,
                       learner: Learner, inner: InnerConfig, log: Any = True
                       ) -> tuple[Params, dict]:
  """The gradient of the query cross-entropy with respect to the embedding.

  Args and returns as ``maml.maml_meta_grad`` (``inner`` is unused: no inner loop);
  ``theta`` is the body's parameters.
  """
  del key
  _check_inner(inner)

  def loss_fn(theta):
    loss, query, fs_and_protos = _scores(learner, theta, episode)
    return loss, (query, fs_and_protos)

  grads, (query, fs_and_protos) = jax.grad(loss_fn, has_aux=True)(theta)
  aux = {f"query_{k}_post": jax.lax.stop_gradient(v) for k, v in query.items()}
  # Scoring the support set reuses the embeddings; only on logging steps, so that a
  # step that does not log (and its FLOP count) is the loss and its gradient alone.
  support = lambda fp: {f"support_{k}_post": v for k, v in
                        _support_metrics(learner, episode, fp).items()}
  aux.update(base.if_logging(log, support, jax.lax.stop_gradient(fs_and_protos)))
  return grads, aux


def protonet_adapt_curve(theta: Params, episode: Episode, *, learner: Learner,
                         inner: InnerConfig, eval_steps: Sequence[int],
                         inner_state: Any = None) -> dict:
  """The query's metrics and ``support_loss``, the same at every step of
  ``eval_steps`` (nothing adapts): metric name -> ``[len(eval_steps)]``."""
  del inner
  if inner_state is not None:
    raise ValueError("protonet has no inner optimiser state")
  _, query, fs_and_protos = _scores(learner, theta, episode)
  metrics = dict(query, support_loss=_support_metrics(learner, episode,
                                                      fs_and_protos)["loss"])
  return {k: jnp.broadcast_to(v, (len(eval_steps),)) for k, v in metrics.items()}


def protonet_adapted_query_loss(theta: Params, episode: Episode, *, learner: Learner,
                                inner: InnerConfig) -> jax.Array:
  """The query loss (embeddings, prototypes, distances): the same program at every
  ``inner.steps``, so the inner steps cost 0 FLOPs."""
  del inner
  return _scores(learner, theta, episode)[0]


def _check(config) -> None:
  anil.check_body_head(config, "protonet")
  if tasks.get(config.task).loss != "xent":
    raise ConfigError(f"config.task: {config.task!r} is not classification; protonet "
                      "classifies by the distance to class prototypes")
  if config.inner.steps:
    raise ConfigError(f"config.inner.steps: {config.inner.steps}: protonet has no inner "
                      "loop; set 0")
  if config.inner.frozen.strip():
    raise ConfigError(f"config.inner.frozen: {config.inner.frozen!r}: protonet has no "
                      "inner loop; leave it ''")


PROTONET = base.Algorithm(
    name="protonet", meta_grad=protonet_meta_grad, differentiates_inner=False,
    adapt_curve=protonet_adapt_curve, adapted_query_loss=protonet_adapted_query_loss,
    check=_check, init_theta=lambda params, inner: anil.split(params)[0],
    has_head=False)
