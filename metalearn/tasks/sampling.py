"""Few-shot episodes sampled on the device from a class-indexed uint8 image array.

The split lives on the device as ``images_CxExHxWxCh`` uint8 (C classes, E examples per
class). One episode draws ``ways`` distinct classes and, from each, ``shots + queries``
distinct examples; the first ``shots`` go to the support set, the rest to the query
set, so support and query never share an image. Everything is ``jax.random`` plus one
gather, jit-compiled, with no Python loop per episode; a meta-batch of T episodes is a
``vmap`` over T keys.

Sampling without replacement uses ``lax.top_k`` of uniform random numbers (the indices of the k
largest of C random numbers are a uniformly random ordered k-subset): one O(C) pass,
cheaper on CPU than ``jax.random.choice(replace=False)`` or a full permutation. The
order top_k returns is itself uniformly random, so label ``i`` is class
``classes[i]``: the label-to-class assignment is a uniformly random permutation per
episode. Support and query are class-major (labels ``0,0,..,1,1,..``).

Images are gathered as uint8 and converted to float32 in ``[0, 1]`` afterwards, so
only the episode's pixels are converted.

``rotate`` turns each class of an episode by its own uniformly random multiple of 90°
(counter-clockwise, as ``np.rot90``), all of its support and query images alike: the
per-episode augmentation of MAML's reference code (cbfinn/maml ``data_generator.py``
rotates the classes of meta-training and of meta-test episodes this way), as opposed
to materialising the rotations as extra classes of a split (``omniglot.py``), where one
episode can hold two turns of the same character.

``within_alphabet`` draws every class of an episode from one alphabet, as in Lake et
al. (2015)'s 20-way one-shot test: first an alphabet, uniformly among the alphabets of
the split with at least ``ways`` classes (the others are never drawn), then ``ways``
distinct classes of it as above (top_k of uniforms, non-members masked out). Classes
are counted as the split holds them: where rotations are materialised as classes
(Omniglot meta-training), the four turns of a character are four classes of its
alphabet, so an alphabet of 14 characters has 56 classes; the evaluation splits hold
unrotated characters unless ``eval_rotations`` is set, as in Lake's protocol. Without
the option, no operation of the sampler changes: its episodes are bit-identical to
those drawn before the option existed (``tests/within_alphabet_test.py``).
"""

import dataclasses
import functools
import logging

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from metalearn import errors
from metalearn.tasks.class_images import ClassImages
from metalearn.tasks.episode import Episode

_log = logging.getLogger(__name__)


@struct.dataclass
class ImageData:
  """A split on the device: the pytree a jitted step closes over or takes as input.

  Attributes:
    images: ``[C, E, H, W, Ch]`` uint8.
    class_ids: ``[C]`` int32 global class ids.
    alphabet_ids: ``[C]`` int32 alphabet of each class, numbered ``0..A-1`` within the
      split (so that a count per alphabet is a ``segment_sum`` of static size), or
      None for splits without alphabets.
  """

  images: jax.Array
  class_ids: jax.Array
  alphabet_ids: jax.Array | None = None


def to_device(split: ClassImages, device: jax.Device | None = None) -> ImageData:
  """Copies a split's images, class ids and alphabets (if any) to ``device`` (default
  device if None)."""
  alphabets = None
  if split.alphabet_ids is not None:
    _, dense = np.unique(split.alphabet_ids, return_inverse=True)
    alphabets = jax.device_put(dense.reshape(-1).astype(np.int32), device)
  return ImageData(images=jax.device_put(split.images, device),
                   class_ids=jax.device_put(split.class_ids.astype(np.int32), device),
                   alphabet_ids=alphabets)


def check_alphabets(alphabet_ids: np.ndarray | None, *, ways: int,
                    where: str = "the split") -> np.ndarray:
  """The alphabets within-alphabet episodes of ``ways`` classes can be drawn from.

  Args:
    alphabet_ids: ``[C]`` alphabet of each class (concrete), or None.
    ways: classes per episode.
    where: names the data for messages.

  Returns:
    The sorted ids of the alphabets with at least ``ways`` classes.

  Raises:
    DataError: no alphabets, or none with ``ways`` classes.
  """
  if alphabet_ids is None:
    raise errors.DataError(
        f"within-alphabet episodes need the alphabet of each class; {where} has none "
        "(only Omniglot splits carry alphabets)")
  ids, counts = np.unique(np.asarray(alphabet_ids), return_counts=True)
  if not (counts >= ways).any():
    raise errors.DataError(
        f"within-alphabet episodes of ways={ways}: no alphabet of {where} has {ways} "
        f"classes (its {len(ids)} alphabets have {', '.join(map(str, sorted(counts)))}"
        " classes)")
  return ids[counts >= ways]


def check_episode_fits(shape: tuple[int, ...], *, ways: int, shots: int,
                       queries: int) -> None:
  """Raises if episodes of this size cannot be drawn from images of ``shape``.

  Args:
    shape: ``(C, E, H, W, Ch)`` of the split's image array.
    ways: classes per episode.
    shots: support examples per class.
    queries: query examples per class.

  Raises:
    ConfigError: non-positive ways or shots, negative queries.
    DataError: more ways than classes or more shots + queries than examples.
  """
  _check_sizes(ways=ways, shots=shots, queries=queries)
  if len(shape) != 5:
    raise errors.DataError(
        f"images must be [classes, examples, H, W, channels], got shape {tuple(shape)}")
  num_classes, num_examples = shape[:2]
  if ways > num_classes:
    raise errors.DataError(
        f"ways={ways} is more than the {num_classes} classes of the split "
        f"({num_classes} classes x {num_examples} examples)")
  if shots + queries > num_examples:
    raise errors.DataError(
        f"shots={shots} + queries={queries} = {shots + queries} is more than the "
        f"{num_examples} examples per class of the split "
        f"({num_classes} classes x {num_examples} examples)")


def _check_sizes(*, ways: int, shots: int, queries: int) -> None:
  for name, value, low in (("ways", ways, 1), ("shots", shots, 1),
                           ("queries", queries, 0)):
    if not isinstance(value, (int, np.integer)) or value < low:
      raise errors.ConfigError(f"{name}={value!r}: must be an integer >= {low}")


def _random_subset(key: jax.Array, shape: tuple[int, ...], k: int) -> jax.Array:
  """Indices of k distinct entries of the last axis, in uniformly random order."""
  # float32 uniforms take 2.3 ms for top-5 of 32 x 4400 on CPU; uint32 / int32 bits
  # took 30-40 ms (no fast integer top_k). A uniform has 2^23 values; a tie at the
  # k-th place (odds about C / 2^23 per episode) favours the lower index.
  _, indices = jax.lax.top_k(jax.random.uniform(key, shape), k)
  return indices


def _classes_within_alphabet(key: jax.Array, alphabet_C: jax.Array,
                             ways: int) -> jax.Array:
  """``ways`` distinct classes of one alphabet, in uniformly random order; the alphabet
  uniform among those with at least ``ways`` classes (``alphabet_C`` in ``[0, C)``)."""
  num_classes = alphabet_C.shape[0]
  key_alphabet, key_classes = jax.random.split(key)
  # At most C alphabets: a count per alphabet id of static size. It depends on no key,
  # so under vmap it is computed once per meta-batch.
  count_A = jax.ops.segment_sum(jnp.ones_like(alphabet_C), alphabet_C,
                                num_segments=num_classes)
  alphabet = jax.random.categorical(
      key_alphabet, jnp.where(count_A >= ways, 0.0, -jnp.inf))
  u_C = jax.random.uniform(key_classes, (num_classes,))
  _, classes_N = jax.lax.top_k(jnp.where(alphabet_C == alphabet, u_C, -1.0), ways)
  return classes_N


def _rotate_classes(key: jax.Array, x_NxMxHxWxCh: jax.Array) -> jax.Array:
  """Turns each class (axis 0) by its own uniformly random number of quarter turns."""
  ways = x_NxMxHxWxCh.shape[0]
  turns_N = jax.random.randint(key, (ways,), 0, 4)
  turned_4xNxMxHxWxCh = jnp.stack([jnp.rot90(x_NxMxHxWxCh, q, axes=(2, 3))
                                   for q in range(4)])
  return turned_4xNxMxHxWxCh[turns_N, jnp.arange(ways)]


def _one_episode(key: jax.Array, images: jax.Array, class_ids: jax.Array | None,
                 ways: int, shots: int, queries: int, rotate: bool = False,
                 alphabet_ids: jax.Array | None = None) -> Episode:
  num_classes, num_examples = images.shape[:2]
  image_shape = images.shape[2:]
  key_classes, key_examples = jax.random.split(key)
  if alphabet_ids is None:
    classes_N = _random_subset(key_classes, (num_classes,), ways)
  else:
    classes_N = _classes_within_alphabet(key_classes, alphabet_ids, ways)
  examples_NxM = _random_subset(key_examples, (ways, num_examples), shots + queries)
  # One gather from the flattened [C*E, ...] array was 1.5x faster than 2-D indexing.
  flat_images = images.reshape((num_classes * num_examples,) + image_shape)
  x_NxMxHxWxCh = flat_images[classes_N[:, None] * num_examples + examples_NxM]
  if rotate:  # Its own stream, so that rotate=False episodes are unchanged.
    x_NxMxHxWxCh = _rotate_classes(jax.random.fold_in(key, 2), x_NxMxHxWxCh)
  x_NxMxHxWxCh = x_NxMxHxWxCh.astype(jnp.float32) * (1.0 / 255.0)
  labels_N = jnp.arange(ways, dtype=jnp.int32)
  ids_N = classes_N if class_ids is None else class_ids[classes_N]
  return Episode(
      support_x=x_NxMxHxWxCh[:, :shots].reshape((ways * shots,) + image_shape),
      support_y=jnp.repeat(labels_N, shots),
      query_x=x_NxMxHxWxCh[:, shots:].reshape((ways * queries,) + image_shape),
      query_y=jnp.repeat(labels_N, queries),
      class_ids=ids_N.astype(jnp.int32))


@functools.partial(jax.jit,
                   static_argnames=("num_tasks", "ways", "shots", "queries", "rotate"))
def _sample_batch(key, images, class_ids, num_tasks, ways, shots, queries, rotate,
                  alphabet_ids=None):
  keys = jax.random.split(key, num_tasks)
  return jax.vmap(_one_episode, in_axes=(0, None, None, None, None, None, None, None))(
      keys, images, class_ids, ways, shots, queries, rotate, alphabet_ids)


@functools.partial(jax.jit, static_argnames=("ways", "shots", "queries", "rotate"))
def _sample_one(key, images, class_ids, ways, shots, queries, rotate,
                alphabet_ids=None):
  return _one_episode(key, images, class_ids, ways, shots, queries, rotate,
                      alphabet_ids)


def sample_episodes(key: jax.Array, images_CxExHxWxCh: jax.Array, num_tasks: int, *,
                    ways: int, shots: int, queries: int,
                    class_ids: jax.Array | None = None, rotate: bool = False,
                    alphabet_ids: jax.Array | None = None) -> Episode:
  """A meta-batch of ``num_tasks`` independent N-way K-shot episodes.

  Can be called inside a jitted function (the sizes are static Python ints).

  Args:
    key: PRNG key; the same key gives the same episodes.
    images_CxExHxWxCh: the split, uint8.
    num_tasks: T, episodes in the meta-batch.
    ways: N, classes per episode.
    shots: K, support examples per class.
    queries: Q, query examples per class.
    class_ids: ``[C]`` global ids reported in ``Episode.class_ids``; None reports the
      row indices of the classes.
    rotate: turn each class by its own random multiple of 90° (square images only).
    alphabet_ids: ``[C]`` alphabet of each class in ``[0, C)`` (``ImageData``): draw
      every episode within one alphabet (see the module docstring); None: classes
      from the whole split. At least one alphabet must have N classes
      (``check_alphabets``; not checkable here under jit).

  Returns:
    Episode with ``support_x [T, N*K, H, W, Ch]`` float32 in [0, 1],
    ``support_y [T, N*K]`` int32, ``query_x [T, N*Q, H, W, Ch]``,
    ``query_y [T, N*Q]``, ``class_ids [T, N]`` int32 (label i is class
    ``class_ids[t, i]``).

  Raises:
    DataError: the split has fewer than N classes or fewer than K+Q examples per class.
  """
  _check_images(images_CxExHxWxCh, ways=ways, shots=shots, queries=queries,
                rotate=rotate)
  if not isinstance(num_tasks, (int, np.integer)) or num_tasks < 1:
    raise errors.ConfigError(f"num_tasks={num_tasks!r}: must be an integer >= 1")
  _check_alphabet_shape(images_CxExHxWxCh, alphabet_ids)
  return _sample_batch(key, images_CxExHxWxCh, class_ids, int(num_tasks), int(ways),
                       int(shots), int(queries), bool(rotate), alphabet_ids)


def sample_episode(key: jax.Array, images_CxExHxWxCh: jax.Array, *, ways: int,
                   shots: int, queries: int, class_ids: jax.Array | None = None,
                   rotate: bool = False,
                   alphabet_ids: jax.Array | None = None) -> Episode:
  """One episode: as ``sample_episodes`` without the leading task axis."""
  _check_images(images_CxExHxWxCh, ways=ways, shots=shots, queries=queries,
                rotate=rotate)
  _check_alphabet_shape(images_CxExHxWxCh, alphabet_ids)
  return _sample_one(key, images_CxExHxWxCh, class_ids, int(ways), int(shots),
                     int(queries), bool(rotate), alphabet_ids)


def _check_alphabet_shape(images, alphabet_ids):
  if alphabet_ids is not None and tuple(alphabet_ids.shape) != tuple(images.shape[:1]):
    raise errors.DataError(f"alphabet_ids of shape {tuple(alphabet_ids.shape)} for "
                           f"{images.shape[0]} classes")


def _check_images(images, *, ways, shots, queries, rotate=False):
  check_episode_fits(tuple(images.shape), ways=ways, shots=shots, queries=queries)
  if images.dtype != jnp.uint8:
    raise errors.DataError(f"images must be uint8, got {images.dtype}")
  if rotate and images.shape[2] != images.shape[3]:
    raise errors.DataError(f"rotating classes needs square images, got "
                           f"{images.shape[2]}x{images.shape[3]}")


@dataclasses.dataclass(frozen=True)
class ImageTaskFamily:
  """N-way K-shot classification episodes from one split: a static, hashable spec.

  Attributes:
    ways: N, classes per episode.
    shots: K, support examples per class.
    queries: Q, query examples per class.
    rotate: turn each class of an episode by its own random multiple of 90°.
    within_alphabet: draw all classes of an episode from one alphabet, uniform among
      the alphabets with at least ``ways`` classes (the data must carry alphabets).
  """

  ways: int
  shots: int
  queries: int
  rotate: bool = False
  within_alphabet: bool = False

  def __post_init__(self):
    _check_sizes(ways=self.ways, shots=self.shots, queries=self.queries)

  def check(self, data: ImageData | ClassImages | jax.Array) -> None:
    """Raises DataError now if ``data`` cannot supply these episodes."""
    images, _ = _unpack(data)
    _check_images(images, ways=self.ways, shots=self.shots, queries=self.queries,
                  rotate=self.rotate)
    if self.within_alphabet:
      alphabets = getattr(data, "alphabet_ids", None)
      kept = check_alphabets(None if alphabets is None else np.asarray(alphabets),
                             ways=self.ways, where=getattr(data, "name", "the split"))
      total = len(np.unique(np.asarray(alphabets)))
      if len(kept) < total:
        _log.info("within-alphabet %d-way episodes: %d of %d alphabets have %d "
                  "classes or more; %d with fewer are never drawn", self.ways,
                  len(kept), total, self.ways, total - len(kept))

  def sample(self, key: jax.Array, data: ImageData | jax.Array,
             num_tasks: int) -> Episode:
    """``num_tasks`` episodes with a leading task axis (see ``sample_episodes``).

    Args:
      key: PRNG key.
      data: an ``ImageData`` (its class ids are reported) or a bare uint8 image array.
      num_tasks: T.

    Returns:
      The batched Episode.
    """
    images, class_ids = _unpack(data)
    return sample_episodes(key, images, num_tasks, ways=self.ways, shots=self.shots,
                           queries=self.queries, class_ids=class_ids,
                           rotate=self.rotate, alphabet_ids=self._alphabets(data))

  def sample_one(self, key: jax.Array, data: ImageData | jax.Array) -> Episode:
    """One episode without a task axis."""
    images, class_ids = _unpack(data)
    return sample_episode(key, images, ways=self.ways, shots=self.shots,
                          queries=self.queries, class_ids=class_ids, rotate=self.rotate,
                          alphabet_ids=self._alphabets(data))

  def _alphabets(self, data) -> jax.Array | None:
    """The alphabets episodes are drawn within (None without ``within_alphabet``)."""
    if not self.within_alphabet:
      return None
    alphabets = data.alphabet_ids if isinstance(data, ImageData) else None
    if alphabets is None:
      raise errors.DataError(
          "within-alphabet episodes need the alphabet of each class: pass an "
          "ImageData with alphabet_ids (sampling.to_device of an Omniglot split)")
    return alphabets


def _unpack(data):
  if isinstance(data, (ImageData, ClassImages)):
    return data.images, data.class_ids
  return data, None
