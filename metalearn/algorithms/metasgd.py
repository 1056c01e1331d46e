"""Meta-SGD (Li, Zhou, Chen & Li 2017): MAML that also meta-learns a learning rate for
every parameter.

The meta-parameters are ``theta = {"params": θ, "lrs": α}``, with ``α`` of ``θ``'s tree
structure and shapes. An inner step is ``θ' = θ − α ⊙ ∇L_support(θ)`` (K steps of it;
the paper takes one), and the meta-gradient is the gradient of the query loss after
adaptation with respect to ``θ`` and ``α`` together, second order (through the inner
gradients). ``α`` starts at ``inner.lr`` everywhere, or, with
``config.metasgd.init_lr_low/high`` set, uniform in that range per entry (the paper
draws its initial rates from [0.005, 0.1]), from a key of the run's seed.

Test time. Evaluation and FLOP counting adapt with the learned ``α``. ``eval.inner_lr``
is a multiplier on them: the test-time rates are ``α · eval.inner_lr / inner.lr``, so the
default (``eval.inner_lr = 0``, meaning ``inner.lr``) uses the learned rates as they are,
and ``run/tuning.py`` (which scores each candidate as ``eval.inner_lr``) picks per k a
common scale of the learned rates, candidate / ``inner.lr``. The rows' ``eval_inner_lr``
is that candidate (the rate of an entry whose learned rate is ``inner.lr``), not a rate
every parameter used. The record as registered, before ``configure``, uses the learned
rates as they are whatever ``eval.inner_lr`` says.

Refused (``check``): an inner optimiser other than SGD, minibatch inner steps, a carried
inner state and ``inner.frozen`` (every parameter has its own learned rate; a rate of 0
is how Meta-SGD freezes one).
"""

import dataclasses
import functools
from typing import Any, Callable, Optional, Sequence

import jax
from jax import lax
import jax.numpy as jnp
import numpy as np

from metalearn.algorithms import base
from metalearn.errors import ConfigError
from metalearn.inner import InnerConfig
from metalearn.learner import Learner
from metalearn.tasks.episode import Episode

Params = Any
PARAMS, LRS = "params", "lrs"
OPTIONS = dict(init_lr_low=0.0, init_lr_high=0.0)  # Both 0: α starts at inner.lr.
# Folded into the run's seed for the initial rates (the model's key is another).
_LR_INIT_TAG = 0x5D


def init_theta(params: Params, inner: InnerConfig, *, low: float = 0.0, high: float = 0.0,
               seed: int = 0) -> dict:
  """``{"params": params, "lrs": α}``: ``α`` is ``inner.lr`` everywhere, or with ``high >
  0`` uniform in ``[low, high)`` per entry, drawn from ``seed``."""
  leaves, treedef = jax.tree.flatten(params)
  if high > 0:
    keys = jax.random.split(jax.random.fold_in(jax.random.key(seed), _LR_INIT_TAG),
                            len(leaves))
    rates = [jax.random.uniform(k, p.shape, p.dtype, low, high)
             for k, p in zip(keys, leaves)]
  else:
    rates = [jnp.full(p.shape, inner.lr, p.dtype) for p in leaves]
  return {PARAMS: params, LRS: treedef.unflatten(rates)}


def model_params(theta: dict) -> Params:
  return theta[PARAMS]


def rates(theta: dict, inner: InnerConfig, train_lr: Optional[float]) -> Params:
  """The learned rates, times ``inner.lr / train_lr`` when that is not 1 (test time)."""
  if train_lr is None or inner.lr == train_lr:
    return theta[LRS]
  scale = inner.lr / train_lr
  return jax.tree.map(lambda a: a * scale, theta[LRS])


def sgd_step(params: Params, rates_: Params, loss_fn: Callable, *,
             first_order: bool = False) -> tuple[Params, jax.Array]:
  """``params − rates ⊙ ∇loss_fn(params)`` and the loss before the step."""
  (loss, _), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
  if first_order:
    grads = lax.stop_gradient(grads)
  return jax.tree.map(lambda p, a, g: p - a * g, params, rates_, grads), loss


def adapt(theta: dict, loss_fn: Callable, *, inner: InnerConfig,
          train_lr: Optional[float] = None) -> tuple[Params, jax.Array]:
  """``inner.steps`` Meta-SGD steps from ``theta``'s parameters on ``loss_fn`` (``params
  -> (loss, aux)``); returns the adapted parameters and the per-step support losses."""
  rates_ = rates(theta, inner, train_lr)

  def step(p, _):
    return sgd_step(p, rates_, loss_fn, first_order=inner.first_order)

  if inner.remat:
    step = jax.checkpoint(step, prevent_cse=False)
  return lax.scan(step, theta[PARAMS], None, length=inner.steps, unroll=inner.unroll)


def scan_curve(step_fn: Callable[[Any, jax.Array], Any],
               eval_fn: Callable[[Any, Any], Any], carry: Any,
               eval_steps: Sequence[int], *, unroll: bool = False) -> tuple[Any, Any]:
  """``max(eval_steps)`` steps of ``carry = step_fn(carry, k)`` (``k`` the step index,
  traced), ``eval_fn(carry, k)`` scored after ``k`` steps for each ``k`` in
  ``eval_steps``; as ``inner.adapt_curve``, with the step index given to both.

  Returns:
    ``(carry, metrics)``, every metric leaf with a leading axis of ``len(eval_steps)``.
  """
  eval_steps = tuple(int(k) for k in eval_steps)
  if not eval_steps or list(eval_steps) != sorted(set(eval_steps)) or eval_steps[0] < 0:
    raise ValueError(f"eval_steps={eval_steps}: need distinct increasing steps >= 0")
  total = eval_steps[-1]
  template = jax.eval_shape(eval_fn, carry, 0)
  zeros = lambda _: jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), template)
  mask_K = np.zeros(total, bool)
  mask_K[[k for k in eval_steps if k < total]] = True

  def body(carry, xs):
    k, evaluate = xs
    metrics = lax.cond(evaluate, lambda c: eval_fn(c, k), zeros, carry)
    return step_fn(carry, k), metrics

  carry, metrics_K = lax.scan(body, carry, (jnp.arange(total), jnp.asarray(mask_K)),
                              unroll=unroll)
  final = eval_fn(carry, total)
  picked = np.flatnonzero(mask_K)
  return carry, jax.tree.map(lambda m, f: jnp.concatenate([m[picked], f[None]], axis=0),
                             metrics_K, final)


def metasgd_meta_grad(theta: dict, episode: Episode, key: jax.Array, *, learner: Learner,
                      inner: InnerConfig, log: Any = True) -> tuple[dict, dict]:
  """The Meta-SGD meta-gradient of one task, with respect to ``θ`` and ``α``.

  Args and returns as ``maml.maml_meta_grad``; ``inner.lr`` is not used (the rates are
  ``theta["lrs"]``). ``inner_lr_mean`` is the mean learned rate.
  """
  del key
  base.require_plain_inner(inner, "metasgd")

  def outer_loss(theta):
    adapted, losses_K = adapt(theta, lambda p: learner.support_loss(p, episode),
                              inner=inner)
    loss, metrics = learner.query_loss(adapted, episode)
    return loss, (adapted, losses_K, metrics)

  grads, (adapted, losses_K, metrics) = jax.grad(outer_loss, has_aux=True)(theta)
  aux = base.post_adaptation_metrics(learner, adapted, episode, losses_K, metrics, log)
  aux["inner_lr_mean"] = mean_rate(theta[LRS])
  return grads, aux


def mean_rate(rates_: Params) -> jax.Array:
  """The mean over every entry of a tree of rates (a logged scalar)."""
  leaves = jax.tree.leaves(rates_)
  total = sum(jnp.sum(a) for a in leaves)
  return lax.stop_gradient(total / sum(a.size for a in leaves))


def adapt_curve(theta: dict, episode: Episode, *, learner: Learner, inner: InnerConfig,
                eval_steps: Sequence[int], inner_state: Any = None,
                train_lr: Optional[float] = None) -> dict:
  """Test-time Meta-SGD steps, scored after each of ``eval_steps`` (``base.adapt_curve``'s
  metrics); the rates are the learned ones times ``inner.lr / train_lr``."""
  del inner_state  # Plain SGD has none.
  rates_ = rates(theta, inner, train_lr)
  support = lambda p: learner.support_loss(p, episode)

  def score(p, _):
    return dict(learner.query_loss(p, episode)[1], support_loss=support(p)[0])

  _, curve = scan_curve(lambda p, _: sgd_step(p, rates_, support)[0], score,
                        theta[PARAMS], eval_steps, unroll=inner.unroll)
  return curve


def adapted_query_loss(theta: dict, episode: Episode, *, learner: Learner,
                       inner: InnerConfig, train_lr: Optional[float] = None) -> jax.Array:
  """The query loss after ``inner.steps`` test-time steps (FLOP counting)."""
  adapted, _ = adapt(theta, lambda p: learner.support_loss(p, episode), inner=inner,
                     train_lr=train_lr)
  return learner.query_loss(adapted, episode)[0]


def _check(config) -> None:
  if config.inner.optimizer != "sgd":
    raise ConfigError(f"config.inner.optimizer: {config.inner.optimizer!r}; metasgd's "
                      "inner step is SGD with learned per-parameter rates ('sgd')")
  if config.inner.frozen.strip():
    raise ConfigError(f"config.inner.frozen: {config.inner.frozen!r}; metasgd learns a "
                      "rate for every parameter (leave it '')")
  low, high = config.metasgd.init_lr_low, config.metasgd.init_lr_high
  if not (low == high == 0 or 0 <= low < high):
    raise ConfigError(f"config.metasgd.init_lr_high: [{low}, {high}) is not a range of "
                      "initial rates; need 0 <= init_lr_low < init_lr_high (both 0: "
                      "every rate starts at inner.lr)")


def _configure(config) -> base.Algorithm:
  o = config.metasgd
  train_lr = float(config.inner.lr)
  return dataclasses.replace(
      METASGD,
      init_theta=functools.partial(init_theta, low=float(o.init_lr_low),
                                   high=float(o.init_lr_high), seed=int(config.seed)),
      adapt_curve=functools.partial(adapt_curve, train_lr=train_lr),
      adapted_query_loss=functools.partial(adapted_query_loss, train_lr=train_lr))


METASGD = base.Algorithm(
    name="metasgd", meta_grad=metasgd_meta_grad, min_inner_steps=1,
    adapt_curve=adapt_curve, adapted_query_loss=adapted_query_loss, check=_check,
    init_theta=init_theta, model_params=model_params, options=dict(OPTIONS),
    configure=_configure)
