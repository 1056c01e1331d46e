"""Property tests of the continual streams: every example once, class by class.

Pixel (0, 0) of every synthetic image holds its class row and pixel (0, 1) its example
index, so each image a stream presents tells which (class, example) it is.
"""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metalearn import errors
from metalearn.continual import stream as stream_lib
from metalearn.tasks import sampling

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OMNIGLOT = os.path.join(REPO, "..", "shared", "data", "omniglot")


def _coded(num_classes, num_examples):
  images = np.zeros((num_classes, num_examples, 3, 3, 1), np.uint8)
  images[:, :, 0, 0, 0] = np.arange(num_classes)[:, None]
  images[:, :, 0, 1, 0] = np.arange(num_examples)[None, :]
  return sampling.ImageData(images=jnp.asarray(images),
                            class_ids=jnp.asarray(100 + 3 * np.arange(num_classes),
                                                  jnp.int32))


def _decode(x):
  pixels = np.rint(np.asarray(x) * 255).astype(int)
  return pixels[..., 0, 0, 0], pixels[..., 0, 1, 0]


def test_stream_presents_every_example_once_in_class_incremental_order():
  rng = np.random.default_rng(0)
  c, e = 23, 9  # One split; the stream's sizes vary (each compiles once).
  data = _coded(c, e)
  for trial in range(12):
    n = int(rng.integers(1, c + 1))
    p = int(rng.integers(1, e + 1))
    h = int(rng.integers(0, e - p + 1))
    shuffle = bool(trial % 2)
    family = stream_lib.OmniglotStreams(train_per_class=p, heldout_per_class=h,
                                        shuffle_examples=shuffle)
    s = family.stream(jax.random.key(trial), data, n)
    assert s.x.shape == (n, p, 1, 3, 3, 1) and s.heldout_x.shape == (n, h, 3, 3, 1)
    cls, ex = _decode(s.x[:, :, 0])
    order = cls[:, 0]
    # Classes: n distinct ones, each one block of p consecutive steps, in that order.
    assert len(set(order.tolist())) == n and set(order.tolist()) <= set(range(c))
    assert (cls == order[:, None]).all()
    flat = list(zip(cls.ravel().tolist(), ex.ravel().tolist()))
    assert len(flat) == len(set(flat)) == n * p  # Every example exactly once.
    np.testing.assert_array_equal(s.y[..., 0], np.repeat(np.arange(n)[:, None], p, 1))
    np.testing.assert_array_equal(s.class_ids, 100 + 3 * order)
    hcls, hex_ = _decode(s.heldout_x)
    assert (hcls == order[:, None]).all()
    np.testing.assert_array_equal(s.heldout_y, np.repeat(np.arange(n)[:, None], h, 1))
    for i in range(n):  # Held-out examples are never learned, and distinct.
      assert not set(hex_[i].tolist()) & set(ex[i].tolist())
      assert len(set(hex_[i].tolist())) == h
    if not shuffle:  # ANML's split: the first p learned, the last h held out.
      assert (ex == np.arange(p)).all() and (hex_ == np.arange(e - h, e)).all()


def test_stream_from_features_matches_the_images():
  data = _coded(9, 6)
  family = stream_lib.OmniglotStreams(train_per_class=4, heldout_per_class=2)
  feats = (data.images.astype(jnp.float32) / 255.0).reshape(9, 6, -1)
  a = family.stream(jax.random.key(3), data, 7)
  b = family.stream(jax.random.key(3), feats, 7, data.class_ids)
  np.testing.assert_array_equal(a.x.reshape(b.x.shape), b.x)
  np.testing.assert_array_equal(a.heldout_x.reshape(b.heldout_x.shape), b.heldout_x)
  np.testing.assert_array_equal(a.class_ids, b.class_ids)


def test_longer_stream_starts_with_the_shorter_one():
  # The compute study compares a stream with longer ones on the same first classes.
  data = _coded(20, 4)
  family = stream_lib.OmniglotStreams(train_per_class=3, heldout_per_class=1)
  short = family.stream(jax.random.key(5), data, 6)
  long = family.stream(jax.random.key(5), data, 15)
  np.testing.assert_array_equal(short.class_ids, long.class_ids[:6])


def test_trajectory_is_distinct_examples_of_distinct_classes():
  data = _coded(15, 8)
  family = stream_lib.OmniglotStreams(traj_classes=3, traj_per_class=5, remember=40)
  trajectory = jax.jit(family.trajectory)
  for seed in range(10):
    t = trajectory(jax.random.key(seed), data)
    assert t.x.shape == (15, 1, 3, 3, 1) and t.y.shape == (15, 1)
    cls, ex = _decode(t.x[:, 0])
    np.testing.assert_array_equal(cls, t.y[:, 0])  # Labels are class rows.
    blocks = cls.reshape(3, 5)
    assert (blocks == blocks[:, :1]).all() and len(set(blocks[:, 0].tolist())) == 3
    np.testing.assert_array_equal(blocks[:, 0], t.classes)
    for i in range(3):
      assert len(set(ex.reshape(3, 5)[i].tolist())) == 5
    rcls, _ = _decode(t.remember_x)
    np.testing.assert_array_equal(rcls, t.remember_y)


def test_sine_stream_visits_waves_one_after_another():
  family = stream_lib.SineStreams(functions=4, steps_per_function=3, batch=5,
                                  heldout_per_function=7, pool=0)
  s = jax.jit(family.stream, static_argnums=2)(jax.random.key(0), None, 3)
  assert s.x.shape == (3, 3, 5, 5) and s.y.shape == (3, 3, 5, 1)
  slots = np.asarray(s.x[..., 1:])
  for i in range(3):  # Wave i carries one-hot slot i in every step and held-out point.
    np.testing.assert_array_equal(slots[i], np.eye(4)[i] + np.zeros((3, 5, 4)))
    np.testing.assert_array_equal(np.asarray(s.heldout_x[i, :, 1:]),
                                  np.eye(4)[i] + np.zeros((7, 4)))
  # One wave per block: y = a sin(x - phase) with the block's own a and phase.
  for i in range(3):
    x = np.concatenate([np.asarray(s.x[i, ..., 0]).ravel(),
                        np.asarray(s.heldout_x[i, :, 0])])
    y = np.concatenate([np.asarray(s.y[i, ..., 0]).ravel(),
                        np.asarray(s.heldout_y[i, :, 0])])
    design = np.stack([np.sin(x), np.cos(x)], 1)  # a sin(x − φ) = A sin x + B cos x
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    np.testing.assert_allclose(design @ coef, y, atol=1e-4)
  t = jax.jit(family.trajectory)(jax.random.key(1), family.load("train"))
  assert t.x.shape == (12, 5, 5) and t.remember_x.shape == (4 * 32, 5)
  np.testing.assert_array_equal(np.argmax(np.asarray(t.x[:, 0, 1:]), -1),
                                np.repeat(np.arange(4), 3))


def test_bad_stream_sizes_name_the_problem():
  with pytest.raises(errors.ConfigError, match="a stream of 30 classes"):
    stream_lib.describe_class_stream(jax.random.key(0), 20, 5, 30, 3, 1)
  with pytest.raises(errors.ConfigError, match="train_per_class=5"):
    stream_lib.describe_class_stream(jax.random.key(0), 20, 5, 3, 5, 1)
  with pytest.raises(errors.ConfigError, match="config.stream.traj_classes=1"):
    stream_lib.OmniglotStreams(traj_per_class=30).trajectory(jax.random.key(0),
                                                             _coded(5, 20))


@pytest.mark.skipif(not os.path.isdir(OMNIGLOT),
                    reason=f"real Omniglot is not at {OMNIGLOT}")
def test_anml_split_is_963_and_660_disjoint_characters():
  from experiments import continual_omniglot  # pylint: disable=g-import-not-at-top
  c = continual_omniglot.get_config("smoke")
  c.data.path = OMNIGLOT
  train = stream_lib.load_anml_split(c.data, "train")
  test = stream_lib.load_anml_split(c.data, "test")
  assert (train.num_classes, test.num_classes) == (963, 660)
  assert train.images.shape[1:] == (20, 28, 28, 1)
  ids = np.concatenate([train.class_ids, test.class_ids]) // 4
  np.testing.assert_array_equal(np.sort(ids), np.arange(1623))
  assert test.class_names[0].split("/")[0] != test.class_names[-1].split("/")[0]
