"""The meta-step: sample a meta-batch of tasks, vmap the algorithm over it, average the
meta-gradients, apply an optax update. Compiled once, with the state donated.

``step(state, data, key, log) -> (state, metrics)``. ``key`` is the run's training key:
the step folds in ``state.step``, so a resumed run draws the same tasks as an
uninterrupted one. ``data`` is the task family's device-resident dataset (``None`` for
synthetic families); passing it as an argument, not a closure, keeps it out of the
compiled program's constants. ``log`` is a traced boolean: when true the step also
scores the query set before adaptation and the support set after it (and, for Reptile,
the query set after it), extra forward passes that ``lax.cond`` skips on the steps that
do not log; those metrics are zeros on such steps. Metrics stay on the device.

Tasks are mapped with ``vmap`` (one batched program: what GPUs, TPUs and sharding
want) or ``lax.map`` (one task at a time). On XLA:CPU ``lax.map`` measured 1.7× faster
for the Omniglot conv net (benchmarks/README.md): per-task weights make vmapped
matmuls batched with transposing copies, while mapped tasks run plain matmuls and hold
one task's activations at a time. ``task_map='auto'`` picks per backend.

With ``inner.carry_state`` (Reptile's carried inner Adam) each task starts from the
inner-optimiser state the previous task ended with, so the tasks of a meta-batch run in
sequence (``lax.scan``) whatever ``task_map`` says, as in the Reptile authors' code.
"""

from typing import Any, Callable, Optional

from flax import struct
import jax
from jax import lax
import jax.numpy as jnp
import optax

from metalearn import algorithms
from metalearn import compiler
from metalearn.algorithms import Algorithm
from metalearn.inner import InnerConfig
from metalearn.learner import Learner

Params = Any
TASK_MAPS = ("auto", "vmap", "map")


def resolve_task_map(task_map: str, sharded: bool = False) -> str:
  """'auto' -> 'map' on CPU without sharding, else 'vmap'."""
  if task_map not in TASK_MAPS:
    raise ValueError(f"task_map={task_map!r}: expected one of {TASK_MAPS}")
  if task_map == "auto":
    return "map" if jax.default_backend() == "cpu" and not sharded else "vmap"
  return task_map


def map_over_tasks(fn: Callable, task_map: str) -> Callable:
  """``fn(*task_args)`` mapped over the leading axis of every argument."""
  if task_map == "vmap":
    return jax.vmap(fn)
  return lambda *xs: lax.map(lambda args: fn(*args), xs)


@struct.dataclass
class MetaState:
  """Everything that changes during meta-training."""

  step: jax.Array
  theta: Params
  opt_state: optax.OptState
  # The first step whose query loss was not finite, or -1: checked by the training
  # loop only when it logs or saves, yet it names the exact step.
  first_nonfinite: jax.Array
  # The inner optimiser's state carried across tasks (``InnerConfig.carry_state``);
  # None when every task starts afresh.
  inner_state: Any = None


def init_state(theta: Params, optimizer: optax.GradientTransformation,
               inner: Optional[InnerConfig] = None) -> MetaState:
  """Step 0; ``inner`` with ``carry_state`` adds a fresh carried inner state."""
  carried = inner is not None and inner.carry_state
  return MetaState(step=jnp.zeros((), jnp.int32), theta=theta,
                   opt_state=optimizer.init(theta),
                   first_nonfinite=jnp.full((), -1, jnp.int32),
                   inner_state=inner.make_optimizer().init(theta) if carried else None)


def make_meta_step(*, learner: Learner, algorithm: Algorithm | str, inner: InnerConfig,
                   optimizer: optax.GradientTransformation, task_family: Any,
                   meta_batch: int, task_sharding: Optional[jax.sharding.Sharding] = None,
                   task_map: str = "auto", jit: bool = True,
                   fast_compile: bool = False) -> Callable:
  """Builds the meta-step.

  Args:
    learner: model, loss and batch-norm mode.
    algorithm: an ``Algorithm`` record, or the name it is registered under.
    inner: inner-loop configuration.
    optimizer: outer optax optimiser, applied to the mean meta-gradient.
    task_family: has ``sample(key, data, num_tasks) -> Episode`` (batched).
    meta_batch: tasks per meta-step, T.
    task_sharding: optional sharding of the task axis over devices.
    task_map: 'vmap', 'map' (``lax.map``) or 'auto' (see the module docstring).
    jit: compile the step (``jax.jit`` with the state donated).
    fast_compile: compile faster for slightly slower steps (``metalearn.compiler``).

  Returns:
    ``step(state, data, key, log) -> (state, metrics)``; metrics are device scalars.
  """
  if isinstance(algorithm, str):
    algorithm = algorithms.get(algorithm)
  task_map = resolve_task_map(task_map, sharded=task_sharding is not None)
  if inner.carry_state:
    if algorithm.carried_meta_grad is None:
      raise ValueError(f"inner carry_state is not supported by {algorithm.name}")
    if task_sharding is not None:
      raise ValueError("inner carry_state runs the tasks in sequence; it cannot be "
                       "sharded over devices")

  def all_tasks(state, episodes, task_keys, log):
    """(per-task grads, per-task metrics, inner state after the meta-batch)."""
    if not inner.carry_state:
      meta_grad = algorithm.bind(algorithm.meta_grad, learner=learner, inner=inner,
                                 step=state.step)
      per_task = map_over_tasks(lambda ep, k: meta_grad(state.theta, ep, k, log=log),
                                task_map)
      return (*per_task(episodes, task_keys), state.inner_state)

    carried = algorithm.bind(algorithm.carried_meta_grad, learner=learner, inner=inner,
                             step=state.step)

    def body(inner_state, task):
      grads, aux, inner_state = carried(state.theta, inner_state, *task, log=log)
      return inner_state, (grads, aux)

    inner_state, (grads_T, aux_T) = lax.scan(body, state.inner_state,
                                             (episodes, task_keys))
    return grads_T, aux_T, inner_state

  def step(state: MetaState, data, key: jax.Array, log: jax.Array):
    key = jax.random.fold_in(key, state.step)
    k_tasks, k_alg = jax.random.split(key)
    episodes = task_family.sample(k_tasks, data, meta_batch)
    task_keys = jax.random.split(k_alg, meta_batch)
    if task_sharding is not None:
      episodes, task_keys = lax.with_sharding_constraint(
          (episodes, task_keys), task_sharding)
    grads_T, aux_T, inner_state = all_tasks(state, episodes, task_keys, log)
    grads = jax.tree.map(lambda g: g.mean(0), grads_T)
    updates, opt_state = optimizer.update(grads, state.opt_state, state.theta)
    theta = optax.apply_updates(state.theta, updates)
    metrics = jax.tree.map(lambda m: m.mean(0), aux_T)
    if algorithm.has_head:  # Else theta is no whole model to score (Algorithm).
      metrics.update(pre_adaptation_metrics(
          learner, algorithm.model_params(state.theta), episodes, log))
    metrics["grad_norm"] = optax.tree.norm(grads)
    # Every metric: those skipped on steps that do not log are zeros, and the ones
    # always computed (grad_norm, the support or query loss) catch a divergence.
    finite = jnp.all(jnp.stack([jnp.isfinite(v).all() for v in jax.tree.leaves(metrics)]))
    first_nonfinite = jnp.where((state.first_nonfinite < 0) & ~finite, state.step,
                                state.first_nonfinite)
    return MetaState(step=state.step + 1, theta=theta, opt_state=opt_state,
                     first_nonfinite=first_nonfinite, inner_state=inner_state), metrics

  return compiler.jit(step, donate_argnums=0, fast_compile=fast_compile) if jit else step


def pre_adaptation_metrics(learner: Learner, theta: Params, episodes, log: jax.Array
                           ) -> dict:
  """Query metrics of the meta-parameters themselves, computed only when ``log``."""
  score = jax.vmap(lambda ep: learner.query_loss(theta, ep)[1])
  metrics_T = algorithms.base.if_logging(log, score, lax.stop_gradient(episodes))
  return {f"query_{k}_pre": v.mean(0) for k, v in metrics_T.items()}
