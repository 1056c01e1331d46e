"""Tests of ``datasets.load_split``: dispatch on config.data and config errors."""

import io
import os
import types
import zipfile

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from metalearn import errors
from metalearn.tasks import datasets


def _tiny_omniglot(root):
  """Two background alphabets x 2 characters, one evaluation alphabet, 3 drawings."""
  os.makedirs(root)
  sets = {"images_background": ("Alpha", "Beta"), "images_evaluation": ("Gamma",)}
  rng = np.random.RandomState(0)
  for set_name, alphabets in sets.items():
    with zipfile.ZipFile(os.path.join(root, set_name + ".zip"), "w") as zf:
      for a in alphabets:
        for c in (1, 2):
          for d in (1, 2, 3):
            buf = io.BytesIO()
            Image.fromarray(rng.rand(105, 105) > 0.1).convert("1").save(buf, "PNG")
            zf.writestr(f"{set_name}/{a}/character{c:02d}/0001_{d:02d}.png",
                        buf.getvalue())
  return str(root)


def test_default_config_has_the_documented_keys():
  config = datasets.default_data_config()
  for key in ("name", "path", "protocol", "split_seed", "rotations",
              "num_train_classes", "cache_dir", "tfds_name", "image_size"):
    assert key in config
  assert config.name == "omniglot" and config.split_seed == 1


def test_omniglot_lake_via_config(tmp_path):
  config = datasets.default_data_config()
  config.path = _tiny_omniglot(tmp_path / "omniglot")
  config.cache_dir = str(tmp_path / "cache")
  config.protocol = "lake"
  config.lake_val_alphabets = 1
  config.download = False
  train = datasets.load_split(config, "train")
  test = datasets.load_split(config, "test")
  assert train.images.shape == (8, 3, 28, 28, 1)  # 2 characters x 4 rotations.
  assert test.images.shape == (2, 3, 28, 28, 1)
  assert train.name == "omniglot/lake/train"
  config.image_size = 14
  config.rotations = False
  assert datasets.load_split(config, "train").images.shape == (2, 3, 14, 14, 1)


def test_attribute_object_and_defaults(tmp_path):
  cfg = types.SimpleNamespace(name="tfds", tfds_name="mnist", path="",
                              tfds_splits="train")
  with tfds.testing.mock_data(policy=tfds.testing.MockPolicy.USE_CODE,
                              num_examples=100):
    split = datasets.load_split(cfg, "val")
  assert split.num_classes == 2 and split.images.shape[2:] == (28, 28, 1)


@pytest.mark.parametrize("key, value, split, message", [
    ("name", "imagenet", "train", "config.data.name='imagenet'"),
    ("protocol", "vinyals", "train", "config.data.protocol='vinyals'"),
    (None, None, "valid", "split='valid'"),
    ("image_size", -1, "train", "config.data.image_size=-1"),
    ("num_train_classes", 5, "train", "config.data.num_train_classes=5"),
])
def test_config_errors_name_the_key(tmp_path, key, value, split, message):
  config = datasets.default_data_config()
  config.path = _tiny_omniglot(tmp_path / "omniglot")
  config.cache_dir = str(tmp_path / "cache")
  config.protocol = "lake"
  config.lake_val_alphabets = 1
  config.download = False
  if key:
    config[key] = value
  with pytest.raises(errors.ConfigError, match=message) as e:
    datasets.load_split(config, split)
  assert "\n" not in str(e.value)


def test_missing_data_is_a_data_error(tmp_path):
  config = datasets.default_data_config()
  config.path = str(tmp_path / "nowhere")
  config.download = False
  with pytest.raises(errors.DataError, match="--config.data.path=.*does not exist"):
    datasets.load_split(config, "train")
  config.name = "miniimagenet"
  with pytest.raises(errors.DataError, match="--config.data.path=.*does not exist"):
    datasets.load_split(config, "test")
