"""The config schema of continual meta-learning runs, and its validation.

``base_config()`` holds every key a continual run reads; ``experiments/continual_*.py``
start from it. ``validate`` refuses, with one ``ConfigError`` naming the key, any value
no run can use. Keys that may change when a run resumes (its length, logging,
evaluation) are those of ``metalearn.config.RESUMABLE_KEYS``: ``num_steps``,
``log_every``, ``checkpoint_every``, ``keep_checkpoints``, ``eval``, ``data.path`` ….
"""

import ml_collections

from metalearn.continual import nets as nets_lib
from metalearn.continual import oml
from metalearn.errors import ConfigError

ALGORITHMS = ("oml", "anml", "pretrained", "scratch")
MODELS = ("oml_omniglot", "anml_omniglot", "sine_mlp", "sine_anml")
OPTIMIZERS = ("sgd", "adam")


def base_config() -> ml_collections.ConfigDict:
  """Every key a continual run reads, with defaults (ANML's Omniglot settings)."""
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.task = "omniglot"  # 'omniglot' | 'sine'
  c.algorithm = "anml"  # One of ALGORITHMS.
  c.data = ml_collections.ConfigDict(dict(
      name="omniglot", path="", image_size=28, cache_dir="", download=True,
      num_workers=0,
      train_classes=963))  # The first 963 characters meta-train, the other 660 test.
  # Meta-training trajectories and meta-test streams (Omniglot).
  c.stream = ml_collections.ConfigDict(dict(
      traj_classes=1, traj_per_class=20, remember=64, train_per_class=15,
      heldout_per_class=5, shuffle_examples=False))
  # OML's incremental sine waves.
  c.sine = ml_collections.ConfigDict(dict(
      functions=10, steps_per_function=40, batch=32, remember_per_function=32,
      heldout_per_function=32, pool=400))
  c.model = ml_collections.ConfigDict(dict(
      name="anml_omniglot", channels=256, nm_channels=112, hidden=1024, outputs=1000,
      conv_impl="auto",
      rln=(300, 300, 300, 300, 300, 900), pln=(300, 300), nm=(300,)))  # Sine MLPs.
  # The online phase of meta-training.
  c.train = ml_collections.ConfigDict(dict(
      online=("body", "head"), lr=0.1, remat="step", remat_segment=0,
      first_order=False, reset_classes=True,
      pretrain_batch=64))  # 'pretrained': i.i.d. minibatch size.
  c.outer = ml_collections.ConfigDict(dict(optimizer="adam", lr=1e-3))
  c.meta_batch = 1
  c.fast_compile = False  # Faster compiles, slightly slower steps (metalearn.compiler).
  c.num_steps = 20000
  c.log_every = 100
  c.checkpoint_every = 1000
  c.keep_checkpoints = 2
  # Meta-test (ANML's protocol): streams of unseen classes, accuracy vs classes seen.
  c.eval = ml_collections.ConfigDict(dict(
      split="test", classes=(10, 50, 75, 100, 200, 300, 400, 500, 600), streams=10,
      seed=1, online=("head",), lr=0.01, optimizer="sgd", reset_head=True,
      steps_per_example=1, replay_passes=0, batch=1,  # Replay / oracle minibatch steps.
      shuffle=False, epochs=1,  # The i.i.d. oracle: shuffle=True, epochs > 1.
      chunk=256))  # Examples per forward pass when scoring.
  # Compute on a fixed stream (compute.py): accuracy at the stream's end against
  # SGD steps per example and replay passes, and at longer streams.
  c.compute = ml_collections.ConfigDict(dict(
      classes=50, steps_per_example=(1, 2, 4), replay_passes=(0, 1, 2),
      longer=(100, 200)))
  return c


def _check(cond: bool, key: str, msg: str) -> None:
  if not cond:
    raise ConfigError(f"config.{key}: {msg}")


def _positive(c, keys):
  for key in keys:
    section, _, name = key.rpartition(".")
    value = c[section][name] if section else c[name]
    _check(isinstance(value, int) and value >= 1, key, f"{value!r} must be an integer >= 1")


def validate(c: ml_collections.ConfigDict) -> None:
  """Raises ConfigError, naming the key, for values no run can use."""
  _check(c.task in ("omniglot", "sine"), "task", f"{c.task!r} not in ('omniglot', 'sine')")
  _check(c.algorithm in ALGORITHMS, "algorithm", f"{c.algorithm!r} not in {ALGORITHMS}")
  _check(c.model.name in MODELS, "model.name", f"{c.model.name!r} not in {MODELS}")
  sine_model = c.model.name.startswith("sine")
  _check(sine_model == (c.task == "sine"), "model.name",
         f"{c.model.name!r} does not fit config.task={c.task!r}")
  _check(c.train.remat in oml.REMATS, "train.remat", f"{c.train.remat!r} not in "
         f"{oml.REMATS}")
  for key in ("train.online", "eval.online"):
    value = tuple(c.train.online if key == "train.online" else c.eval.online)
    _check(bool(value) and set(value) <= set(nets_lib.PARTS), key,
           f"{value!r}: a non-empty subset of {nets_lib.PARTS}")
  _check(c.eval.optimizer in OPTIMIZERS, "eval.optimizer",
         f"{c.eval.optimizer!r} not in {OPTIMIZERS}")
  _check(c.outer.optimizer in OPTIMIZERS, "outer.optimizer",
         f"{c.outer.optimizer!r} not in {OPTIMIZERS}")
  for key, value in (("train.lr", c.train.lr), ("eval.lr", c.eval.lr),
                     ("outer.lr", c.outer.lr)):
    _check(value > 0, key, f"{value} must be > 0")
  _positive(c, ("meta_batch", "num_steps", "log_every", "checkpoint_every",
                "keep_checkpoints", "eval.streams", "eval.steps_per_example",
                "eval.batch", "eval.epochs", "eval.chunk", "train.pretrain_batch",
                "stream.traj_classes", "stream.traj_per_class", "stream.train_per_class",
                "sine.functions", "sine.steps_per_function", "sine.batch",
                "compute.classes"))
  _check(c.eval.replay_passes >= 0, "eval.replay_passes",
         f"{c.eval.replay_passes} must be >= 0")
  _check(c.train.remat_segment >= 0, "train.remat_segment",
         f"{c.train.remat_segment} must be >= 0 (0: about the square root of T)")
  classes = tuple(int(n) for n in c.eval.classes)
  _check(bool(classes) and list(classes) == sorted(set(classes)) and classes[0] >= 1,
         "eval.classes", f"{classes} must be distinct increasing class counts >= 1")
  outputs = 1 if sine_model else c.model.outputs
  if c.task == "omniglot":
    _check(classes[-1] <= outputs, "eval.classes",
           f"streams of {classes[-1]} classes need config.model.outputs >= that "
           f"({outputs})")
    _check(c.data.train_classes <= outputs, "data.train_classes",
           f"{c.data.train_classes} meta-training classes need config.model.outputs "
           f">= that ({outputs})")
    _check(c.stream.remember >= 0, "stream.remember", f"{c.stream.remember} must be >= 0")
  if c.algorithm in ("oml", "anml") and c.train.remat_segment:
    steps = (c.stream.traj_classes * c.stream.traj_per_class if c.task == "omniglot"
             else c.sine.functions * c.sine.steps_per_function)
    _check(steps % c.train.remat_segment == 0, "train.remat_segment",
           f"{c.train.remat_segment} does not divide the trajectory's {steps} steps")
  gated = c.model.name in ("anml_omniglot", "sine_anml")
  _check(c.algorithm != "anml" or gated, "model.name",
         f"algorithm 'anml' needs a gated model (anml_omniglot, sine_anml), not "
         f"{c.model.name!r}")
  _check(c.algorithm != "oml" or not gated, "model.name",
         f"algorithm 'oml' has no neuromodulatory network; {c.model.name!r} has one")
  if c.algorithm in ("oml", "anml"):
    for key, value in (("train.online", c.train.online), ("eval.online", c.eval.online)):
      _check(set(value) <= set(nets_lib.PREDICTION), key,
             f"{tuple(value)}: {c.algorithm} updates only the prediction network "
             f"{nets_lib.PREDICTION} online")
