"""MAML++ (Antoniou, Edwards & Storkey 2019, "How to train your MAML").

MAML with five changes, each a switch (``config.mamlpp.<option>``; all off, this is
second-order MAML to the bit):

1. ``msl``, the multi-step loss: the meta-objective is ``Σ_k w_k(s) L_query(θ_k)`` over
   the parameters after every inner step k = 1..K, the weights annealed over the first
   ``msl_steps`` meta-steps s as in the authors' code (``msl_weights``): uniform 1/K at
   s = 0; every non-final weight falls linearly by s/(K·msl_steps) to a floor of 0.03/K
   while the final one takes up the rest; from ``msl_steps`` on, the final step's loss
   alone (the other query losses are then not computed: ``lax.cond``).
2. ``lslr``, per-layer per-step learned inner rates: one rate per parameter tensor and
   inner step, ``theta["lrs"]`` (leaves ``[K]``), starting at ``inner.lr``. Off: every
   step takes ``inner.lr``.
3. ``per_step_bn``: batch norm's scale and offset (``BatchStatNorm`` modules) are
   meta-learned per inner step, ``theta["bn"]`` (leaves ``[K, C]``, each step starting
   at the model's initial values), and the inner loop leaves them alone (the authors'
   ``enable_inner_loop_optimizable_bn_params=False``). Our batch norm has no running
   averages (``models.layers.BatchStatNorm``), so per-step statistics are the batch's
   own at every step anyway. Off: one set, adapted by the inner loop as MAML does.
4. ``first_order_steps``, derivative-order annealing: meta-steps before this one are
   first order (inner gradients treated as constants; the rates and per-step batch
   norm still get their gradients through the update), second order after
   (``lax.cond`` on the meta-step; 0: second order throughout).
5. The cosine outer schedule is ``config.outer.schedule='cosine'`` (``builder``).

Which step's parameters a forward pass uses (index into ``lrs`` and ``bn``), as in the
authors' code: the support pass of inner step k (0-based, after k updates) uses set k,
and the query after k ≥ 1 updates uses set k − 1, the set of the last step taken (set
0 at k = 0, before adapting). Beyond the trained K (test time, ``eval.steps > K``) every
further step reuses the last trained set, K − 1, for its rates and its batch norm. The
number of trained steps K is read from the shapes in ``theta``.

Test time. As for Meta-SGD, ``eval.inner_lr`` scales the learned rates by
``eval.inner_lr / inner.lr`` (the default, 0, uses them as they are; ``run/tuning.py``
picks that scale per k); without ``lslr`` the test-time rate is ``eval.inner_lr`` itself.

FLOPs. A meta-step's cost depends on the step: ``flops.meta_step_flops`` counts the
program of meta-step 0 (``Algorithm.bind``'s default ``step``, a Python int, for which
the derivative order is chosen while tracing): with ``msl`` the per-step query losses are
in it (the later steps that skip them cost less), and with ``first_order_steps > 0`` it is
a first-order step (the later, second-order ones cost more). ``meta_training_flops``,
that count times ``num_steps``, is then only an estimate.
"""

import dataclasses
import functools
from typing import Any, Optional, Sequence

from flax import traverse_util
import jax
from jax import lax
import jax.numpy as jnp
import numpy as np

from metalearn.algorithms import base
from metalearn.algorithms import metasgd
from metalearn.errors import ConfigError
from metalearn.inner import InnerConfig
from metalearn.learner import Learner
from metalearn.tasks.episode import Episode

Params = Any
PARAMS, LRS, BN = "params", "lrs", "bn"
BN_MODULE = "BatchStatNorm"
MSL_FLOOR = 0.03  # The non-final weights' floor, times 1/K (the authors' code).
OPTIONS = dict(msl=True, msl_steps=10000, lslr=True, per_step_bn=True,
               first_order_steps=0)


@dataclasses.dataclass(frozen=True)
class Options:
  """``config.mamlpp`` (see the module docstring); ``OPTIONS`` has the defaults."""

  msl: bool = True
  msl_steps: int = 10000
  lslr: bool = True
  per_step_bn: bool = True
  first_order_steps: int = 0


def msl_weights(step: Any, steps: int, msl_steps: int, dtype=jnp.float32) -> jax.Array:
  """The multi-step loss's weights ``[K]`` of the query losses after steps 1..K at
  meta-step ``step`` (traced or not): the final step's alone from ``msl_steps`` on."""
  k = steps
  frac = jnp.asarray(step, dtype) / max(msl_steps, 1)
  floor = MSL_FLOOR / k
  early = jnp.maximum(1.0 / k - frac / k, floor) * jnp.ones(k - 1, dtype)
  last = jnp.minimum(1.0 / k + frac * (k - 1) / k, 1.0 - (k - 1) * floor)
  annealed = jnp.concatenate([early, jnp.reshape(last, (1,)).astype(dtype)])
  final_only = jnp.zeros(k, dtype).at[-1].set(1)
  return jnp.where(jnp.asarray(step) < msl_steps, annealed, final_only)


def _is_bn(path: tuple) -> bool:
  return any(isinstance(n, str) and n.startswith(BN_MODULE) for n in path)


def split_bn(params: Params) -> tuple[Params, Params]:
  """``(the other parameters, batch norm's)``: two nested dicts that ``merge_bn`` joins."""
  flat = traverse_util.flatten_dict(params)
  rest = {p: v for p, v in flat.items() if not _is_bn(p)}
  bn = {p: v for p, v in flat.items() if _is_bn(p)}
  return traverse_util.unflatten_dict(rest), traverse_util.unflatten_dict(bn)


def merge_bn(rest: Params, bn: Params) -> Params:
  return traverse_util.unflatten_dict({**traverse_util.flatten_dict(rest),
                                       **traverse_util.flatten_dict(bn)})


def init_theta(params: Params, inner: InnerConfig, *, opts: Options = Options()) -> dict:
  """``{"params", "lrs"?, "bn"?}`` for ``max(inner.steps, 1)`` trained steps."""
  k = max(inner.steps, 1)
  theta = {PARAMS: params}
  if opts.per_step_bn:
    rest, bn = split_bn(params)
    if jax.tree.leaves(bn):
      theta = {PARAMS: rest,
               BN: jax.tree.map(lambda b: jnp.tile(b[None], (k,) + (1,) * b.ndim), bn)}
  if opts.lslr:
    theta[LRS] = jax.tree.map(lambda p: jnp.full((k,), inner.lr, p.dtype), theta[PARAMS])
  return theta


def trained_steps(theta: dict) -> int:
  """K, the per-step sets in ``theta`` (1 when it has none: nothing is indexed)."""
  per_step = jax.tree.leaves({n: theta[n] for n in (LRS, BN) if n in theta})
  return per_step[0].shape[0] if per_step else 1


def _set(theta: dict, i: Any) -> Any:
  """Per-step set ``i``, clipped to the trained ones (beyond K: the last)."""
  return jnp.clip(i, 0, trained_steps(theta) - 1)


def full_params(theta: dict, params: Params, i: Any) -> Params:
  """The model's parameters: ``params`` with batch-norm set ``i`` when it is per step."""
  if BN not in theta:
    return params
  return merge_bn(params, jax.tree.map(lambda b: b[_set(theta, i)], theta[BN]))


def model_params(theta: dict) -> Params:
  return full_params(theta, theta[PARAMS], 0)


def _rates(theta: dict, params: Params, k: Any, lr: float, scale: float) -> Params:
  if LRS not in theta:
    return jax.tree.map(lambda _: lr, params)
  i = _set(theta, k)
  if scale == 1.0:
    return jax.tree.map(lambda a: a[i], theta[LRS])
  return jax.tree.map(lambda a: a[i] * scale, theta[LRS])


def _scale(inner: InnerConfig, train_lr: Optional[float]) -> float:
  return 1.0 if train_lr is None else inner.lr / train_lr


def _step(theta, params, k, support, *, lr, scale, first_order):
  """Inner step ``k``: its rates and batch-norm set; returns (params, support loss)."""
  return metasgd.sgd_step(params, _rates(theta, params, k, lr, scale),
                          lambda p: support(full_params(theta, p, k)),
                          first_order=first_order)


def _outer_loss(theta, episode, learner, inner, opts, step, first_order):
  """The weighted query losses after adapting (the final one's alone without ``msl``)."""
  steps = inner.steps
  support = lambda p: learner.support_loss(p, episode)
  msl_on = step < opts.msl_steps

  def body(params, k):
    params, loss = _step(theta, params, k, support, lr=inner.lr, scale=1.0,
                         first_order=first_order)
    if not opts.msl:
      return params, loss
    query = lambda p: learner.query_loss(full_params(theta, p, k), episode)[0]
    skip = lambda p: jnp.zeros((), loss.dtype)
    return params, (loss, lax.cond(msl_on & (k < steps - 1), query, skip, params))

  if inner.remat:
    body = jax.checkpoint(body, prevent_cse=False)
  adapted, out = lax.scan(body, theta[PARAMS], jnp.arange(steps), unroll=inner.unroll)
  final, metrics = learner.query_loss(full_params(theta, adapted, steps - 1), episode)
  if not opts.msl:
    return final, (adapted, out, metrics)
  losses_K, queries_K = out
  weights_K = msl_weights(step, steps, opts.msl_steps, final.dtype)
  loss = jnp.sum(weights_K[:-1] * queries_K[:-1]) + weights_K[-1] * final
  return loss, (adapted, losses_K, metrics)


def mamlpp_meta_grad(theta: dict, episode: Episode, key: jax.Array, *, learner: Learner,
                     inner: InnerConfig, log: Any = True, step: Any = 0,
                     opts: Options = Options()) -> tuple[dict, dict]:
  """The MAML++ meta-gradient of one task at meta-step ``step``.

  Args:
    theta: meta-parameters (``init_theta``).
    episode: one unbatched episode.
    key: unused.
    learner: model, loss and batch-norm mode.
    inner: the training inner loop (``inner.lr`` is the rate without ``lslr``).
    log: compute the metrics that cost extra forward passes.
    step: the meta-step index, for the annealing schedules (traced, or a Python int:
      then the derivative order is chosen while tracing).
    opts: the switches.

  Returns:
    ``(grads, aux)``: the gradient of the (weighted) post-adaptation query loss with
    respect to ``theta``, and scalar metrics (``query_*_post`` are the final step's).
  """
  del key
  base.require_plain_inner(inner, "mamlpp")
  concrete_step = int(step) if isinstance(step, (int, np.integer)) else None
  step = jnp.asarray(step, jnp.int32)

  def grads_of(first_order):
    loss = functools.partial(_outer_loss, episode=episode, learner=learner, inner=inner,
                             opts=opts, step=step, first_order=first_order)
    return lambda theta: jax.grad(loss, has_aux=True)(theta)

  if opts.first_order_steps > 0 and isinstance(concrete_step, int):
    first_order = concrete_step < opts.first_order_steps  # Chosen while tracing.
    grads, (adapted, losses_K, metrics) = grads_of(first_order)(theta)
  elif opts.first_order_steps > 0:
    first_order = step < opts.first_order_steps
    grads, (adapted, losses_K, metrics) = lax.cond(
        first_order, grads_of(True), grads_of(False), theta)
  else:
    first_order = inner.first_order
    grads, (adapted, losses_K, metrics) = grads_of(inner.first_order)(theta)
  adapted = full_params(theta, adapted, inner.steps - 1)
  aux = base.post_adaptation_metrics(learner, adapted, episode, losses_K, metrics, log)
  aux["second_order"] = 1.0 - jnp.asarray(first_order, jnp.float32)
  if opts.msl:
    aux["msl_weight_final"] = msl_weights(step, inner.steps, opts.msl_steps)[-1]
  if LRS in theta:
    aux["inner_lr_mean"] = metasgd.mean_rate(theta[LRS])
  return grads, aux


def adapt_curve(theta: dict, episode: Episode, *, learner: Learner, inner: InnerConfig,
                eval_steps: Sequence[int], inner_state: Any = None,
                train_lr: Optional[float] = None) -> dict:
  """Test-time steps (beyond K: the last trained set), scored after each of
  ``eval_steps`` with the batch-norm set of the last step taken (``base.adapt_curve``'s
  metrics)."""
  del inner_state  # Plain SGD has none.
  scale = _scale(inner, train_lr)
  support = lambda p: learner.support_loss(p, episode)

  def step(params, k):
    return _step(theta, params, k, support, lr=inner.lr, scale=scale,
                 first_order=False)[0]

  def score(params, k):
    full = full_params(theta, params, k - 1)
    return dict(learner.query_loss(full, episode)[1], support_loss=support(full)[0])

  _, curve = metasgd.scan_curve(step, score, theta[PARAMS], eval_steps,
                                unroll=inner.unroll)
  return curve


def adapted_query_loss(theta: dict, episode: Episode, *, learner: Learner,
                       inner: InnerConfig, train_lr: Optional[float] = None) -> jax.Array:
  """The query loss after ``inner.steps`` test-time steps (FLOP counting)."""
  scale = _scale(inner, train_lr)
  support = lambda p: learner.support_loss(p, episode)
  body = lambda p, k: _step(theta, p, k, support, lr=inner.lr, scale=scale,
                            first_order=False)
  adapted, _ = lax.scan(body, theta[PARAMS], jnp.arange(inner.steps), unroll=inner.unroll)
  return learner.query_loss(full_params(theta, adapted, inner.steps - 1), episode)[0]


def options_of(config) -> Options:
  return Options(**{k: config.mamlpp[k] for k in OPTIONS})


def _check(config) -> None:
  if config.inner.optimizer != "sgd":
    raise ConfigError(f"config.inner.optimizer: {config.inner.optimizer!r}; mamlpp's "
                      "inner step is SGD with per-layer per-step rates ('sgd')")
  if config.inner.frozen.strip():
    raise ConfigError(f"config.inner.frozen: {config.inner.frozen!r}; not supported by "
                      "mamlpp (mamlpp.per_step_bn keeps batch norm out of the inner loop)")
  o = config.mamlpp
  for key in ("msl", "lslr", "per_step_bn"):
    if not isinstance(o[key], bool):
      raise ConfigError(f"config.mamlpp.{key}: {o[key]!r} is not true or false")
  for key in ("msl_steps", "first_order_steps"):
    if isinstance(o[key], bool) or not isinstance(o[key], int) or o[key] < 0:
      raise ConfigError(f"config.mamlpp.{key}: {o[key]!r} must be an integer >= 0")


def make(opts: Options = Options(), train_lr: Optional[float] = None) -> base.Algorithm:
  """The MAML++ record with these switches (``train_lr``: the training ``inner.lr``,
  which test-time rates are scaled against)."""
  at_test = dict(train_lr=train_lr)
  return base.Algorithm(
      name="mamlpp", meta_grad=functools.partial(mamlpp_meta_grad, opts=opts),
      min_inner_steps=1, adapt_curve=functools.partial(adapt_curve, **at_test),
      adapted_query_loss=functools.partial(adapted_query_loss, **at_test), check=_check,
      init_theta=functools.partial(init_theta, opts=opts), model_params=model_params,
      uses_step=True, options=dict(OPTIONS),
      configure=lambda c: make(options_of(c), float(c.inner.lr)))


MAMLPP = make()
