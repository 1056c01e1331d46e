"""Inner-loop adaptation: K optimiser steps on a support loss, written with ``lax.scan``.

``K`` is static and the step is traced once, so compile time does not grow with K.
Second-order mode keeps the inner gradients differentiable (MAML); first-order mode
stops gradients through them. ``remat`` wraps each step in ``jax.checkpoint`` so that
differentiating through K steps stores only the per-step carry (parameters and
optimiser state) and recomputes each step's activations in the backward pass.
"""

import dataclasses
import functools
from typing import Any, Callable, Sequence

import jax
from jax import lax
import jax.numpy as jnp
import numpy as np
import optax

Params = Any
LossFn = Callable[[Params], tuple[jax.Array, Any]]  # params -> (loss, aux)
INNER_OPTIMIZERS = ("sgd", "adam")


@dataclasses.dataclass(frozen=True)
class InnerConfig:
  """How the inner loop adapts.

  Attributes:
    steps: number of inner gradient steps K.
    lr: inner learning rate α.
    optimizer: 'sgd' (MAML) or 'adam' (Reptile's inner optimiser).
    first_order: stop gradients through the inner gradients.
    remat: rematerialise each inner step in the backward pass.
    adam_b1: Adam's β1 for the inner loop (Reptile used 0).
    adam_b2: Adam's β2 for the inner loop.
    adam_eps_root: added under the square root of Adam's second moment, as optax's
      ``eps_root``. Needed to differentiate through Adam (second-order inner Adam):
      at a zero second moment (a parameter whose gradient is exactly zero) sqrt has
      an infinite derivative, and inf * 0 makes the meta-gradient NaN. 0 keeps
      plain Adam.
    unroll: unroll the scan (for FLOP counting: XLA's cost analysis counts a loop
      body once whatever its trip count).
    batch_size: support examples per inner step, 0 for the whole support set.
      Minibatches are drawn by the algorithm (Reptile's, see
      ``algorithms.reptile.minibatch_indices``) and passed to ``adapt`` as ``batches``.
    carry_state: the inner optimiser's state is not reset per task: it is carried
      from task to task through meta-training and handed to evaluation, where every
      test episode starts from it. This is what the Reptile authors' code does with
      its inner Adam (its second-moment estimate is part of what is meta-learned);
      the state lives in ``outer.MetaState.inner_state``.
    frozen: module-name prefixes (e.g. ``"BatchStatNorm"``) whose parameters the inner
      loop leaves as they are: they are still used, and still meta-learned by the
      outer loop through the adapted loss. MAML's reference code adapts only its
      ``weights`` dict, so its batch-norm offsets never move in the inner loop.
  """

  steps: int = 1
  lr: float = 0.01
  optimizer: str = "sgd"
  first_order: bool = False
  remat: bool = False
  adam_b1: float = 0.0
  adam_b2: float = 0.999
  adam_eps_root: float = 0.0
  unroll: bool = False
  batch_size: int = 0
  carry_state: bool = False
  frozen: tuple[str, ...] = ()

  def __post_init__(self):
    if self.optimizer not in INNER_OPTIMIZERS:
      raise ValueError(f"inner optimizer={self.optimizer!r}: expected one of "
                       f"{INNER_OPTIMIZERS}")
    if self.steps < 0:
      raise ValueError(f"inner steps={self.steps}: must be >= 0")
    if self.batch_size < 0:
      raise ValueError(f"inner batch_size={self.batch_size}: must be >= 0")
    if not self.adam_eps_root >= 0:  # Also rejects NaN.
      raise ValueError(f"inner adam_eps_root={self.adam_eps_root}: must be >= 0")

  def make_optimizer(self) -> optax.GradientTransformation:
    if self.optimizer == "sgd":
      opt = optax.sgd(self.lr)
    else:
      opt = optax.adam(self.lr, b1=self.adam_b1, b2=self.adam_b2,
                       eps_root=self.adam_eps_root)
    if not self.frozen:
      return opt
    return optax.multi_transform({"adapt": opt, "frozen": optax.set_to_zero()},
                                 functools.partial(frozen_labels, prefixes=self.frozen))


def frozen_labels(params: Params, prefixes: Sequence[str]) -> Params:
  """``"frozen"`` for each leaf under a module whose name starts with one of
  ``prefixes`` (flax names modules ``<Class>_<i>``), ``"adapt"`` for the others.

  Raises:
    ValueError: no parameter matches some prefix (a misspelt module name would
      otherwise silently adapt everything).
  """
  used = set()

  def label(path, _):
    names = [getattr(k, "key", getattr(k, "name", "")) for k in path]
    hits = {p for p in prefixes for n in names if isinstance(n, str) and n.startswith(p)}
    used.update(hits)
    return "frozen" if hits else "adapt"

  labels = jax.tree_util.tree_map_with_path(label, params)
  missing = sorted(set(prefixes) - used)
  if missing:
    raise ValueError(f"inner frozen={tuple(prefixes)}: no parameter under a module "
                     f"named {', '.join(repr(m) for m in missing)}")
  return labels


def _make_step(loss_fn: LossFn, cfg: InnerConfig, opt: optax.GradientTransformation):
  """One inner step on the carry ``(params, opt_state)``; emits the pre-step loss."""

  def step(carry, batch):
    params, opt_state = carry
    loss_at = loss_fn if batch is None else lambda p: loss_fn(p, batch)
    (loss, _), grads = jax.value_and_grad(loss_at, has_aux=True)(params)
    if cfg.first_order:
      grads = lax.stop_gradient(grads)
    updates, opt_state = opt.update(grads, opt_state, params)
    return (optax.apply_updates(params, updates), opt_state), loss

  if cfg.remat:
    step = jax.checkpoint(step, prevent_cse=False)
  return step


def adapt(theta: Params, loss_fn: Callable[..., tuple[jax.Array, Any]], *,
          cfg: InnerConfig, batches: Any = None) -> tuple[Params, jax.Array]:
  """Adapts ``theta`` by ``cfg.steps`` steps on ``loss_fn``, from a fresh optimiser.

  Args:
    theta: initial parameters (the meta-parameters).
    loss_fn: ``params -> (loss, aux)``, the support loss of one task; with
      ``batches``, ``(params, batch) -> (loss, aux)``.
    cfg: the inner-loop configuration.
    batches: optional pytree with a leading axis of ``cfg.steps``; step ``k`` is taken
      on ``loss_fn(params, batch_k)`` (minibatch inner steps).

  Returns:
    ``(adapted_params, support_losses_K)``, where ``support_losses_K[k]`` is the support
    loss before step ``k``.
  """
  params, _, losses_K = adapt_from(theta, cfg.make_optimizer().init(theta), loss_fn,
                                   cfg=cfg, batches=batches)
  return params, losses_K


def adapt_from(theta: Params, opt_state: Any, loss_fn: Callable[..., tuple[jax.Array, Any]],
               *, cfg: InnerConfig, batches: Any = None
               ) -> tuple[Params, Any, jax.Array]:
  """``adapt`` from a given inner-optimiser state; also returns the final state."""
  step = _make_step(loss_fn, cfg, cfg.make_optimizer())
  (params, opt_state), losses_K = lax.scan(step, (theta, opt_state), batches,
                                           length=cfg.steps, unroll=cfg.unroll)
  return params, opt_state, losses_K


def adapt_curve(theta: Params, loss_fn: LossFn, eval_fn: Callable[[Params], Any], *,
                cfg: InnerConfig, eval_steps: Sequence[int], opt_state: Any = None
                ) -> tuple[Params, Any]:
  """Adapts for ``max(eval_steps)`` steps, evaluating after each step in ``eval_steps``.

  One pass gives the whole metric-vs-steps curve at the cost of its longest point plus
  one ``eval_fn`` per requested step: evaluations at steps not requested are skipped by
  ``lax.cond`` on a static mask (a real branch even under ``vmap`` over tasks, since the
  predicate is not batched).

  Args:
    theta: initial parameters.
    loss_fn: ``params -> (loss, aux)`` to adapt on.
    eval_fn: ``params -> metrics pytree`` (e.g. query loss and accuracy).
    cfg: the inner-loop configuration; ``cfg.steps`` is ignored.
    eval_steps: increasing step counts at which to evaluate (0 = before adapting).
    opt_state: the inner optimiser's starting state (``cfg.carry_state``); default
      a fresh one.

  Returns:
    ``(adapted_params, metrics)`` with a leading axis of ``len(eval_steps)`` on every
    leaf of the metrics.
  """
  if cfg.batch_size:
    raise ValueError(f"adapt_curve adapts on the whole support set; got inner "
                     f"batch_size={cfg.batch_size}")
  eval_steps = tuple(int(k) for k in eval_steps)
  if not eval_steps or list(eval_steps) != sorted(set(eval_steps)) or eval_steps[0] < 0:
    raise ValueError(f"eval_steps={eval_steps}: need distinct increasing steps >= 0")
  total = eval_steps[-1]
  opt = cfg.make_optimizer()
  step = _make_step(loss_fn, cfg, opt)
  template = jax.eval_shape(eval_fn, theta)
  zeros = lambda _: jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), template)
  mask_K = np.zeros(total, bool)
  mask_K[[k for k in eval_steps if k < total]] = True

  def body(carry, evaluate):
    metrics = lax.cond(evaluate, eval_fn, zeros, carry[0])
    carry, _ = step(carry, None)
    return carry, metrics

  if opt_state is None:
    opt_state = opt.init(theta)
  (params, _), metrics_K = lax.scan(body, (theta, opt_state), jnp.asarray(mask_K),
                                    unroll=cfg.unroll)
  final = eval_fn(params)
  picked = np.flatnonzero(mask_K)
  metrics = jax.tree.map(lambda m, f: jnp.concatenate([m[picked], f[None]], axis=0),
                         metrics_K, final)
  return params, metrics
