"""Property tests of the on-device episode sampler.

Pixel (0, 0) of every image holds its class row and pixel (0, 1) its example index, so
each sampled image tells which (class, example) it is.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metalearn import errors
from metalearn.tasks import sampling

NUM_CLASSES, NUM_EXAMPLES = 12, 10


def _coded_images(num_classes=NUM_CLASSES, num_examples=NUM_EXAMPLES):
  images = np.zeros((num_classes, num_examples, 3, 3, 1), np.uint8)
  images[:, :, 0, 0, 0] = np.arange(num_classes)[:, None]
  images[:, :, 0, 1, 0] = np.arange(num_examples)[None, :]
  images[:, :, 2, 2, 0] = 255
  return images


def _decode(x):
  """(class row, example index) of each image in ``x[..., H, W, 1]`` float32."""
  pixels = np.rint(np.asarray(x) * 255).astype(int)
  return pixels[..., 0, 0, 0], pixels[..., 0, 1, 0]


WAYS, SHOTS, QUERIES, TASKS = 5, 2, 3, 2000
CLASS_IDS = (1000 + 7 * np.arange(NUM_CLASSES)).astype(np.int32)


def _sample(key, class_ids=CLASS_IDS):
  # Every test uses these static sizes, so the sampler compiles once per session.
  return sampling.sample_episodes(
      key, jnp.asarray(_coded_images()), TASKS, ways=WAYS, shots=SHOTS,
      queries=QUERIES, class_ids=None if class_ids is None else jnp.asarray(class_ids))


@pytest.fixture(scope="module")
def episodes():
  return jax.device_get(_sample(jax.random.key(1)))


def test_shapes_dtypes_and_range(episodes):
  ep = episodes
  s, q = WAYS * SHOTS, WAYS * QUERIES
  assert ep.support_x.shape == (TASKS, s, 3, 3, 1) and ep.support_x.dtype == np.float32
  assert ep.support_y.shape == (TASKS, s) and ep.support_y.dtype == np.int32
  assert ep.query_x.shape == (TASKS, q, 3, 3, 1) and ep.query_x.dtype == np.float32
  assert ep.query_y.shape == (TASKS, q) and ep.query_y.dtype == np.int32
  assert ep.class_ids.shape == (TASKS, WAYS) and ep.class_ids.dtype == np.int32
  assert ep.support_x.min() >= 0.0 and ep.support_x.max() == 1.0
  one = sampling.sample_episode(jax.random.key(0), jnp.asarray(_coded_images()),
                                ways=WAYS, shots=SHOTS, queries=QUERIES)
  assert one.support_x.shape == (s, 3, 3, 1) and one.class_ids.shape == (WAYS,)


def test_episode_invariants(episodes):
  ep = episodes
  s_cls, s_ex = _decode(ep.support_x)
  q_cls, q_ex = _decode(ep.query_x)
  ids = ep.class_ids
  # No class twice in an episode, and only the split's classes.
  assert (np.diff(np.sort(ids, axis=1), axis=1) > 0).all()
  assert np.isin(ids, CLASS_IDS).all()
  # Label i <-> class class_ids[i], in support and query alike.
  np.testing.assert_array_equal(CLASS_IDS[s_cls], np.take_along_axis(ids, ep.support_y, 1))
  np.testing.assert_array_equal(CLASS_IDS[q_cls], np.take_along_axis(ids, ep.query_y, 1))
  np.testing.assert_array_equal(np.sort(ep.support_y, 1)[0], np.repeat(np.arange(WAYS), SHOTS))
  np.testing.assert_array_equal(np.sort(ep.query_y, 1)[0], np.repeat(np.arange(WAYS), QUERIES))
  assert (np.sort(ep.support_y, 1) == np.sort(ep.support_y, 1)[:1]).all()
  # No example twice in an episode: this also makes support and query disjoint.
  drawn = np.concatenate([s_cls * NUM_EXAMPLES + s_ex, q_cls * NUM_EXAMPLES + q_ex], 1)
  assert (np.diff(np.sort(drawn, axis=1), axis=1) > 0).all()


def test_without_class_ids_reports_rows():
  ep = _sample(jax.random.key(2), class_ids=None)
  s_cls, _ = _decode(ep.support_x)
  np.testing.assert_array_equal(np.take_along_axis(
      np.asarray(ep.class_ids), np.asarray(ep.support_y), 1), s_cls)


def test_same_key_same_episode_different_key_different(episodes):
  a = jax.device_get(_sample(jax.random.key(1)))
  c = jax.device_get(_sample(jax.random.key(4)))
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(episodes)):
    np.testing.assert_array_equal(x, y)
  assert not np.array_equal(a.query_x, c.query_x)
  # Tasks of one meta-batch differ from each other.
  assert len({tuple(r) for r in a.class_ids[:20].tolist()}) > 10


def _chi_square(counts):
  counts = np.asarray(counts, float)
  expected = counts.sum() / counts.size
  return float(((counts - expected) ** 2 / expected).sum())


def test_labels_classes_and_examples_are_uniform(episodes):
  ids = episodes.class_ids
  # The label (position) of a class when it is drawn is uniform over the 5 labels;
  # a sampler that sorted its classes would fail this.
  for row in (0, 5, 11):
    position = np.argwhere(ids == CLASS_IDS[row])[:, 1]
    assert len(position) > 500
    # 4 degrees of freedom: P(chi2 > 25) ~ 5e-5.
    assert _chi_square(np.bincount(position, minlength=WAYS)) < 25
  # Every class equally often: 11 degrees of freedom, P(chi2 > 40) ~ 3e-5.
  rows = np.searchsorted(CLASS_IDS, ids)
  assert _chi_square(np.bincount(rows.ravel(), minlength=NUM_CLASSES)) < 40
  # Every example equally often, in support and in query: 9 dof, P(chi2 > 35) ~ 6e-5.
  for x in (episodes.support_x, episodes.query_x):
    _, ex = _decode(x)
    assert _chi_square(np.bincount(ex.ravel(), minlength=NUM_EXAMPLES)) < 35


def test_meta_batch_under_jit_and_family_is_static():
  family = sampling.ImageTaskFamily(ways=5, shots=1, queries=15)
  assert hash(family) == hash(sampling.ImageTaskFamily(5, 1, 15))
  images = jnp.asarray(_coded_images(num_examples=20))
  data = sampling.ImageData(images, jnp.arange(NUM_CLASSES, dtype=jnp.int32))
  traces = []

  @jax.jit
  def step(key, data):
    traces.append(1)
    ep = family.sample(key, data, 32)
    return ep.query_x.mean(), ep.class_ids

  for i in range(3):
    _, ids = step(jax.random.key(i), data)
  assert len(traces) == 1 and ids.shape == (32, 5)
  # As a static argument of jit.
  f = jax.jit(lambda key, data, fam: fam.sample(key, data, 2).support_y,
              static_argnums=2)
  assert f(jax.random.key(0), data, family).shape == (2, 5)


def test_too_many_ways_or_shots_raise_one_line_data_error():
  images = jnp.asarray(_coded_images())
  with pytest.raises(errors.DataError, match=r"ways=13 .* 12 classes") as e:
    sampling.sample_episodes(jax.random.key(0), images, 2, ways=13, shots=1, queries=1)
  assert "\n" not in str(e.value)
  with pytest.raises(errors.DataError,
                     match=r"shots=5 \+ queries=6 = 11 .* 10 examples") as e:
    sampling.sample_episode(jax.random.key(0), images, ways=2, shots=5, queries=6)
  assert "\n" not in str(e.value)
  family = sampling.ImageTaskFamily(ways=2, shots=10, queries=1)
  with pytest.raises(errors.DataError, match="shots=10"):
    family.check(sampling.ImageData(images, jnp.arange(NUM_CLASSES)))
  with pytest.raises(errors.ConfigError, match="ways=0"):
    sampling.ImageTaskFamily(ways=0, shots=1, queries=1)
  with pytest.raises(errors.DataError, match="uint8"):
    sampling.sample_episode(jax.random.key(0), images.astype(jnp.float32), ways=2,
                            shots=1, queries=1)


def _lookup_rotations(images):
  """bytes of every quarter turn of every source image -> (class, example, turns)."""
  table = {}
  for c in range(images.shape[0]):
    for e in range(images.shape[1]):
      for q in range(4):
        table[np.rot90(images[c, e], q).tobytes()] = (c, e, q)
  return table


def test_rotate_turns_each_class_as_a_whole_by_a_uniform_quarter_turn():
  # Random 4x4 images: every quarter turn of every image is a distinct array, so each
  # sampled image names its source and its turn (found with np.rot90, not the sampler).
  images = np.random.default_rng(0).integers(0, 256, (NUM_CLASSES, NUM_EXAMPLES, 4, 4, 1),
                                             dtype=np.uint8)
  table = _lookup_rotations(images)
  assert len(table) == images.shape[0] * images.shape[1] * 4
  key, tasks = jax.random.key(3), 600
  kwargs = dict(ways=WAYS, shots=SHOTS, queries=QUERIES)
  turned = jax.device_get(sampling.sample_episodes(key, jnp.asarray(images), tasks,
                                                   rotate=True, **kwargs))
  plain = jax.device_get(sampling.sample_episodes(key, jnp.asarray(images), tasks,
                                                  **kwargs))

  def decode(x):
    pixels = np.rint(np.asarray(x) * 255).astype(np.uint8)
    return np.array([table[p.tobytes()] for p in pixels.reshape((-1,) + pixels.shape[-3:])]
                    ).reshape(pixels.shape[:-3] + (3,))

  s_turned, q_turned = decode(turned.support_x), decode(turned.query_x)
  s_plain, q_plain = decode(plain.support_x), decode(plain.query_x)
  # Rotation is all that changes: the same classes and examples as rotate=False.
  np.testing.assert_array_equal(s_turned[..., :2], s_plain[..., :2])
  np.testing.assert_array_equal(q_turned[..., :2], q_plain[..., :2])
  assert (s_plain[..., 2] == 0).all() and (q_plain[..., 2] == 0).all()
  np.testing.assert_array_equal(turned.support_y, plain.support_y)
  # One turn per class of an episode, shared by its support and query images.
  turns_s = s_turned[..., 2].reshape(tasks, WAYS, SHOTS)
  turns_q = q_turned[..., 2].reshape(tasks, WAYS, QUERIES)
  per_class = turns_s[:, :, 0]
  assert (turns_s == per_class[..., None]).all() and (turns_q == per_class[..., None]).all()
  # Uniform over the four turns (3,000 classes: each count 750 ± 24 s.d.) and drawn
  # independently for the classes of an episode (equal turns 1/4 of the time).
  counts = np.bincount(per_class.ravel(), minlength=4)
  assert np.abs(counts - per_class.size / 4).max() < 5 * np.sqrt(per_class.size * 3 / 16), counts
  same = (per_class[:, 0] == per_class[:, 1]).mean()
  assert abs(same - 0.25) < 5 * np.sqrt(0.25 * 0.75 / tasks), same


def test_rotate_needs_square_images():
  images = jnp.zeros((NUM_CLASSES, NUM_EXAMPLES, 3, 4, 1), jnp.uint8)
  with pytest.raises(errors.DataError, match="square images, got 3x4"):
    sampling.ImageTaskFamily(ways=2, shots=1, queries=1, rotate=True).check(images)
  sampling.ImageTaskFamily(ways=2, shots=1, queries=1).check(images)
