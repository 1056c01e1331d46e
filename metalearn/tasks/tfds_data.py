"""Few-shot splits of any TFDS image-classification dataset, without TensorFlow.

Examples are read with ``tfds.data_source`` (random access to the prepared ArrayRecord
files; TensorFlow is not needed for reading, though preparing some datasets is:
``pip install metalearn[tf]``), grouped by label into a class-indexed uint8 array and
restricted to the labels of one class split. Few-shot class splits use every example of
a class, so by default the TFDS ``train`` and ``test`` splits are pooled
(``tfds_splits="train+test"``).

Class ids are the dataset's integer labels; class names come from the label feature.
"""

import logging
from collections.abc import Sequence

import numpy as np
from PIL import Image

from metalearn import errors
from metalearn.tasks import class_images
from metalearn.tasks.class_images import ClassImages

_log = logging.getLogger(__name__)

# CIFAR-100 fine labels in TFDS label order (alphabetical).
CIFAR100_NAMES = (
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle",
    "bicycle", "bottle", "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can",
    "castle", "caterpillar", "cattle", "chair", "chimpanzee", "clock", "cloud",
    "cockroach", "couch", "crab", "crocodile", "cup", "dinosaur", "dolphin", "elephant",
    "flatfish", "forest", "fox", "girl", "hamster", "house", "kangaroo", "keyboard",
    "lamp", "lawn_mower", "leopard", "lion", "lizard", "lobster", "man", "maple_tree",
    "motorcycle", "mountain", "mouse", "mushroom", "oak_tree", "orange", "orchid",
    "otter", "palm_tree", "pear", "pickup_truck", "pine_tree", "plain", "plate",
    "poppy", "porcupine", "possum", "rabbit", "raccoon", "ray", "road", "rocket",
    "rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake",
    "spider", "squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank",
    "telephone", "television", "tiger", "tractor", "train", "trout", "tulip", "turtle",
    "wardrobe", "whale", "willow_tree", "wolf", "woman", "worm")

# CIFAR-FS (Bertinetto et al., ICLR 2019) validation and test classes. The paper's
# repository (bertinetto/r2d2) defines them in split files that could not be fetched
# here; these lists are as reproduced by two independent public reimplementations
# that agree with each other. Meta-train is the other 64 classes.
CIFAR_FS_VAL = (
    "otter", "motorcycle", "television", "lamp", "crocodile", "shark", "butterfly",
    "beaver", "beetle", "tractor", "flatfish", "maple_tree", "camel", "crab", "sea",
    "cattle")
CIFAR_FS_TEST = (
    "baby", "bed", "bicycle", "chimpanzee", "fox", "leopard", "man", "pickup_truck",
    "plain", "poppy", "rocket", "rose", "snail", "sweet_pepper", "table", "telephone",
    "wardrobe", "whale", "woman", "worm")


def cifar_fs_labels(split: str) -> list[int]:
  """Sorted CIFAR-100 labels of a CIFAR-FS split (64 train / 16 val / 20 test)."""
  held_out = {"val": CIFAR_FS_VAL, "test": CIFAR_FS_TEST}
  if split == "train":
    names = set(CIFAR100_NAMES) - set(CIFAR_FS_VAL) - set(CIFAR_FS_TEST)
  elif split in held_out:
    names = set(held_out[split])
  else:
    raise errors.ConfigError(f"split={split!r}: must be 'train', 'val' or 'test'")
  return sorted(CIFAR100_NAMES.index(n) for n in names)


def seeded_class_split(num_labels: int, split: str, seed: int,
                       fractions: tuple[float, float] = (0.64, 0.16)) -> list[int]:
  """Sorted labels of a split of ``range(num_labels)`` by a seeded permutation.

  The first ``round(0.64 n)`` permuted labels are train, the next ``round(0.16 n)``
  val, the rest test (64/16/20 for 100 labels). Not an official split of any dataset.
  """
  perm = np.random.RandomState(seed).permutation(num_labels)
  num_train = round(fractions[0] * num_labels)
  num_val = round(fractions[1] * num_labels)
  parts = {"train": perm[:num_train], "val": perm[num_train:num_train + num_val],
           "test": perm[num_train + num_val:]}
  if split not in parts:
    raise errors.ConfigError(f"split={split!r}: must be 'train', 'val' or 'test'")
  return sorted(int(x) for x in parts[split])


def _read_all(source, name: str, image_key: str, label_key: str
              ) -> tuple[np.ndarray, np.ndarray]:
  """All images and labels of a data source, as two arrays."""
  count = len(source)
  if count == 0:
    raise errors.DataError(f"config.data.tfds_name={name}: the split is empty")
  first = source[0]
  if image_key not in first or label_key not in first:
    raise errors.DataError(
        f"config.data.tfds_name={name}: records have keys {sorted(first)}, need "
        f"{image_key!r} and {label_key!r}")
  image0 = np.asarray(first[image_key])
  if image0.ndim == 2:
    image0 = image0[..., None]
  images = np.empty((count,) + image0.shape, np.uint8)
  labels = np.empty((count,), np.int64)
  for i in range(count):
    record = first if i == 0 else source[i]
    image = np.asarray(record[image_key])
    if image.ndim == 2:
      image = image[..., None]
    if image.shape != image0.shape:
      raise errors.DataError(
          f"config.data.tfds_name={name}: record {i} has image shape {image.shape}, "
          f"record 0 has {image0.shape}; variable-size images are not supported")
    images[i] = image
    labels[i] = record[label_key]
  return images, labels


def resize_images(images_NxHxWxCh: np.ndarray, image_size: int) -> np.ndarray:
  """Resizes uint8 images to ``image_size`` square with Pillow's Lanczos filter."""
  n, h, w, ch = images_NxHxWxCh.shape
  if (h, w) == (image_size, image_size):
    return images_NxHxWxCh
  out = np.empty((n, image_size, image_size, ch), np.uint8)
  for i in range(n):
    im = Image.fromarray(images_NxHxWxCh[i, ..., 0] if ch == 1 else images_NxHxWxCh[i])
    resized = np.asarray(im.resize((image_size, image_size), Image.LANCZOS))
    out[i] = resized[..., None] if ch == 1 else resized
  return out


def load_tfds_classes(name: str, labels: Sequence[int], *, tfds_splits: str = "train+test",
                      data_dir: str | None = None, image_size: int = 0,
                      image_key: str = "image", label_key: str = "label",
                      min_examples: int = 1, split_name: str = "") -> ClassImages:
  """The examples of ``labels`` in a TFDS dataset, as class-indexed images.

  Classes with more examples than the smallest are truncated to the smallest count
  (logged). The dataset must already be prepared in ``data_dir`` (or TFDS's default).

  Args:
    name: TFDS name, e.g. ``"cifar100"`` (``config.data.tfds_name``).
    labels: integer labels to keep, one output row each, in this order.
    tfds_splits: TFDS split expression to read, e.g. ``"train+test"``.
    data_dir: TFDS data directory; None for TFDS's default.
    image_size: resize to this square size; 0 keeps the native size.
    image_key: feature holding the image.
    label_key: feature holding the integer label.
    min_examples: fewest examples a class may have.
    split_name: meta-split name for ``ClassImages.name``.

  Returns:
    ClassImages with ``class_ids`` = the labels.

  Raises:
    DataError: the dataset cannot be read, or a class has too few examples.
  """
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top  # Slow import.

  try:
    source = tfds.data_source(name, split=tfds_splits, data_dir=data_dir)
  except Exception as e:  # noqa: BLE001  # TFDS raises many types for missing data.
    message = str(e).splitlines()[0] if str(e) else type(e).__name__
    raise errors.DataError(
        f"config.data.tfds_name={name} (split {tfds_splits!r}, data_dir {data_dir}): "
        f"cannot open it with tfds.data_source ({message})") from None
  images, all_labels = _read_all(source, name, image_key, label_key)
  label_feature = source.dataset_info.features[label_key]
  names = list(getattr(label_feature, "names", None) or [])
  num_labels = getattr(label_feature, "num_classes", None) or int(all_labels.max()) + 1
  labels = [int(x) for x in labels]
  bad = [x for x in labels if not 0 <= x < num_labels]
  if bad:
    raise errors.ConfigError(
        f"config.data.tfds_name={name}: labels {bad[:5]} are outside [0, {num_labels})")
  grouped = class_images.group_by_label(
      images, all_labels, labels, min_examples=min_examples,
      source=f"config.data.tfds_name={name}")
  if image_size:
    c, e = grouped.shape[:2]
    grouped = resize_images(grouped.reshape((c * e,) + grouped.shape[2:]), image_size)
    grouped = grouped.reshape((c, e) + grouped.shape[1:])
  _log.info("%s: %d classes x %d examples of %s", name, grouped.shape[0],
               grouped.shape[1], grouped.shape[2:])
  class_names = tuple(names[x] if x < len(names) else str(x) for x in labels)
  return ClassImages(images=grouped, class_names=class_names,
                     class_ids=np.asarray(labels, np.int32),
                     name=f"tfds/{name}/{split_name}" if split_name else f"tfds/{name}")


def class_split_labels(name: str, split: str, num_labels: int, seed: int) -> list[int]:
  """Labels of a meta-split: CIFAR-FS for ``cifar100``, else a seeded 64/16/20 split."""
  if name.split(":")[0] == "cifar100":
    return cifar_fs_labels(split)
  return seeded_class_split(num_labels, split, seed)


def load_split(name: str, split: str, *, seed: int = 1, tfds_splits: str = "train+test",
               data_dir: str | None = None, image_size: int = 0,
               num_train_classes: int = 0, train_class_fraction: float = 0.0
               ) -> ClassImages:
  """A meta-split (``train``/``val``/``test``) of a TFDS dataset.

  ``cifar100`` uses the CIFAR-FS class split; other datasets a seeded 64/16/20 split
  of their labels (``seeded_class_split``). ``num_train_classes`` /
  ``train_class_fraction`` keep a seeded nested subset of the meta-train classes.
  """
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

  try:
    builder = tfds.builder(name, data_dir=data_dir)
    num_labels = builder.info.features["label"].num_classes
  except Exception as e:  # noqa: BLE001  # DatasetNotFoundError and others.
    message = str(e).splitlines()[0] if str(e) else type(e).__name__
    raise errors.ConfigError(
        f"config.data.tfds_name={name}: not a TFDS classification dataset ({message})"
    ) from None
  labels = class_split_labels(name, split, num_labels, seed)
  if split == "train":
    keep = class_images.num_kept_classes(len(labels), num_train_classes,
                                         train_class_fraction)
    labels = [labels[i] for i in class_images.nested_subset(len(labels), keep, seed)]
  return load_tfds_classes(name, labels, tfds_splits=tfds_splits, data_dir=data_dir,
                           image_size=image_size, split_name=split)
