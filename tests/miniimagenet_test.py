"""Tests of the miniImageNet reader on a tiny generated Ravi-Larochelle layout."""

import os

import numpy as np
import pytest
from PIL import Image

from metalearn import errors
from metalearn.tasks import miniimagenet

# WordNet ids per split, deliberately unsorted in the CSVs.
CLASSES = {"train": ["n03", "n01", "n02"], "val": ["n05", "n04"], "test": ["n06"]}
PER_CLASS = 3


def make_layout(root, per_class=PER_CLASS):
  """Writes images/ and the three CSVs; pixel (0, 0) red = class number * 20."""
  images = os.path.join(root, "images")
  os.makedirs(images, exist_ok=True)
  rng = np.random.RandomState(0)
  for split, wnids in CLASSES.items():
    lines = ["filename,label"]
    for wnid in wnids:
      for i in range(per_class):
        name = f"{wnid}{i + 1:08d}.jpg"
        pixels = rng.randint(0, 256, (100, 120, 3), np.uint8)
        pixels[:50, :60] = int(wnid[1:]) * 20  # A flat block survives JPEG + resize.
        Image.fromarray(pixels).save(os.path.join(images, name), quality=95)
        lines.append(f"{name},{wnid}")
    with open(os.path.join(root, split + ".csv"), "w") as f:
      f.write("\n".join(lines) + "\n")
  return str(root)


def test_splits_shapes_ids_and_cache(tmp_path, monkeypatch):
  data = make_layout(tmp_path / "mini")
  cache = str(tmp_path / "cache")
  train = miniimagenet.load_split(data, "train", cache_dir=cache, num_workers=1)
  assert train.images.shape == (3, PER_CLASS, 84, 84, 3)
  assert train.images.dtype == np.uint8
  assert train.class_names == ("n01", "n02", "n03")
  np.testing.assert_array_equal(train.class_ids, [0, 1, 2])
  # Row c holds class c: its flat block has value 20 * class number.
  np.testing.assert_allclose(train.images[:, :, 5, 5, 0].mean(1), [20, 40, 60], atol=4)
  val = miniimagenet.load_split(data, "val", cache_dir=cache, num_workers=1)
  test = miniimagenet.load_split(data, "test", cache_dir=cache, num_workers=1)
  np.testing.assert_array_equal(val.class_ids, [3, 4])
  np.testing.assert_array_equal(test.class_ids, [5])
  assert len(os.listdir(cache)) == 3

  def no_decode(job):
    raise AssertionError("decoded again")

  monkeypatch.setattr(miniimagenet, "_decode_chunk", no_decode)
  again = miniimagenet.load_split(data, "train", cache_dir=cache)
  np.testing.assert_array_equal(again.images, train.images)
  small = miniimagenet.load_split(data, "train", cache_dir=cache, num_train_classes=2)
  assert small.num_classes == 2
  assert set(small.class_ids.tolist()) <= {0, 1, 2}


def test_unequal_counts_are_truncated(tmp_path):
  data = make_layout(tmp_path / "mini")
  with open(os.path.join(data, "test.csv")) as f:
    lines = f.read().splitlines()
  with open(os.path.join(data, "test.csv"), "w") as f:
    f.write("\n".join(lines[:-1]) + "\n")
  test = miniimagenet.load_split(data, "test", cache_dir=str(tmp_path / "c"))
  assert test.images.shape[:2] == (1, PER_CLASS - 1)


@pytest.mark.parametrize("damage, message", [
    ("no_dir", "does not exist"),
    ("no_images", "images/ is missing"),
    ("no_csv", "val.csv is missing"),
    ("bad_header", "header 'filename,label'"),
    ("missing_image", "images/n0100000001.jpg .* is missing"),
    ("corrupt_image", "images/n0100000002.jpg cannot be decoded"),
])
def test_bad_inputs_raise_one_line(tmp_path, damage, message):
  data = make_layout(tmp_path / "mini")
  if damage == "no_dir":
    data = str(tmp_path / "nope")
  elif damage == "no_images":
    os.rename(os.path.join(data, "images"), os.path.join(data, "imgs"))
  elif damage == "no_csv":
    os.remove(os.path.join(data, "val.csv"))
  elif damage == "bad_header":
    with open(os.path.join(data, "train.csv"), "w") as f:
      f.write("file,class\nx.jpg,n01\n")
  elif damage == "missing_image":
    os.remove(os.path.join(data, "images", "n0100000001.jpg"))
  elif damage == "corrupt_image":
    with open(os.path.join(data, "images", "n0100000002.jpg"), "wb") as f:
      f.write(b"\xff\xd8 truncated")
  with pytest.raises(errors.DataError, match=message) as e:
    miniimagenet.load_split(data, "train", cache_dir=str(tmp_path / "c"))
  assert "--config.data.path=" in str(e.value) and "\n" not in str(e.value)
