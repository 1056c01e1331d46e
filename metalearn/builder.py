"""Everything a run needs, assembled once from a config: ``build(config) -> Setup``.

The training loop, evaluation, the compute-scaling sweep, FLOP counting, the
benchmarks and outside code all build their objects here, so identical configs give
identical runs.
"""

import dataclasses
from typing import Any, Optional

import jax
import jax.numpy as jnp
import ml_collections
import optax

from metalearn import config as config_lib
from metalearn import evaluation as evaluation_lib
from metalearn import outer
from metalearn import tasks
from metalearn.algorithms import Algorithm
from metalearn.inner import InnerConfig
from metalearn.learner import Learner
from metalearn.tasks import TaskFamily

# Added under Adam's square root when the inner loop is differentiated through it: the
# derivative of sqrt(v) at a zero second moment is infinite (see InnerConfig).
DIFFERENTIABLE_ADAM_EPS_ROOT = 1e-12


@dataclasses.dataclass(frozen=True)
class Setup:
  """The objects of one run.

  Attributes:
    config: the validated config they were built from.
    algorithm: the algorithm record.
    learner: model, loss and meta-training batch-norm mode.
    inner: the training inner loop.
    tasks: the meta-training task family.
    optimizer: the outer optimiser.
    eval_learner: the learner that scores validation and test queries (eval batch-norm
      mode).
    eval_inner: the test-time inner loop (whole support set, ``eval.inner_lr``).
    eval_tasks: the validation and test task family (``config.eval``'s episode shape).
  """

  config: ml_collections.ConfigDict = dataclasses.field(repr=False, compare=False)
  algorithm: Algorithm
  learner: Learner
  inner: InnerConfig
  tasks: TaskFamily
  optimizer: optax.GradientTransformation = dataclasses.field(repr=False)
  eval_learner: Learner
  eval_inner: InnerConfig
  eval_tasks: TaskFamily

  def init_state(self) -> outer.MetaState:
    """Step 0 of meta-training, from the config's seed."""
    init_key = jax.random.fold_in(jax.random.key(self.config.seed), 0)
    example = jnp.zeros((1,) + tuple(self.tasks.input_shape()), jnp.float32)
    theta = self.algorithm.init(self.learner, init_key, example, self.inner)
    return outer.init_state(theta, self.optimizer, self.inner)

  def abstract_state(self) -> outer.MetaState:
    """The state's shapes and dtypes (a checkpoint's restore template)."""
    return jax.eval_shape(self.init_state)

  def abstract_episodes(self, num_tasks: Optional[int], *, evaluation: bool = False
                        ) -> tasks.Episode:
    """A meta-batch's shapes and dtypes (no data, no compilation); one episode without
    the task axis if ``num_tasks`` is None."""
    return tasks.base.abstract_episodes(self.eval_tasks if evaluation else self.tasks,
                                        num_tasks)

  def evaluate(self, theta, data, *, eval_steps, episodes: int, batch: int,
               key: jax.Array, inner_state: Any = None, log_fn=None
               ) -> evaluation_lib.EvalResult:
    """Scores fresh ``eval_tasks`` episodes (``evaluation.evaluate``)."""
    c = self.config
    return evaluation_lib.evaluate(
        theta, learner=self.eval_learner, inner=self.eval_inner,
        task_family=self.eval_tasks, data=data, eval_steps=eval_steps,
        episodes=episodes, batch=batch, key=key, log_fn=log_fn, task_map=c.task_map,
        inner_state=inner_state, fast_compile=c.fast_compile, algorithm=self.algorithm)

  def meta_step(self, *, task_sharding: Optional[jax.sharding.Sharding] = None,
                jit: bool = True):
    """``step(state, data, key, log) -> (state, metrics)`` (``outer.make_meta_step``)."""
    c = self.config
    return outer.make_meta_step(
        learner=self.learner, algorithm=self.algorithm, inner=self.inner,
        optimizer=self.optimizer, task_family=self.tasks, meta_batch=c.meta_batch,
        task_sharding=task_sharding, task_map=c.task_map, jit=jit,
        fast_compile=c.fast_compile)


def build(c: ml_collections.ConfigDict) -> Setup:
  """Validates ``c`` and assembles its run; raises ``ConfigError`` naming a bad key."""
  records = config_lib.validate(c)
  algorithm, model = records.algorithm, records.model.make(c)
  if algorithm.configure is not None:
    algorithm = algorithm.configure(c)
  learner = Learner(model, records.model.loss, c.bn_mode)
  eval_bn_mode = config_lib.eval_bn_mode(c)
  frozen = config_lib.frozen_modules(c)
  return Setup(
      config=c, algorithm=algorithm, learner=learner,
      inner=inner_config(c, algorithm, frozen), tasks=records.task.make(c, False),
      optimizer=outer_optimizer(c),
      eval_learner=(learner if eval_bn_mode == c.bn_mode
                    else Learner(model, records.model.loss, eval_bn_mode)),
      eval_inner=inner_config(c, algorithm, frozen, evaluation=True),
      eval_tasks=records.task.make(c, True))


def inner_config(c: ml_collections.ConfigDict, algorithm: Algorithm,
                 frozen: tuple[str, ...], *, evaluation: bool = False) -> InnerConfig:
  """The training inner loop, or with ``evaluation`` the test-time one (whole support
  set per step, as the papers evaluate; ``eval.inner_lr`` if set)."""
  lr = (c.eval.inner_lr or c.inner.lr) if evaluation else c.inner.lr
  differentiated = not algorithm.first_order and algorithm.differentiates_inner
  return InnerConfig(
      steps=c.inner.steps, lr=lr, optimizer=c.inner.optimizer,
      first_order=algorithm.first_order, remat=c.inner.remat,
      adam_b1=c.inner.adam_b1, adam_b2=c.inner.adam_b2,
      adam_eps_root=(DIFFERENTIABLE_ADAM_EPS_ROOT
                     if differentiated and c.inner.optimizer == "adam" else 0.0),
      batch_size=0 if evaluation else c.inner.batch_size,
      carry_state=c.inner.carry_state, frozen=frozen)


def outer_optimizer(c: ml_collections.ConfigDict) -> optax.GradientTransformation:
  """The outer optimiser; 'linear' (Reptile) and 'cosine' (MAML++) anneal the rate to 0
  at num_steps."""
  lr = c.outer.lr
  if c.outer.schedule == "linear":
    lr = optax.linear_schedule(c.outer.lr, 0.0, c.num_steps)
  elif c.outer.schedule == "cosine":  # MAML++ (half a cosine period, to 0).
    lr = optax.cosine_decay_schedule(c.outer.lr, c.num_steps)
  if c.outer.optimizer == "sgd":
    return optax.sgd(lr)
  return optax.adam(lr, b1=c.outer.b1, b2=c.outer.b2)
