"""ANIL, Almost No Inner Loop (Raghu, Raghu, Bengio & Vinyals 2020).

MAML with the inner loop restricted to the network's head (its final linear layer):
the body is meta-learned by the outer loop only. The meta-gradient of one task is
``d/dθ L_query(body, head_K)`` where ``head_K`` is the head after K inner steps on the
support loss, which depends on the body through the support features; second order
through the head's adaptation unless ``config.anil.first_order``.

Computationally this is the point of ANIL, so it is written that way: the body's
support and query features are computed ONCE per task, and the inner loop runs on the
head over those fixed features. An inner step then costs the head's FLOPs only (a
``[S, D] @ [D, N]`` matmul and its gradient), which is what ``adapted_query_loss``, and
so ``flops.inner_step_flops``, counts.

The body/head split. A model supports it when it has a ``features_only`` attribute
(``models.conv4.Conv4``, ``models.mlp.MLP``): the clone with ``features_only=True``
returns the input of the final ``Dense`` and has the same parameter names as the
full model minus that layer's, so a full parameter dict restricted to the body applies
to it. The head is the last ``Dense_<i>`` module of the parameters (``head_name``).

Batch norm keeps the learner's ``bn_mode`` semantics (``learner.py``): the support
features are the body's pass over the support set alone (as ``Learner.support_loss``);
the query features are normalised with the query's own statistics (``transductive``),
the support's (``non_transductive``: one pass over support and query whose statistics
come from the support; its support rows are the support features), or both's
(``transductive_joint``).

``theta`` is the whole model's parameters (as MAML's), so checkpoints, the meta-step's
pre-adaptation scores and MAML's initialisation carry over. Protocol helpers here
(``body_model``, ``split``, ``features``) are shared with Prototypical Networks.
"""

import dataclasses
import re
from typing import Any, Sequence

from flax import linen as nn
import jax
import jax.numpy as jnp

from metalearn import inner as inner_lib
from metalearn import models
from metalearn.algorithms import base
from metalearn.errors import ConfigError
from metalearn.inner import InnerConfig
from metalearn.learner import Learner
from metalearn.tasks.episode import Episode

Params = Any
_DENSE = re.compile(r"Dense_(\d+)$")


def body_model(model: nn.Module) -> nn.Module:
  """The model without its final linear layer (``features_only=True``).

  Raises:
    ValueError: the model has no ``features_only`` option.
  """
  if not hasattr(model, "features_only"):
    raise ValueError(f"{type(model).__name__} has no body/head split (a "
                     "features_only attribute); ANIL and Prototypical Networks need one")
  return model.clone(features_only=True)


def head_name(params: Params) -> str:
  """The head's module name: the last ``Dense_<i>`` of the parameters."""
  dense = [(int(m.group(1)), k) for k in params if (m := _DENSE.match(k))]
  if not dense:
    raise ValueError(f"no Dense_<i> module among the parameters {sorted(params)}")
  return max(dense)[1]


def split(params: Params) -> tuple[Params, str, Params]:
  """``(body parameters, head module name, head parameters)`` of a full model's."""
  name = head_name(params)
  return {k: v for k, v in params.items() if k != name}, name, params[name]


def apply_head(head: Params, features_BxD: jax.Array) -> jax.Array:
  """The head's outputs, as ``nn.Dense`` computes them."""
  return features_BxD @ head["kernel"] + head["bias"]


def features(learner: Learner, body: Params, episode: Episode
             ) -> tuple[jax.Array, jax.Array]:
  """The body's support and query features, normalised as ``learner.bn_mode`` says.

  Args:
    learner: the learner (its model and batch-norm mode).
    body: the body's parameters.
    episode: one unbatched episode.

  Returns:
    ``(support_features_SxD, query_features_QxD)``.
  """
  net = body_model(learner.model)
  apply = lambda x, num_stats=None: net.apply({"params": body}, x, num_stats)
  s = episode.support_x.shape[0]
  both = lambda: jnp.concatenate([episode.support_x, episode.query_x], axis=0)
  if learner.bn_mode == "non_transductive":
    f = apply(both(), s)  # Statistics of the support rows: its rows are apply(support).
    return f[:s], f[s:]
  support = apply(episode.support_x)
  if learner.bn_mode == "transductive":
    return support, apply(episode.query_x)
  return support, apply(both())[s:]


def _check_inner(inner: InnerConfig) -> None:
  base.require_plain_inner(inner, "anil")
  if inner.frozen:
    raise ValueError(f"anil adapts the head alone; inner frozen={inner.frozen} "
                     "has nothing to freeze")


def _head_losses(learner: Learner, episode: Episode, fs: jax.Array, fq: jax.Array):
  """``(support_loss(head), query_loss(head))``, each ``head -> (loss, metrics)``."""
  return (lambda h: learner.score(apply_head(h, fs), episode.support_y),
          lambda h: learner.score(apply_head(h, fq), episode.query_y))


def anil_meta_grad(theta: Params, episode: Episode, key: jax.Array, *,
                   learner: Learner, inner: InnerConfig, log: Any = True
                   ) -> tuple[Params, dict]:
  """ANIL's meta-gradient for one task (first-order if ``inner.first_order``).

  Args and returns as ``maml.maml_meta_grad``; ``theta`` is the whole model's
  parameters and so are the gradients.
  """
  del key
  _check_inner(inner)
  body, name, head = split(theta)

  def outer_loss(body, head):
    fs, fq = features(learner, body, episode)
    support_loss, query_loss = _head_losses(learner, episode, fs, fq)
    adapted, losses_K = inner_lib.adapt(head, support_loss, cfg=inner)
    loss, metrics = query_loss(adapted)
    return loss, (adapted, losses_K, metrics, fs)

  (grad_body, grad_head), (adapted, losses_K, metrics, fs) = jax.grad(
      outer_loss, argnums=(0, 1), has_aux=True)(body, head)
  grads = dict(grad_body, **{name: grad_head})

  def support_post(adapted):
    _, m = learner.score(apply_head(adapted, fs), episode.support_y)
    return {f"support_{k}_post": v for k, v in m.items()}

  aux = base.if_logging(log, support_post, jax.lax.stop_gradient(adapted))
  aux.update({f"query_{k}_post": jax.lax.stop_gradient(v) for k, v in metrics.items()})
  if losses_K.shape[0]:
    aux["support_loss_pre"] = jax.lax.stop_gradient(losses_K[0])
  return grads, aux


def anil_adapt_curve(theta: Params, episode: Episode, *, learner: Learner,
                     inner: InnerConfig, eval_steps: Sequence[int],
                     inner_state: Any = None) -> dict:
  """Head-only test-time adaptation over fixed features (``base.adapt_curve``'s
  metrics: the query's, and ``support_loss``, after each step in ``eval_steps``)."""
  if inner_state is not None:
    raise ValueError("anil starts every task from a fresh inner optimiser")
  _check_inner(inner)
  body, _, head = split(theta)
  fs, fq = features(learner, body, episode)
  support_loss, query_loss = _head_losses(learner, episode, fs, fq)
  score = lambda h: dict(query_loss(h)[1], support_loss=support_loss(h)[0])
  _, curve = inner_lib.adapt_curve(head, support_loss, score, cfg=inner,
                                   eval_steps=eval_steps)
  return curve


def anil_adapted_query_loss(theta: Params, episode: Episode, *, learner: Learner,
                            inner: InnerConfig) -> jax.Array:
  """The query loss after ``inner.steps`` head-only steps: the body's features once,
  then per step the head's FLOPs alone (``flops.inner_step_flops``)."""
  _check_inner(inner)
  body, _, head = split(theta)
  fs, fq = features(learner, body, episode)
  support_loss, query_loss = _head_losses(learner, episode, fs, fq)
  adapted, _ = inner_lib.adapt(head, support_loss, cfg=inner)
  return query_loss(adapted)[0]


def check_body_head(config, name: str) -> None:
  """``ConfigError`` unless the config's model has a body/head split."""
  model = models.get(config.model.name).make(config)
  if not hasattr(model, "features_only"):
    raise ConfigError(f"config.model.name: {config.model.name!r} has no body/head "
                      f"split (features_only), which {name} needs")


def _check(config) -> None:
  check_body_head(config, "anil")
  if _frozen(config):
    raise ConfigError(f"config.inner.frozen: {config.inner.frozen!r}: anil adapts the "
                      "head alone and meta-learns the body in the outer loop; leave it ''")


def _frozen(config) -> tuple[str, ...]:
  # config.frozen_modules, which this module cannot import (config imports algorithms).
  return tuple(n.strip() for n in config.inner.frozen.split(",") if n.strip())


def _configure(config) -> base.Algorithm:
  return dataclasses.replace(ANIL, first_order=bool(config.anil.first_order))


ANIL = base.Algorithm(
    name="anil", meta_grad=anil_meta_grad, adapt_curve=anil_adapt_curve,
    adapted_query_loss=anil_adapted_query_loss, check=_check,
    # first_order: stop the gradients through the head's inner gradients (the body
    # then learns from the query features alone).
    options=dict(first_order=False), configure=_configure)
