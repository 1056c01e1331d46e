"""Tests of the TFDS adaptor under ``tfds.testing.mock_data`` (no download, no TF)."""

import numpy as np
import pytest
import tensorflow_datasets as tfds

from metalearn import errors
from metalearn.tasks import tfds_data


def _mock(num_examples):
  return tfds.testing.mock_data(policy=tfds.testing.MockPolicy.USE_CODE,
                                num_examples=num_examples)


def test_cifar_fs_split_is_64_16_20_and_disjoint():
  parts = {s: tfds_data.cifar_fs_labels(s) for s in ("train", "val", "test")}
  assert [len(parts[s]) for s in ("train", "val", "test")] == [64, 16, 20]
  assert sorted(x for p in parts.values() for x in p) == list(range(100))
  assert tfds_data.CIFAR100_NAMES[parts["test"][0]] == "baby"
  assert len(set(tfds_data.CIFAR100_NAMES)) == 100
  assert list(tfds_data.CIFAR100_NAMES) == sorted(tfds_data.CIFAR100_NAMES)


def test_seeded_split_is_disjoint_and_seeded():
  parts = {s: tfds_data.seeded_class_split(10, s, seed=3) for s in ("train", "val", "test")}
  assert [len(parts[s]) for s in ("train", "val", "test")] == [6, 2, 2]
  assert sorted(x for p in parts.values() for x in p) == list(range(10))
  assert tfds_data.seeded_class_split(10, "val", seed=4) != parts["val"] or (
      tfds_data.seeded_class_split(10, "test", seed=4) != parts["test"])


def test_grouping_matches_records_and_resize():
  with _mock(300):
    source = tfds.data_source("mnist", split="train")
    images = np.stack([source[i]["image"] for i in range(len(source))])
    labels = np.asarray([source[i]["label"] for i in range(len(source))])
    split = tfds_data.load_tfds_classes("mnist", [7, 2], tfds_splits="train")
    resized = tfds_data.load_tfds_classes("mnist", [7, 2], tfds_splits="train",
                                          image_size=14)
  fewest = min((labels == 7).sum(), (labels == 2).sum())
  assert split.images.shape == (2, fewest, 28, 28, 1)
  np.testing.assert_array_equal(split.class_ids, [7, 2])
  # Row 0 holds the first `fewest` label-7 records in dataset order.
  np.testing.assert_array_equal(split.images[0], images[labels == 7][:fewest])
  np.testing.assert_array_equal(split.images[1], images[labels == 2][:fewest])
  assert resized.images.shape == (2, fewest, 14, 14, 1)


def test_cifar100_meta_splits():
  with _mock(2000):
    train = tfds_data.load_split("cifar100", "train", num_train_classes=16)
    test = tfds_data.load_split("cifar100", "test")
  assert train.num_classes == 16 and test.num_classes == 20
  assert train.images.shape[2:] == (32, 32, 3)
  assert not set(train.class_ids.tolist()) & set(test.class_ids.tolist())
  assert set(train.class_ids.tolist()) <= set(tfds_data.cifar_fs_labels("train"))


def test_errors():
  with _mock(20):
    with pytest.raises(errors.DataError, match="class label .* has 0 examples") as e:
      tfds_data.load_tfds_classes("cifar100", range(100), tfds_splits="train")
    assert "\n" not in str(e.value)
    with pytest.raises(errors.ConfigError, match="labels \\[10\\] are outside"):
      tfds_data.load_tfds_classes("mnist", [10], tfds_splits="train")
  with pytest.raises(errors.ConfigError, match="config.data.tfds_name=no_such_dataset"):
    tfds_data.load_split("no_such_dataset", "train")
