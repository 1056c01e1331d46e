"""The contract every algorithm follows, and the record that registers one.

``meta_grad(theta, episode, key, *, learner, inner, log) -> (grads, aux)``: for one
task, the (pseudo-)gradient of the meta-objective with respect to the meta-parameters
``theta`` (same pytree structure, to be fed to any optax optimiser) and a dict of
scalar metrics. Algorithms hold no state; the meta-step maps them over tasks. ``log``
(a traced or Python boolean, default true) says whether the metrics that cost extra
forward passes are computed (see ``post_adaptation_metrics``).

An ``Algorithm`` record bundles that function with the algorithm's test-time
adaptation (what evaluation and FLOP counting run), what it supports and its own config
checks; ``metalearn.algorithms.register`` adds one without editing the library.

Meta-parameters. ``theta`` is what the outer optimiser updates and checkpoints hold. For
MAML it is the model's parameters; an algorithm that meta-learns more (Meta-SGD's
per-parameter learning rates, MAML++'s per-step ones) builds its ``theta`` from the
model's initial parameters with ``init_theta`` and says where the model's parameters
are in it with ``model_params``. Algorithm options: ``options`` holds an algorithm's own
hyperparameters with their defaults; the config has them as ``config.<name>.<option>``
and ``configure(config)`` returns the record with them bound (the builder calls it).
"""

import dataclasses
import functools
from typing import Any, Callable, Optional, Protocol, Sequence

import jax
import jax.numpy as jnp

from metalearn import inner as inner_lib
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


def adapt_curve(theta: Params, episode: Episode, *, learner: Learner, inner: InnerConfig,
                eval_steps: Sequence[int], inner_state: Any = None) -> dict:
  """Test-time adaptation on the support set, the query set scored after each step in
  ``eval_steps`` (``inner.adapt_curve``): metric name -> ``[len(eval_steps)]``.

  Besides the query metrics, ``support_loss`` is the loss on the support set being fitted
  at each of those steps: a support loss still falling while the query loss is flat is
  an information plateau; both flat is an optimisation plateau."""
  def score(p):
    return dict(learner.query_loss(p, episode)[1],
                support_loss=learner.support_loss(p, episode)[0])

  _, curve = inner_lib.adapt_curve(
      theta, lambda p: learner.support_loss(p, episode), score, cfg=inner,
      eval_steps=eval_steps, opt_state=inner_state)
  return curve


def adapted_query_loss(theta: Params, episode: Episode, *, learner: Learner,
                       inner: InnerConfig) -> jax.Array:
  """The query loss after ``inner.steps`` test-time steps: the program whose FLOPs are
  an evaluation episode's cost (``flops.adaptation_flops``)."""
  adapted, _ = inner_lib.adapt(theta, lambda p: learner.support_loss(p, episode),
                               cfg=inner)
  return learner.query_loss(adapted, episode)[0]


@dataclasses.dataclass(frozen=True)
class Algorithm:
  """One meta-learning algorithm on the shared contract.

  Attributes:
    name: the name configs use (``config.algorithm``).
    meta_grad: the per-task ``MetaGradFn``.
    first_order: gradients through the inner gradients are stopped
      (``InnerConfig.first_order``).
    differentiates_inner: ``meta_grad`` differentiates through the inner loop (so an
      inner Adam needs its ``eps_root``; see ``builder.inner_config``).
    carried_meta_grad: ``(theta, inner_state, episode, key, *, learner, inner, log) ->
      (grads, aux, inner_state)``, for algorithms that can carry the inner optimiser's
      state from task to task (``inner.carry_state``); None if it cannot.
    minibatch_inner: supports inner steps on minibatches of the support set.
    min_inner_steps: the fewest training inner steps it can use.
    adapt_curve: test-time adaptation scored along the way (evaluation).
    adapted_query_loss: test-time adaptation then the query loss (FLOP counting).
    check: extra config checks, ``check(config)`` raising ``ConfigError``.
    init_theta: ``(model_params, inner) -> theta``, the meta-parameters at step 0 from
      the model's initial parameters and the training inner loop (default: the model's
      parameters themselves).
    model_params: ``theta -> model parameters`` (the query scored before adaptation).
    uses_step: ``meta_grad`` takes ``step=`` (the meta-step index, a traced int32), for
      schedules inside the meta-gradient (MAML++'s annealing).
    options: the algorithm's own hyperparameters and their defaults, configured as
      ``config.<name>.<option>`` (``config.base_config`` adds the section).
    configure: ``(config) -> Algorithm``, this record with the config's options bound;
      None when the record needs nothing from the config.
    has_head: ``model_params(theta)`` is the whole model, its output layer included:
      a classifier's ``config.ways`` outputs fix the evaluation's ways, and the
      meta-step scores the query with it before adaptation (``query_*_pre``). False
      for an algorithm that meta-learns an embedding without the head (Prototypical
      Networks): evaluation may use other ways, and there is no pre-adaptation score.
  """

  name: str
  meta_grad: MetaGradFn
  first_order: bool = False
  differentiates_inner: bool = True
  carried_meta_grad: Optional[Callable[..., tuple[Params, dict, Any]]] = None
  minibatch_inner: bool = False
  min_inner_steps: int = 0
  adapt_curve: Callable[..., dict] = adapt_curve
  adapted_query_loss: Callable[..., jax.Array] = adapted_query_loss
  check: Optional[Callable[[Any], None]] = None
  init_theta: Callable[[Params, InnerConfig], Params] = lambda params, inner: params
  model_params: Callable[[Params], Params] = lambda theta: theta
  uses_step: bool = False
  options: dict = dataclasses.field(default_factory=dict)
  configure: Optional[Callable[[Any], "Algorithm"]] = None
  has_head: bool = True

  def bind(self, fn: Callable, *, learner: Learner, inner: InnerConfig,
           step: Any = 0, **kw) -> Callable:
    """``fn`` (``meta_grad`` or ``carried_meta_grad``) with its keyword arguments bound,
    ``step`` included when the algorithm takes it."""
    if self.uses_step:
      kw["step"] = step
    return functools.partial(fn, learner=learner, inner=inner, **kw)

  def init(self, learner: Learner, key: jax.Array, example_x: Any,
           inner: InnerConfig) -> Params:
    """The meta-parameters at step 0 (``init_theta`` of the model's initialisation)."""
    return self.init_theta(learner.init(key, example_x), inner)
