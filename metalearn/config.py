"""The config schema, its validation, and what evaluation reads from a config.

``base_config()`` holds every key a run reads, with defaults; experiment files in
``experiments/`` start from it (``get_config(arg)``) and the command line overrides keys
(``--config.inner.lr=0.1``). ``validate`` refuses, with one ``ConfigError`` naming the
key, any value no run can use. Algorithms, task kinds and models are looked up in their
registries, so one registered from outside the library is validated like the others.
"""

import dataclasses
import hashlib
import json

import ml_collections

from metalearn import algorithms
from metalearn import models
from metalearn import tasks
from metalearn.errors import ConfigError
from metalearn.inner import INNER_OPTIMIZERS
from metalearn.learner import BN_MODES
from metalearn.models import conv4
from metalearn.tasks import datasets

# The outer step size over meta-training (builder.outer_optimizer): 'linear' and 'cosine'
# anneal it to 0 at num_steps.
OUTER_SCHEDULES = ("constant", "linear", "cosine")
# Keys that may change between a run and its resumption (length, logging, evaluation,
# speed); ``num_steps`` only under a constant outer step size (a linear one ends at
# num_steps).
RESUMABLE_KEYS = ("num_steps", "log_every", "checkpoint_every", "keep_checkpoints",
                  "val", "eval", "data.path", "data.cache_dir", "data.num_workers",
                  "data.download", "model.conv_impl", "inner.remat", "task_map",
                  "fast_compile")
# Keys that older runs' config.json files hold and the schema dropped, each with the
# value that means what the schema now says: ``inner.first_order`` is asked for with
# ``algorithm='fomaml'`` alone.
RETIRED_KEYS = {"inner.first_order": lambda old: old.get("algorithm") == "fomaml"}


def base_config() -> ml_collections.ConfigDict:
  """Every key a run reads, with defaults; experiment configs start from this."""
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.task = "sinusoid"  # A registered task kind (metalearn.tasks): 'sinusoid', 'images'.
  c.sinusoid_pool = 0  # > 0: meta-train on a fixed pool of this many sinusoid tasks.
  c.sinusoid_noise = 0.0  # Std of Gaussian noise on sinusoid targets (support and query).
  # Known-floor task families (issue 27): Gaussian-mixture classification ('mixture')
  # and Bayesian linear regression ('linreg'); each has an exact Bayes-optimal curve.
  # mixture.pool > 0: meta-train on that many fixed tasks (0: every task fresh).
  c.mixture = ml_collections.ConfigDict(dict(dim=16, mean_std=1.0, noise=1.0, pool=0))
  c.linreg = ml_collections.ConfigDict(dict(dim=8, weight_std=1.0, noise=0.5))
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
  # Draw all classes of an episode from one alphabet (Omniglot; Lake et al. 2015), the
  # alphabet uniform among those with >= ways classes of the split (sampling.py).
  c.within_alphabet = False
  c.algorithm = "maml"  # A registered algorithm (metalearn.algorithms).
  # Each registered algorithm's own options, as config.<name>.<option> (Algorithm.options).
  for name in algorithms.names():
    if algorithms.get(name).options:
      c[name] = ml_collections.ConfigDict(dict(algorithms.get(name).options))
  c.inner = ml_collections.ConfigDict(dict(
      steps=1, lr=0.01, optimizer="sgd", remat=False,
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
      rotate=False,  # Turn each episode class by a random multiple of 90° (cbfinn/maml).
      # Validation and evaluation episodes within one alphabet (as config.within_alphabet).
      within_alphabet=False))
  return c


def _check(cond: bool, key: str, msg: str):
  if not cond:
    raise ConfigError(f"config.{key}: {msg}")


def frozen_modules(c: ml_collections.ConfigDict) -> tuple[str, ...]:
  """``config.inner.frozen`` ('BatchStatNorm, Dense') as a tuple of module names."""
  return tuple(n.strip() for n in c.inner.frozen.split(",") if n.strip())


@dataclasses.dataclass(frozen=True)
class Records:
  """The registered records a config names."""

  task: tasks.TaskKind
  model: models.ModelKind
  algorithm: algorithms.Algorithm


def _lookup(get, names, value, key):
  try:
    return get(value)
  except ValueError:
    raise ConfigError(f"config.{key}: {value!r} not in {names()}") from None


def validate(c: ml_collections.ConfigDict) -> Records:
  """Raises ConfigError, naming the key, for values no run can use; returns the
  records the config names."""
  kind = _lookup(tasks.get, tasks.names, c.task, "task")
  model = _lookup(models.get, lambda: tuple(models.MODELS), c.model.name, "model.name")
  algorithm = _lookup(algorithms.get, algorithms.names, c.algorithm, "algorithm")
  _check(model.loss == kind.loss, "model.name",
         f"{c.model.name!r} trains with the {model.loss} loss; {c.task} tasks need a "
         f"model with the {kind.loss} loss "
         f"({', '.join(m.name for m in models.MODELS.values() if m.loss == kind.loss)})")
  _check(c.model.head in conv4.HEADS, "model.head", f"{c.model.head!r} not in {conv4.HEADS}")
  _check(c.model.head_init in conv4.HEAD_INITS, "model.head_init",
         f"{c.model.head_init!r} not in {conv4.HEAD_INITS}")
  _check(set(frozen_modules(c)) <= set(model.modules), "inner.frozen",
         f"{c.inner.frozen!r}: {c.model.name} has modules {', '.join(model.modules)}")
  _check(c.bn_mode in BN_MODES, "bn_mode", f"{c.bn_mode!r} not in {BN_MODES}")
  _check(c.eval.bn_mode in ("",) + BN_MODES, "eval.bn_mode",
         f"{c.eval.bn_mode!r} not in {('',) + BN_MODES}")
  _check(c.inner.optimizer in INNER_OPTIMIZERS, "inner.optimizer",
         f"{c.inner.optimizer!r} not in {INNER_OPTIMIZERS}")
  _check(c.inner.steps >= algorithm.min_inner_steps, "inner.steps",
         f"{c.inner.steps}: {c.algorithm} needs at least {algorithm.min_inner_steps}")
  _check(c.inner.lr > 0, "inner.lr", f"{c.inner.lr} must be > 0")
  _check(c.outer.lr > 0, "outer.lr", f"{c.outer.lr} must be > 0")
  _check(c.eval.inner_lr >= 0, "eval.inner_lr",
         f"{c.eval.inner_lr} must be > 0 (or 0: the training inner.lr)")
  for key in ("adam_b1", "adam_b2"):
    _check(0 <= c.inner[key] < 1, f"inner.{key}", f"{c.inner[key]} must be in [0, 1)")
  for key in ("b1", "b2"):
    _check(0 <= c.outer[key] < 1, f"outer.{key}", f"{c.outer[key]} must be in [0, 1)")
  support = c.ways * c.shots if kind.loss == "xent" else c.shots
  _check(c.inner.batch_size == 0 or (algorithm.minibatch_inner and
                                     1 <= c.inner.batch_size <= support),
         "inner.batch_size", f"{c.inner.batch_size}: 0 (whole support set), or for an "
         f"algorithm with minibatch inner steps 1..{support} (the support set)")
  _check(not c.inner.carry_state or algorithm.carried_meta_grad is not None,
         "inner.carry_state", f"{c.algorithm} starts every task from a fresh inner "
         "optimiser; carrying its state needs an algorithm that supports it (reptile)")
  for key in ("ways", "shots", "queries", "meta_batch", "num_steps", "log_every",
              "checkpoint_every", "keep_checkpoints"):
    _check(c[key] >= 1, key, f"{c[key]} must be >= 1")
  for key in ("episodes", "batch"):
    _check(c.eval[key] >= 1, f"eval.{key}", f"{c.eval[key]} must be >= 1")
  _check(c.val.every >= 0, "val.every", f"{c.val.every} must be >= 0 (0: no validation)")
  _check(not c.val.every or c.val.episodes >= 1, "val.episodes",
         f"{c.val.episodes} must be >= 1")
  for key in ("ways", "shots", "queries", "steps"):
    _check(c.eval[key] >= 0, f"eval.{key}", f"{c.eval[key]} must be >= 0 (0: as in "
           "meta-training)" if key != "steps" else f"{c.eval[key]} must be >= 0")
  _check(c.eval.ways in (0, c.ways) or model.loss != "xent" or not algorithm.has_head,
         "eval.ways", f"{c.eval.ways}: the classifier head has config.ways={c.ways} "
         f"outputs ({c.algorithm} adapts it; only an algorithm without a head, such as "
         "protonet, can evaluate other ways)")
  _check(c.outer.optimizer in ("adam", "sgd"), "outer.optimizer",
         f"{c.outer.optimizer!r} not in ('adam', 'sgd')")
  _check(c.outer.schedule in OUTER_SCHEDULES, "outer.schedule",
         f"{c.outer.schedule!r} not in {OUTER_SCHEDULES}")
  _check(c.task_map in ("auto", "vmap", "map"), "task_map",
         f"{c.task_map!r} not in ('auto', 'vmap', 'map')")
  _check(isinstance(c.fast_compile, bool), "fast_compile",
         f"{c.fast_compile!r} is not true or false")
  _check(c.eval.split in datasets.SPLITS, "eval.split",
         f"{c.eval.split!r} not in {datasets.SPLITS}")
  steps = eval_steps(c)
  _check(list(steps) == sorted(set(steps)) and steps[0] >= 0, "eval.eval_steps",
         f"{tuple(c.eval.eval_steps)} must be distinct increasing steps >= 0")
  for key, value in (("within_alphabet", c.within_alphabet),
                     ("eval.within_alphabet", c.eval.within_alphabet)):
    _check(isinstance(value, bool), key, f"{value!r} is not true or false")
    _check(not value or kind.alphabets, key,
           f"draws an episode's classes from one alphabet; {c.task} tasks have no "
           f"alphabets (task kinds with alphabets: "
           f"{', '.join(n for n in tasks.names() if tasks.get(n).alphabets)})")
  if kind.check is not None:
    kind.check(c)
  if algorithm.check is not None:
    algorithm.check(c)
  return Records(kind, model, algorithm)


def eval_steps(c: ml_collections.ConfigDict) -> tuple[int, ...]:
  """The test-time inner steps at which evaluation scores the query set."""
  steps = tuple(int(k) for k in c.eval.eval_steps)
  return steps or tuple(range(c.eval.steps + 1))


def eval_bn_mode(c: ml_collections.ConfigDict) -> str:
  """The batch-norm mode validation and evaluation score queries with: ``c.eval.bn_mode``,
  or the meta-training one. It changes only how queries are normalised, never the
  parameters' shapes, so one checkpoint can be scored under each mode."""
  return c.eval.bn_mode or c.bn_mode


@dataclasses.dataclass(frozen=True)
class EvalProtocol:
  """Every setting that changes an evaluation's numbers, given the parameters.

  The episodes drawn depend on the split, the seed, the batch they are drawn in and
  their shape (ways, shots, queries per class, rotation, within one alphabet or not);
  the scores on the number of episodes, the test-time steps, the inner step size and
  the batch-norm mode.
  """

  split: str
  ways: int
  shots: int
  queries: int
  steps: tuple[int, ...]
  inner_lr: float
  bn_mode: str
  seed: int
  batch: int
  episodes: int
  rotate: bool
  within_alphabet: bool = False

  def digest(self) -> str:
    """8 hex digits that differ between any two protocols."""
    fields = dataclasses.asdict(self)
    if not self.within_alphabet:  # Protocols from before the key keep their digest.
      del fields["within_alphabet"]
    text = json.dumps(fields, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def eval_protocol(c: ml_collections.ConfigDict) -> EvalProtocol:
  """The protocol ``c.eval`` asks for (a 0 in ``c.eval`` means as in meta-training)."""
  e = c.eval
  return EvalProtocol(
      split=e.split, ways=e.ways or c.ways, shots=e.shots or c.shots,
      queries=e.queries or c.queries, steps=eval_steps(c),
      inner_lr=float(e.inner_lr or c.inner.lr), bn_mode=eval_bn_mode(c),
      seed=int(e.seed), batch=int(min(e.batch, e.episodes)), episodes=int(e.episodes),
      rotate=bool(e.rotate), within_alphabet=bool(e.within_alphabet))


def row_settings(c: ml_collections.ConfigDict) -> dict:
  """The run settings every evaluation row and log line carries."""
  return dict(algorithm=c.algorithm, k_train=c.inner.steps, inner_lr=c.inner.lr,
              ways=c.ways, shots=c.shots, queries=c.queries, bn_mode=c.bn_mode,
              model=c.model.name, task=c.task, meta_batch=c.meta_batch, seed=c.seed,
              data=tasks.get(c.task).data_name(c))


def flatten(d: dict, prefix: str = "") -> dict:
  """``{'a': {'b': 1}}`` -> ``{'a.b': 1}``."""
  out = {}
  for k, v in d.items():
    if isinstance(v, dict):
      out.update(flatten(v, f"{prefix}{k}."))
    else:
      out[f"{prefix}{k}"] = v
  return out


def changed_keys(old: dict, new: dict) -> list[str]:
  """The keys (``a.b``) of two config dicts that differ in a way that matters to
  checkpoints: not resumable, not added later at their default, not retired in
  agreement with the new config."""
  old_flat, new_flat = flatten(old), flatten(new)
  defaults = flatten(json.loads(base_config().to_json_best_effort()))
  schedule = old_flat.get("outer.schedule", "constant")
  resumable = [r for r in RESUMABLE_KEYS if r != "num_steps" or schedule == "constant"]

  def matters(k):
    if old_flat.get(k) == new_flat.get(k):
      return False
    if k not in old_flat and k in defaults and new_flat.get(k) == defaults[k]:
      return False
    if k in RETIRED_KEYS and k not in new_flat:
      return old_flat[k] != RETIRED_KEYS[k](new_flat)
    return not any(k == r or k.startswith(r + ".") for r in resumable)

  return sorted(k for k in set(old_flat) | set(new_flat) if matters(k))


def parse_args(arg: str) -> dict[str, str]:
  """``'5way1shot,smoke,steps=10'`` -> ``{'5way1shot': '', 'smoke': '', 'steps': '10'}``
  (the argument of ``--config=file.py:arg``)."""
  out = {}
  for part in filter(None, (arg or "").split(",")):
    key, _, value = part.partition("=")
    out[key.strip()] = value.strip()
  return out


def shrink_for_smoke(c: ml_collections.ConfigDict) -> None:
  """Makes any config run in seconds: few steps, small meta-batch, few episodes, and
  compiled for compile time over step time (``metalearn.compiler``)."""
  c.num_steps = 20
  c.fast_compile = True
  c.meta_batch = min(c.meta_batch, 4)
  c.log_every = 5
  c.checkpoint_every = 10
  c.val.every = 10
  c.val.episodes = 8
  c.eval.episodes = 20
  c.eval.batch = 10
  c.eval.steps = min(c.eval.steps, 3)
  c.eval.eval_steps = tuple(k for k in c.eval.eval_steps if k <= c.eval.steps)
