"""From a config to the objects of a run: learner, task families, data, optimisers.

The one place that reads the config schema (see ``base_config``), so that the training
loop, evaluation, experiments and benchmarks build identical runs from identical
configs. Bad values raise ``ConfigError`` naming the ``config.`` key.
"""

from typing import Any, Optional

import jax
import jax.numpy as jnp
import ml_collections
import optax

from metalearn.errors import ConfigError
from metalearn.inner import INNER_OPTIMIZERS
from metalearn.inner import InnerConfig
from metalearn.learner import BN_MODES
from metalearn.learner import Learner
from metalearn.models import conv4
from metalearn.models import mlp
from metalearn.tasks import datasets
from metalearn.tasks import sampling
from metalearn.tasks.sinusoid import SinusoidTasks

TASKS = ("sinusoid", "images")
MODELS = ("mlp", "conv4_omniglot", "conv4_miniimagenet")
ALGORITHMS = ("maml", "fomaml", "reptile")


def base_config() -> ml_collections.ConfigDict:
  """Every key a run reads, with defaults; experiment configs start from this."""
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.task = "sinusoid"  # 'sinusoid' (synthetic, on the device) or 'images'.
  c.sinusoid_pool = 0  # > 0: meta-train on a fixed pool of this many sinusoid tasks.
  c.data = datasets.default_data_config()
  c.model = ml_collections.ConfigDict(dict(
      name="mlp", hidden=(40, 40), conv_impl="auto", filters=0,  # 0: the paper's.
      # conv4 head input, head weight init, batch-norm scale (conv4.py).
      head="flatten", head_init="lecun_normal", bn_scale=True))
  c.bn_mode = "transductive"
  # Meta-training episodes.
  c.ways = 5
  c.shots = 10
  c.queries = 10
  c.rotate = False  # Turn each class of an episode by a random quarter turn (sampling.py).
  c.algorithm = "maml"
  c.inner = ml_collections.ConfigDict(dict(
      steps=1, lr=0.01, optimizer="sgd", first_order=False, remat=False,
      adam_b1=0.0, adam_b2=0.999,
      batch_size=0,  # Support examples per training inner step (reptile); 0: all.
      carry_state=False,  # Carry the inner Adam state across tasks (reptile).
      frozen=""))  # Comma-separated modules the inner loop leaves alone (inner.py).
  c.outer = ml_collections.ConfigDict(dict(
      optimizer="adam", lr=1e-3, schedule="constant", b1=0.9, b2=0.999))
  c.meta_batch = 25
  c.task_map = "auto"  # 'vmap' | 'map' (lax.map) over tasks; 'auto': map on CPU.
  c.fast_compile = False  # Faster compiles, slightly slower steps (metalearn.compiler).
  c.num_steps = 70000
  c.log_every = 500
  c.checkpoint_every = 5000
  c.keep_checkpoints = 2
  # Periodic validation on meta-validation classes (images) or fresh tasks (sinusoid).
  c.val = ml_collections.ConfigDict(dict(every=0, episodes=100, steps=0))
  # Final evaluation: test split, whole accuracy-vs-steps curve in one pass.
  c.eval = ml_collections.ConfigDict(dict(
      split="test", episodes=600, steps=10, eval_steps=(), ways=0, shots=0,
      queries=0, inner_lr=0.0, batch=100, seed=1,
      bn_mode="",  # Batch-norm mode of the query predictions; '': config.bn_mode.
      rotate=False))  # Turn each episode class by a random multiple of 90° (cbfinn/maml).
  return c


def _check(cond: bool, key: str, msg: str):
  if not cond:
    raise ConfigError(f"config.{key}: {msg}")


def validate(c: ml_collections.ConfigDict) -> None:
  """Raises ConfigError, naming the key, for values no run can use."""
  _check(c.task in TASKS, "task", f"{c.task!r} is not one of {TASKS}")
  _check(c.model.name in MODELS, "model.name", f"{c.model.name!r} not in {MODELS}")
  _check(c.model.head in conv4.HEADS, "model.head", f"{c.model.head!r} not in {conv4.HEADS}")
  modules = ("Dense",) if c.model.name == "mlp" else ("Conv", "BatchStatNorm", "Dense")
  _check(set(_frozen_modules(c)) <= set(modules), "inner.frozen",
         f"{c.inner.frozen!r}: {c.model.name} has modules {', '.join(modules)}")
  _check(c.model.head_init in conv4.HEAD_INITS, "model.head_init",
         f"{c.model.head_init!r} not in {conv4.HEAD_INITS}")
  _check(c.algorithm in ALGORITHMS, "algorithm", f"{c.algorithm!r} not in {ALGORITHMS}")
  _check(c.bn_mode in BN_MODES, "bn_mode", f"{c.bn_mode!r} not in {BN_MODES}")
  _check(c.eval.bn_mode in ("",) + BN_MODES, "eval.bn_mode",
         f"{c.eval.bn_mode!r} not in {('',) + BN_MODES}")
  _check(c.inner.optimizer in INNER_OPTIMIZERS, "inner.optimizer",
         f"{c.inner.optimizer!r} not in {INNER_OPTIMIZERS}")
  _check(c.inner.steps >= 0, "inner.steps", f"{c.inner.steps} must be >= 0")
  _check(c.algorithm != "reptile" or c.inner.steps >= 1,
         "inner.steps", "reptile needs at least one inner step")
  _check(c.inner.batch_size == 0 or (c.algorithm == "reptile" and
                                     1 <= c.inner.batch_size <= c.ways * c.shots),
         "inner.batch_size", f"{c.inner.batch_size}: 0 (whole support set), or for "
         f"reptile 1..ways*shots = {c.ways * c.shots}")
  _check(not c.inner.carry_state or (c.algorithm == "reptile" and
                                      c.inner.optimizer == "adam"),
         "inner.carry_state", "needs algorithm='reptile' and inner.optimizer='adam'")
  for key in ("ways", "shots", "queries", "meta_batch", "num_steps", "log_every",
              "checkpoint_every"):
    _check(c[key] >= 1, key, f"{c[key]} must be >= 1")
  _check(c.outer.optimizer in ("adam", "sgd"), "outer.optimizer",
         f"{c.outer.optimizer!r} not in ('adam', 'sgd')")
  _check(c.outer.schedule in ("constant", "linear"), "outer.schedule",
         f"{c.outer.schedule!r} not in ('constant', 'linear')")
  _check(c.eval.episodes >= 1, "eval.episodes", "must be >= 1")
  for key, value in (("rotate", c.rotate), ("eval.rotate", c.eval.rotate)):
    _check(not value or c.task != "sinusoid", key,
           "turns image classes; the sinusoid task has none")
  _check(c.task_map in ("auto", "vmap", "map"), "task_map",
         f"{c.task_map!r} not in ('auto', 'vmap', 'map')")
  _check(isinstance(c.fast_compile, bool), "fast_compile",
         f"{c.fast_compile!r} is not true or false")
  _check(c.eval.split in ("train", "val", "test"), "eval.split",
         f"{c.eval.split!r} not in ('train', 'val', 'test')")
  if c.task == "sinusoid":
    _check(c.model.name == "mlp", "model.name", "sinusoid tasks need model.name='mlp'")
  else:
    _check(c.model.name != "mlp", "model.name", "image tasks need a conv4 model")
  steps = eval_steps(c)
  _check(list(steps) == sorted(set(steps)) and steps[0] >= 0, "eval.eval_steps",
         f"{tuple(c.eval.eval_steps)} must be distinct increasing steps >= 0")


def eval_steps(c: ml_collections.ConfigDict) -> tuple[int, ...]:
  """The test-time inner steps at which evaluation scores the query set."""
  steps = tuple(int(k) for k in c.eval.eval_steps)
  return steps or tuple(range(c.eval.steps + 1))


def eval_protocol(c: ml_collections.ConfigDict) -> tuple[int, int, int, int]:
  """(ways, shots, queries per class, largest test-time step) evaluation scores with;
  a 0 in ``c.eval`` means as in meta-training."""
  e = c.eval
  return (e.ways or c.ways, e.shots or c.shots, e.queries or c.queries, max(eval_steps(c)))


def eval_bn_mode(c: ml_collections.ConfigDict) -> str:
  """The batch-norm mode validation and evaluation score queries with: ``c.eval.bn_mode``,
  or the meta-training one. It changes only how queries are normalised, never the
  parameters' shapes, so one checkpoint can be scored under each mode."""
  return c.eval.bn_mode or c.bn_mode


def build_learner(c: ml_collections.ConfigDict, bn_mode: Optional[str] = None) -> Learner:
  """The model, loss and batch-norm mode (``bn_mode`` overrides ``c.bn_mode``)."""
  bn_mode = bn_mode or c.bn_mode
  if c.model.name == "mlp":
    return Learner(mlp.MLP(tuple(c.model.hidden)), "mse", bn_mode)
  make = (conv4.omniglot_conv4 if c.model.name == "conv4_omniglot"
          else conv4.miniimagenet_conv4)
  kw = {"filters": c.model.filters} if c.model.filters else {}
  return Learner(make(c.ways, conv_impl=c.model.conv_impl, head=c.model.head,
                      head_init=c.model.head_init, bn_scale=c.model.bn_scale, **kw),
                 "xent", bn_mode)


def build_inner(c: ml_collections.ConfigDict, *, steps: Optional[int] = None,
                lr: Optional[float] = None, evaluation: bool = False) -> InnerConfig:
  """The training inner loop, or with ``evaluation`` the test-time one (whole support
  set per step, as the papers evaluate)."""
  return InnerConfig(
      steps=c.inner.steps if steps is None else steps,
      lr=c.inner.lr if not lr else lr, optimizer=c.inner.optimizer,
      first_order=c.inner.first_order or c.algorithm == "fomaml",
      remat=c.inner.remat, adam_b1=c.inner.adam_b1, adam_b2=c.inner.adam_b2,
      batch_size=0 if evaluation else c.inner.batch_size,
      carry_state=c.inner.carry_state,
      frozen=_frozen_modules(c))


def _frozen_modules(c: ml_collections.ConfigDict) -> tuple[str, ...]:
  """``config.inner.frozen`` ('BatchStatNorm, Dense') as a tuple of module names."""
  return tuple(n.strip() for n in c.inner.frozen.split(",") if n.strip())


def build_outer_optimizer(c: ml_collections.ConfigDict) -> optax.GradientTransformation:
  """The outer optimiser; 'linear' anneals the rate to 0 at num_steps (Reptile)."""
  lr = c.outer.lr
  if c.outer.schedule == "linear":
    lr = optax.linear_schedule(c.outer.lr, 0.0, c.num_steps)
  if c.outer.optimizer == "sgd":
    return optax.sgd(lr)
  return optax.adam(lr, b1=c.outer.b1, b2=c.outer.b2)


def build_task_family(c: ml_collections.ConfigDict, *, ways=0, shots=0, queries=0,
                      pool=None, rotate=None):
  """The task family for training (defaults) or evaluation (overrides if non-zero).

  Evaluation always draws fresh sinusoid tasks (``pool=0``), never the training pool.
  """
  pool = c.sinusoid_pool if pool is None else pool
  ways, shots, queries = ways or c.ways, shots or c.shots, queries or c.queries
  if c.task == "sinusoid":
    return SinusoidTasks(shots=shots, queries=queries, pool_size=pool)
  rotate = c.rotate if rotate is None else rotate
  return sampling.ImageTaskFamily(ways=ways, shots=shots, queries=queries,
                                  rotate=bool(rotate))


def eval_task_family(c: ml_collections.ConfigDict):
  return build_task_family(c, ways=c.eval.ways, shots=c.eval.shots,
                           queries=c.eval.queries, pool=0, rotate=c.eval.rotate)


def load_data(c: ml_collections.ConfigDict, split: str, task_family=None) -> Any:
  """The split's device-resident data (``None`` for synthetic tasks).

  If ``task_family`` is given, checks now that the split can supply its episodes.
  """
  if c.task == "sinusoid":
    return None
  data = sampling.to_device(datasets.load_split(c.data, split))
  if task_family is not None:
    task_family.check(data)
  return data


def example_input(c: ml_collections.ConfigDict, task_family, data) -> jax.Array:
  """A small input batch with the shape the model will see, for initialisation."""
  episode = jax.eval_shape(lambda k: task_family.sample(k, data, 1), jax.random.key(0))
  shape = episode.support_x.shape[1:]
  return jnp.zeros(shape, jnp.float32)


def config_summary(c: ml_collections.ConfigDict) -> dict:
  """The settings every evaluation row and log line carries."""
  return dict(algorithm=c.algorithm, k_train=c.inner.steps, inner_lr=c.inner.lr,
              ways=c.ways, shots=c.shots, queries=c.queries, bn_mode=c.bn_mode,
              model=c.model.name, task=c.task, meta_batch=c.meta_batch, seed=c.seed,
              data=c.data.name if c.task == "images" else "sinusoid")


