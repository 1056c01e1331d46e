"""Continual streams: class-incremental Omniglot and OML's incremental sine waves.

Online learning sees one stream, class after class: the classes in a random order,
each class's examples consecutive, every example once. A stream is *described* first
(``StreamSpec``: which class rows, which example rows of each) and then *materialised*
by one gather from the class-indexed arrays the episode samplers use
(``sampling.ImageData``, ``images_CxExHxWxCh`` uint8 on the device) — or from any
arrays with the same two leading axes, such as the features of a fixed representation
computed once for a whole split (``evaluate.py``).

Shapes. A ``Stream`` is class-major: ``x [N, P, B, ...]`` holds N classes, P online
steps per class, B examples per step (Omniglot: P = 15 images, B = 1, one SGD step per
image); ``heldout_x [N, H, ...]`` the H held-out examples of each class. Labels are the
class's position in the stream (0 … N−1), so a head of ``outputs ≥ N`` units learns
them in order. A meta-training ``Trajectory`` is ``x [T, B, ...]`` (T online steps)
plus a remembered set ``remember_x [R, ...]``; its labels are the classes' rows in the
meta-training split.

Omniglot protocol (ANML, Beaulieu et al. 2020; OML, Javed & White 2019): meta-training
on the first 963 characters of the release in its global order (``omniglot.py``: the
background alphabets, sorted; all but the last background character), meta-test on the
remaining 660 (the last background character and the 659 evaluation characters),
1623 = 963 + 660, no rotations. Of each meta-test character's 20 drawings (in file
order) the first 15 are learned online and the last 5 held out. A meta-training
trajectory is 20 drawings of one random character, one SGD step each, and the remembered
set 64 random drawings of random meta-training characters (ANML's defaults).

Incremental sine waves (OML, Section 4.1): a trajectory visits ``functions`` sine waves
``y = a·sin(x − φ)`` (a ~ U[0.1, 5], φ ~ U[0, π], x ~ U[−5, 5]) one after another; the
input is ``[x, one_hot(position)]`` (the position of the wave in the trajectory among
``functions`` slots), each step a minibatch of B points of the current wave. Meta-training
waves come from a fixed pool (``pool``, 400 in OML's code), meta-test waves are fresh.
"""

import dataclasses
import functools
import math
from typing import Any, Optional

from flax import struct
import jax
import jax.numpy as jnp
import numpy as np

from metalearn import errors
from metalearn.tasks import omniglot
from metalearn.tasks import sampling
from metalearn.tasks.class_images import ClassImages

ANML_TRAIN_CHARACTERS = 963  # Meta-training characters; the other 660 are meta-test.


@struct.dataclass
class StreamSpec:
  """Which examples a class-incremental stream presents, in order.

  Attributes:
    class_rows: ``[N]`` rows of the split's classes, in stream order.
    train_rows: ``[N, P]`` example rows learned online, class by class.
    heldout_rows: ``[N, H]`` example rows held out for scoring.
  """

  class_rows: jax.Array
  train_rows: jax.Array
  heldout_rows: jax.Array


@struct.dataclass
class Stream:
  """A materialised stream (see the module docstring for shapes)."""

  x: Any
  y: jax.Array
  heldout_x: Any
  heldout_y: jax.Array
  class_ids: jax.Array


@struct.dataclass
class Trajectory:
  """One meta-training trajectory and its remembered set.

  Attributes:
    x: ``[T, B, ...]`` inputs of the T online steps.
    y: ``[T, B]`` labels (``[T, B, 1]`` regression targets).
    remember_x: ``[R, ...]`` the remembered set.
    remember_y: ``[R]`` (``[R, 1]``).
    classes: ``[K]`` labels of the trajectory's classes (their output rows are reset
      before it); ``[0]`` for regression.
  """

  x: jax.Array
  y: jax.Array
  remember_x: jax.Array
  remember_y: jax.Array
  classes: jax.Array


def describe_class_stream(key: jax.Array, num_classes: int, examples_per_class: int,
                          n: int, train_per_class: int, heldout_per_class: int,
                          shuffle_examples: bool = False) -> StreamSpec:
  """A class-incremental stream of ``n`` of ``num_classes`` classes in random order.

  Args:
    key: PRNG key (the class order; the example split when ``shuffle_examples``).
    num_classes: C, classes of the split.
    examples_per_class: E.
    n: N, classes in the stream.
    train_per_class: P, examples of each class learned online.
    heldout_per_class: H, examples of each class held out (P + H ≤ E).
    shuffle_examples: draw each class's P + H examples at random (in random order);
      otherwise the first P are learned and the last H held out (ANML's split).

  Returns:
    The spec.
  """
  _check_stream(num_classes, examples_per_class, n, train_per_class, heldout_per_class)
  k_classes, k_examples = jax.random.split(key)
  class_rows = jax.random.choice(k_classes, num_classes, (n,), replace=False)
  p, h = train_per_class, heldout_per_class
  if shuffle_examples:
    rows = jax.vmap(lambda k: jax.random.permutation(k, examples_per_class)[:p + h])(
        jax.random.split(k_examples, n))
    train, heldout = rows[:, :p], rows[:, p:]
  else:
    train = jnp.broadcast_to(jnp.arange(p), (n, p))
    heldout = jnp.broadcast_to(jnp.arange(examples_per_class - h, examples_per_class),
                               (n, h))
  return StreamSpec(class_rows.astype(jnp.int32), train.astype(jnp.int32),
                    heldout.astype(jnp.int32))


def _check_stream(num_classes, examples_per_class, n, train_per_class, heldout_per_class):
  if not 1 <= n <= num_classes:
    raise errors.ConfigError(f"a stream of {n} classes: must be 1 … {num_classes} "
                             "(the split's classes)")
  if train_per_class < 1 or heldout_per_class < 0 or (
      train_per_class + heldout_per_class > examples_per_class):
    raise errors.ConfigError(
        f"train_per_class={train_per_class} + heldout_per_class={heldout_per_class}: "
        f"must be ≥ 1 + 0 and at most the {examples_per_class} examples per class")


def as_float(x: jax.Array) -> jax.Array:
  """uint8 images to float32 in [0, 1]; anything else (features) unchanged."""
  return x.astype(jnp.float32) * (1.0 / 255.0) if x.dtype == jnp.uint8 else x


def materialise(spec: StreamSpec, arrays: Any, class_ids: jax.Array) -> Stream:
  """The stream ``spec`` describes, gathered from ``arrays`` (a pytree of ``[C, E, ...]``
  arrays: a split's images, or features of them) with one example per online step."""
  rows, train, held = spec.class_rows, spec.train_rows, spec.heldout_rows
  n, p = train.shape

  def gather(a, examples):
    return as_float(a[rows[:, None], examples])

  x = jax.tree.map(lambda a: gather(a, train)[:, :, None], arrays)
  heldout_x = jax.tree.map(lambda a: gather(a, held), arrays)
  labels = jnp.arange(n, dtype=jnp.int32)
  return Stream(x=x, y=jnp.broadcast_to(labels[:, None, None], (n, p, 1)),
                heldout_x=heldout_x,
                heldout_y=jnp.broadcast_to(labels[:, None], held.shape),
                class_ids=class_ids[rows])


def load_anml_split(data_cfg: Any, split: str) -> ClassImages:
  """The ANML split of Omniglot: ``train`` the first ``data.train_classes`` characters
  (963), ``test`` the rest (660), unrotated (see the module docstring)."""
  if split not in ("train", "test"):
    raise errors.ConfigError(f"split={split!r}: the continual Omniglot protocol has "
                             "'train' and 'test' (meta-test) characters only")
  chars = omniglot.load_characters(
      data_cfg.path, image_size=data_cfg.image_size, cache_dir=data_cfg.cache_dir,
      download=data_cfg.download, num_workers=data_cfg.num_workers)
  total = len(chars.alphabets)
  cut = data_cfg.train_classes
  if not 1 <= cut < total:
    raise errors.ConfigError(f"config.data.train_classes={cut}: must be in [1, {total})")
  indices = np.arange(cut) if split == "train" else np.arange(cut, total)
  return omniglot.rotated_classes(chars, indices, False, f"omniglot/anml/{split}")


@dataclasses.dataclass(frozen=True)
class OmniglotStreams:
  """Class-incremental Omniglot: meta-training trajectories and meta-test streams.

  Attributes:
    traj_classes: K, classes per meta-training trajectory.
    traj_per_class: examples of each, one online step each.
    remember: R, the remembered set's size.
    train_per_class: P, examples per class learned online at meta-test.
    heldout_per_class: H, examples per class held out at meta-test.
    shuffle_examples: draw the meta-test examples at random (else first P, last H).
    data: ``config.data`` (loader settings).
  """

  traj_classes: int = 1
  traj_per_class: int = 20
  remember: int = 64
  train_per_class: int = 15
  heldout_per_class: int = 5
  shuffle_examples: bool = False
  data: Any = dataclasses.field(default=None, compare=False, hash=False, repr=False)
  loss = "xent"
  step_batch = 1

  def input_shape(self) -> tuple[int, ...]:
    size = self.data.image_size
    return (size, size, 1)

  def load(self, split: str) -> sampling.ImageData:
    return sampling.to_device(load_anml_split(self.data, split))

  def trajectory(self, key: jax.Array, data: sampling.ImageData) -> Trajectory:
    """K random classes, ``traj_per_class`` random examples of each, then R random
    examples of the split (labels: class rows)."""
    images = data.images
    c, e = images.shape[:2]
    if self.traj_per_class > e or self.traj_classes > c:
      raise errors.ConfigError(
          f"config.stream.traj_classes={self.traj_classes} × traj_per_class="
          f"{self.traj_per_class}: the split has {c} classes of {e} examples")
    k_cls, k_ex, k_rc, k_re = jax.random.split(key, 4)
    classes = jax.random.choice(k_cls, c, (self.traj_classes,), replace=False)
    examples = jax.vmap(lambda k: jax.random.permutation(k, e)[:self.traj_per_class])(
        jax.random.split(k_ex, self.traj_classes))
    x = as_float(images[classes[:, None], examples]).reshape(
        (-1, 1) + images.shape[2:])
    y = jnp.repeat(classes, self.traj_per_class)[:, None]
    rc = jax.random.randint(k_rc, (self.remember,), 0, c)
    re = jax.random.randint(k_re, (self.remember,), 0, e)
    return Trajectory(x=x, y=y.astype(jnp.int32), remember_x=as_float(images[rc, re]),
                      remember_y=rc.astype(jnp.int32), classes=classes.astype(jnp.int32))

  def iid_batch(self, key: jax.Array, data: sampling.ImageData, size: int
                ) -> tuple[jax.Array, jax.Array]:
    """``size`` examples drawn uniformly from the split, labelled by class row."""
    c, e = data.images.shape[:2]
    kc, ke = jax.random.split(key)
    rc = jax.random.randint(kc, (size,), 0, c)
    return as_float(data.images[rc, jax.random.randint(ke, (size,), 0, e)]), rc

  def num_classes(self, data: sampling.ImageData) -> int:
    return int(data.images.shape[0])

  def check(self, data: sampling.ImageData, max_classes: int) -> None:
    c, e = data.images.shape[:2]
    if max_classes > c:
      raise errors.ConfigError(f"config.eval.classes: streams of up to {max_classes} "
                               f"classes, but the meta-test split has {c}")
    if self.train_per_class + self.heldout_per_class > e:
      raise errors.ConfigError(
          f"config.stream.train_per_class + heldout_per_class = "
          f"{self.train_per_class + self.heldout_per_class}: more than the {e} "
          "examples per class")

  def stream(self, key: jax.Array, source: Any, n: int,
             class_ids: Optional[jax.Array] = None) -> Stream:
    """A meta-test stream of ``n`` classes from ``source``: the split's ``ImageData``,
    or a pytree of ``[C, E, ...]`` arrays (features of it) with ``class_ids``."""
    if isinstance(source, sampling.ImageData):
      source, class_ids = source.images, source.class_ids
    c, e = jax.tree.leaves(source)[0].shape[:2]
    _check_stream(c, e, n, self.train_per_class, self.heldout_per_class)
    return _class_stream(key, source, class_ids, n, self.train_per_class,
                         self.heldout_per_class, self.shuffle_examples)


@functools.partial(jax.jit, static_argnums=(3, 4, 5, 6))
def _class_stream(key, source, class_ids, n, p, h, shuffle):
  c, e = jax.tree.leaves(source)[0].shape[:2]
  spec = describe_class_stream(key, c, e, n, p, h, shuffle)
  return materialise(spec, source, class_ids)


@struct.dataclass
class SineData:
  """A pool of sine waves (meta-training), or none (fresh waves)."""

  amplitude: Optional[jax.Array] = None
  phase: Optional[jax.Array] = None


@dataclasses.dataclass(frozen=True)
class SineStreams:
  """OML's incremental sine waves (see the module docstring).

  Attributes:
    functions: waves per trajectory, and one-hot slots of the input.
    steps_per_function: online steps per wave.
    batch: B, points per online step.
    remember_per_function: points of each wave in the remembered set.
    heldout_per_function: held-out points per wave at meta-test.
    pool: meta-training waves (0: fresh ones).
    pool_seed: the pool's seed.
  """

  functions: int = 10
  steps_per_function: int = 40
  batch: int = 32
  remember_per_function: int = 32
  heldout_per_function: int = 32
  pool: int = 400
  pool_seed: int = 12345
  amplitude: tuple[float, float] = (0.1, 5.0)
  phase: tuple[float, float] = (0.0, math.pi)
  x_range: tuple[float, float] = (-5.0, 5.0)
  loss = "mse"

  @property
  def step_batch(self) -> int:
    return self.batch

  def input_shape(self) -> tuple[int, ...]:
    return (1 + self.functions,)

  def load(self, split: str) -> SineData:
    if split == "train" and self.pool:
      ka, kp = jax.random.split(jax.random.key(self.pool_seed))
      return SineData(jax.random.uniform(ka, (self.pool,), minval=self.amplitude[0],
                                         maxval=self.amplitude[1]),
                      jax.random.uniform(kp, (self.pool,), minval=self.phase[0],
                                         maxval=self.phase[1]))
    return SineData()

  def num_classes(self, data: SineData) -> int:
    return self.functions

  def check(self, data: SineData, max_classes: int) -> None:
    if max_classes > self.functions:
      raise errors.ConfigError(f"config.eval.classes: {max_classes} waves, but inputs "
                               f"have config.sine.functions={self.functions} slots")

  def _waves(self, key, data, n):
    if data.amplitude is not None:
      picked = jax.random.choice(key, data.amplitude.shape[0], (n,), replace=False)
      return data.amplitude[picked], data.phase[picked], picked
    ka, kp = jax.random.split(key)
    amp = jax.random.uniform(ka, (n,), minval=self.amplitude[0], maxval=self.amplitude[1])
    phase = jax.random.uniform(kp, (n,), minval=self.phase[0], maxval=self.phase[1])
    return amp, phase, jnp.full((n,), -1, jnp.int32)

  def _points(self, key, amp_N, phase_N, shape):
    """Inputs ``[N, *shape, 1 + functions]`` and targets ``[N, *shape, 1]``."""
    n = amp_N.shape[0]
    x = jax.random.uniform(key, (n,) + shape + (1,), minval=self.x_range[0],
                           maxval=self.x_range[1])
    expand = (slice(None),) + (None,) * (len(shape) + 1)
    y = amp_N[expand] * jnp.sin(x - phase_N[expand])
    slot = jax.nn.one_hot(jnp.arange(n), self.functions)[(slice(None),)
                                                         + (None,) * len(shape)]
    return jnp.concatenate([x, jnp.broadcast_to(slot, x.shape[:-1] + (self.functions,))],
                           -1), y

  def trajectory(self, key: jax.Array, data: SineData) -> Trajectory:
    k_w, k_t, k_r = jax.random.split(key, 3)
    amp, phase, _ = self._waves(k_w, data, self.functions)
    x, y = self._points(k_t, amp, phase, (self.steps_per_function, self.batch))
    rx, ry = self._points(k_r, amp, phase, (self.remember_per_function,))
    d = x.shape[-1]
    return Trajectory(x=x.reshape(-1, self.batch, d), y=y.reshape(-1, self.batch, 1),
                      remember_x=rx.reshape(-1, d), remember_y=ry.reshape(-1, 1),
                      classes=jnp.zeros((0,), jnp.int32))

  def iid_batch(self, key: jax.Array, data: SineData, size: int
                ) -> tuple[jax.Array, jax.Array]:
    k_w, k_p = jax.random.split(key)
    amp, phase, _ = self._waves(k_w, data, self.functions)
    per = -(-size // self.functions)
    x, y = self._points(k_p, amp, phase, (per,))
    return x.reshape(-1, x.shape[-1])[:size], y.reshape(-1, 1)[:size]

  def stream(self, key: jax.Array, source: Any, n: int,
             class_ids: Optional[jax.Array] = None) -> Stream:
    """``n`` fresh waves (``source`` is unused: meta-test waves are never pooled)."""
    del source, class_ids
    k_w, k_t, k_h = jax.random.split(key, 3)
    amp, phase, ids = self._waves(k_w, SineData(), n)
    x, y = self._points(k_t, amp, phase, (self.steps_per_function, self.batch))
    hx, hy = self._points(k_h, amp, phase, (self.heldout_per_function,))
    return Stream(x=x, y=y, heldout_x=hx, heldout_y=hy, class_ids=ids)


def make(config) -> Any:
  """The stream family of ``config.task`` ('omniglot' or 'sine')."""
  s = config.stream
  if config.task == "omniglot":
    return OmniglotStreams(
        traj_classes=s.traj_classes, traj_per_class=s.traj_per_class,
        remember=s.remember, train_per_class=s.train_per_class,
        heldout_per_class=s.heldout_per_class,
        shuffle_examples=bool(s.shuffle_examples), data=config.data)
  if config.task == "sine":
    q = config.sine
    return SineStreams(functions=q.functions, steps_per_function=q.steps_per_function,
                       batch=q.batch, remember_per_function=q.remember_per_function,
                       heldout_per_function=q.heldout_per_function, pool=q.pool)
  raise errors.ConfigError(f"config.task={config.task!r}: must be 'omniglot' or 'sine'")
