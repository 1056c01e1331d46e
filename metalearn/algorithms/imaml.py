"""iMAML: meta-learning with implicit gradients (Rajeswaran, Finn, Kakade & Levine 2019).

The inner problem of a task is proximal: ``φ* = argmin_φ L_s(φ) + (λ/2)‖φ − θ‖²``, with
``L_s`` the support loss. The inner loop runs K steps of the inner optimiser
(``inner.optimizer``: gradient descent, as the paper's "iMAML, GD") on that objective
from ``θ``, with ``θ`` under ``stop_gradient``: nothing differentiates through the loop,
a ``lax.scan`` with no reverse pass, so the meta-gradient's memory does not grow with K.

At a stationary point, ``∇L_s(φ*) + λ(φ* − θ) = 0``; differentiating it gives
``dφ*/dθ = (I + H/λ)⁻¹`` with ``H = ∇²L_s(φ*)``, a symmetric matrix, so the
meta-gradient of the query loss ``L_q`` is the implicit one

    g = (I + H/λ)⁻¹ ∇L_q(φ*),

which is solved by ``cg_steps`` iterations of conjugate gradient from ``g = 0``, each
iteration one Hessian-vector product of the support loss, forward-over-reverse
(``jax.linearize`` of ``jax.grad``: the forward pass of the gradient is linearised
once at ``φ``, then every product is a JVP through it). The formula holds at the exact
minimiser; with K finite steps ``φ_K`` is an approximate one, and the metric
``inner_stationarity`` (the norm of the proximal objective's gradient at ``φ_K``) says
how far from stationary it is. ``cg_residual`` is the relative residual
``‖(I + H/λ)g − ∇L_q‖ / ‖∇L_q‖`` of the returned ``g``, recomputed with one more
Hessian-vector product (not CG's recursive estimate); like the other metrics that cost
extra passes it is computed only on steps that log (``base.if_logging``). Away from a
minimum ``I + H/λ`` can be indefinite (H with eigenvalues below −λ) and CG's 5 steps
may then leave a residual above 1: the 5-way Omniglot smoke run logs 7.1 at step 5 and
0.5–1.3 by step 20. The paper's λ and CG steps are kept as they are; no damping.

Batch norm: the models normalise with batch statistics (no running statistics), so the
support loss is a function of the parameters and the support set alone, and ``H`` is
the Hessian of that function as it is, the statistics' dependence on the parameters
included (the same function the inner loop minimises).

Test-time adaptation (evaluation's ``adapt_curve``, FLOP counting's
``adapted_query_loss``) runs the same proximal inner loop when the option
``test_proximal`` is set (the default): each test-time step then costs the support
loss's gradient plus a few elementwise operations per parameter for the proximal
term, which the FLOP counts include. Unset, test time is plain gradient descent on the
support loss from ``θ`` (what the authors' ``measure_accuracy.py`` runs with
``--lam 0``).

Options (``config.imaml.<option>``): ``lam`` (λ; the paper uses 2.0 on Omniglot),
``cg_steps`` (the paper: 5), ``test_proximal``. Not supported: ``inner.frozen``
(frozen parameters would stay at ``θ`` and add a direct path the formula above leaves
out), minibatch inner steps and a carried inner state.
"""

import dataclasses
import functools
from typing import Any, Callable, Sequence

import jax
from jax import lax
import jax.numpy as jnp

from metalearn import inner as inner_lib
from metalearn.algorithms import base
from metalearn.errors import ConfigError
from metalearn.inner import InnerConfig
from metalearn.learner import Learner
from metalearn.tasks.episode import Episode

Params = Any

# The paper's Omniglot values (Table 2's caption: "Both versions of iMAML use λ = 2.0
# for regularization, and 5 CG steps to compute the task meta-gradient").
DEFAULT_LAM = 2.0
DEFAULT_CG_STEPS = 5


def _vdot(a: Params, b: Params) -> jax.Array:
  return sum(jnp.vdot(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def _axpy(alpha: jax.Array, x: Params, y: Params) -> Params:
  """``alpha · x + y``."""
  return jax.tree.map(lambda a, b: alpha * a + b, x, y)


def proximal(loss_fn: Callable[..., tuple[jax.Array, Any]], theta: Params, lam: float
             ) -> Callable[..., tuple[jax.Array, Any]]:
  """``p -> loss_fn(p) + (λ/2)‖p − θ‖²`` (the aux of ``loss_fn`` passed through)."""
  def loss(params, *batch):
    value, aux = loss_fn(params, *batch)
    sq = sum(jnp.sum(jnp.square(p - t)) for p, t in
             zip(jax.tree.leaves(params), jax.tree.leaves(theta)))
    return value + 0.5 * lam * sq, aux
  return loss


def conjugate_gradient(matvec: Callable[[Params], Params], b: Params, steps: int, *,
                       unroll: bool = False) -> Params:
  """``steps`` iterations of conjugate gradient on ``A x = b`` from ``x = 0``.

  Args:
    matvec: ``v -> A v`` for a symmetric positive definite ``A``, on pytrees.
    b: the right-hand side.
    steps: iterations (a fixed count, no tolerance: the cost is known in advance).
    unroll: unroll the iterations (for FLOP counting, as ``InnerConfig.unroll``).

  Returns:
    The iterate ``x``; after as many iterations as ``b`` has entries it is the exact
    solution in exact arithmetic.
  """
  zeros = jax.tree.map(jnp.zeros_like, b)
  rr = _vdot(b, b)

  def body(carry, _):
    x, r, p, rr = carry
    ap = matvec(p)
    pap = _vdot(p, ap)
    # An exactly solved system (r = 0, hence p = 0) stays solved instead of 0 / 0. A
    # negative pᵀAp (I + H/λ is indefinite where H has eigenvalues below −λ, which a
    # non-convex loss can have away from a minimum) is used as it is: CG then still
    # solves the linear system, or fails visibly in ``cg_residual``.
    alpha = jnp.where(pap != 0, rr / jnp.where(pap != 0, pap, 1), 0)
    x = _axpy(alpha, p, x)
    r = _axpy(-alpha, ap, r)
    rr_new = _vdot(r, r)
    beta = jnp.where(rr > 0, rr_new / jnp.where(rr > 0, rr, 1), 0)
    p = _axpy(beta, p, r)
    return (x, r, p, rr_new), None

  (x, _, _, _), _ = lax.scan(body, (zeros, b, b, rr), None, length=steps, unroll=unroll)
  return x


def imaml_meta_grad(theta, episode: Episode, key: jax.Array, *, learner: Learner,
                    inner: InnerConfig, log: Any = True, lam: float = DEFAULT_LAM,
                    cg_steps: int = DEFAULT_CG_STEPS):
  """The implicit meta-gradient of one task.

  Args:
    theta: meta-parameters.
    episode: one unbatched episode.
    key: unused (the contract allows stochastic algorithms).
    learner: model, loss and batch-norm mode.
    inner: the inner loop on the proximal objective (``steps``, ``lr``, optimiser).
    log: compute the metrics that cost extra passes (``cg_residual`` among them).
    lam: the proximal strength λ > 0.
    cg_steps: conjugate-gradient iterations (0 returns a zero gradient).

  Returns:
    ``(grads, aux)``: ``(I + H/λ)⁻¹ ∇L_q(φ_K)`` as CG leaves it, and scalar metrics:
    the common ones (``base.post_adaptation_metrics``) plus ``cg_residual`` and
    ``inner_stationarity``.
  """
  del key
  base.require_plain_inner(inner, "imaml")
  if inner.frozen:
    raise ValueError(f"imaml: inner frozen={inner.frozen} is not supported (the "
                     "implicit gradient assumes every parameter is adapted)")
  theta = lax.stop_gradient(theta)
  support = lambda p: learner.support_loss(p, episode)
  adapted, losses_K = inner_lib.adapt(theta, proximal(support, theta, lam), cfg=inner)
  adapted = lax.stop_gradient(adapted)
  (_, query_metrics), query_grad = jax.value_and_grad(
      learner.query_loss, has_aux=True)(adapted, episode)

  support_grad, hvp = jax.linearize(jax.grad(lambda p: support(p)[0]), adapted)
  matvec = lambda v: _axpy(1.0 / lam, hvp(v), v)  # (I + H/λ) v
  grads = conjugate_gradient(matvec, query_grad, cg_steps, unroll=inner.unroll)

  def residual(grads):
    r = jax.tree.map(jnp.subtract, matvec(grads), query_grad)
    b2 = _vdot(query_grad, query_grad)
    return jnp.where(b2 > 0, jnp.sqrt(_vdot(r, r) / jnp.where(b2 > 0, b2, 1)), 0.0)

  stationary = _axpy(lam, jax.tree.map(jnp.subtract, adapted, theta), support_grad)
  aux = base.post_adaptation_metrics(learner, adapted, episode, losses_K, query_metrics,
                                     log)
  aux["cg_residual"] = base.if_logging(log, residual, grads)
  aux["inner_stationarity"] = jnp.sqrt(_vdot(stationary, stationary))
  return grads, aux


def adapt_curve(theta: Params, episode: Episode, *, learner: Learner, inner: InnerConfig,
                eval_steps: Sequence[int], inner_state: Any = None,
                lam: float = DEFAULT_LAM) -> dict:
  """``base.adapt_curve`` with iMAML's proximal inner loop (``support_loss`` in the
  curve is the plain support loss, without the proximal term)."""
  support = lambda p: learner.support_loss(p, episode)

  def score(p):
    return dict(learner.query_loss(p, episode)[1], support_loss=support(p)[0])

  _, curve = inner_lib.adapt_curve(theta, proximal(support, theta, lam), score,
                                   cfg=inner, eval_steps=eval_steps,
                                   opt_state=inner_state)
  return curve


def adapted_query_loss(theta: Params, episode: Episode, *, learner: Learner,
                       inner: InnerConfig, lam: float = DEFAULT_LAM) -> jax.Array:
  """The query loss after ``inner.steps`` proximal test-time steps (FLOP counting)."""
  support = lambda p: learner.support_loss(p, episode)
  adapted, _ = inner_lib.adapt(theta, proximal(support, theta, lam), cfg=inner)
  return learner.query_loss(adapted, episode)[0]


def _check(config) -> None:
  o = config.imaml
  if isinstance(o.lam, bool) or not isinstance(o.lam, (int, float)) or not o.lam > 0:
    raise ConfigError(f"config.imaml.lam: {o.lam!r} must be a number > 0 (the "
                      "proximal strength λ)")
  if isinstance(o.cg_steps, bool) or not isinstance(o.cg_steps, int) or o.cg_steps < 1:
    raise ConfigError(f"config.imaml.cg_steps: {o.cg_steps!r} must be an integer >= 1 "
                      "(0 iterations from g = 0 would give a zero meta-gradient)")
  if not isinstance(o.test_proximal, bool):
    raise ConfigError(f"config.imaml.test_proximal: {o.test_proximal!r} is not true "
                      "or false")
  if config.inner.frozen.strip():
    raise ConfigError(f"config.inner.frozen: {config.inner.frozen!r}: imaml adapts "
                      "every parameter (its implicit gradient has no frozen path)")


def with_options(lam: float = DEFAULT_LAM, cg_steps: int = DEFAULT_CG_STEPS,
                 test_proximal: bool = True) -> base.Algorithm:
  """The iMAML record with these options bound (``configure`` reads them from a
  config)."""
  lam, cg_steps = float(lam), int(cg_steps)
  if test_proximal:
    test = dict(adapt_curve=functools.partial(adapt_curve, lam=lam),
                adapted_query_loss=functools.partial(adapted_query_loss, lam=lam))
  else:
    test = dict(adapt_curve=base.adapt_curve, adapted_query_loss=base.adapted_query_loss)
  return dataclasses.replace(
      IMAML, meta_grad=functools.partial(imaml_meta_grad, lam=lam, cg_steps=cg_steps),
      **test)


def _configure(config) -> base.Algorithm:
  o = config.imaml
  return with_options(o.lam, o.cg_steps, o.test_proximal)


IMAML = base.Algorithm(
    name="imaml", meta_grad=imaml_meta_grad, differentiates_inner=False,
    min_inner_steps=1, adapt_curve=adapt_curve, adapted_query_loss=adapted_query_loss,
    check=_check,
    options=dict(lam=DEFAULT_LAM, cg_steps=DEFAULT_CG_STEPS, test_proximal=True),
    configure=_configure)
