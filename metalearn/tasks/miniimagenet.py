"""miniImageNet in the Ravi & Larochelle (ICLR 2017) layout, resized and cached.

Expected in ``--config.data.path``::

  images/n0153282900000005.jpg ...
  train.csv  val.csv  test.csv      # header "filename,label"; label is a WordNet id

The release has 64/16/20 classes with 600 images each. Images are converted to RGB,
decoded at reduced size where the JPEG allows (``Image.draft``) and resized to
``image_size`` (84) with Lanczos. Each split is cached as one ``.npz`` named by a
fingerprint of the CSV contents and the names, sizes and mtimes of its image files.

Class order and ids: within a split, classes are sorted by WordNet id; global ids
number the classes of train, then val, then test (0..63, 64..79, 80..99 for the
release). Classes with unequal image counts are truncated to the smallest (logged).
"""

import csv
import hashlib
import json
import logging
import os

import numpy as np
from PIL import Image

from metalearn import atomic
from metalearn import errors
from metalearn.tasks import class_images
from metalearn.tasks.class_images import ClassImages

_log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
_FORMAT = "miniimagenet-v1-rgb-lanczos"
_FLAG = "--config.data.path"


def _read_csv(data_dir: str, split: str) -> list[tuple[str, str]]:
  """(filename, label) rows of ``<split>.csv``."""
  path = os.path.join(data_dir, split + ".csv")
  if not os.path.isfile(path):
    raise errors.DataError(
        f"{_FLAG}={data_dir}: {split}.csv is missing (expected the Ravi-Larochelle "
        "layout: images/, train.csv, val.csv, test.csv)")
  with open(path, newline="") as f:
    rows = list(csv.reader(f))
  if not rows or [c.strip() for c in rows[0]] != ["filename", "label"]:
    raise errors.DataError(
        f"{_FLAG}={data_dir}: {split}.csv must start with the header 'filename,label'")
  body = [r for r in rows[1:] if r]
  bad = [i + 2 for i, r in enumerate(body) if len(r) != 2]
  if bad:
    raise errors.DataError(
        f"{_FLAG}={data_dir}: {split}.csv line {bad[0]} does not have 2 fields")
  if not body:
    raise errors.DataError(f"{_FLAG}={data_dir}: {split}.csv lists no images")
  return [(r[0].strip(), r[1].strip()) for r in body]


def _decode_chunk(job: tuple[str, list[str], int, str]) -> np.ndarray:
  """Decodes and resizes JPEGs (runs in a worker process)."""
  image_dir, files, image_size, where = job
  out = np.empty((len(files), image_size, image_size, 3), np.uint8)
  for i, name in enumerate(files):
    try:
      with Image.open(os.path.join(image_dir, name)) as im:
        im.draft("RGB", (image_size, image_size))  # Faster JPEG decode at >= size.
        rgb = im.convert("RGB")
      if rgb.size != (image_size, image_size):
        rgb = rgb.resize((image_size, image_size), Image.LANCZOS)
      out[i] = np.asarray(rgb, dtype=np.uint8)
    except (OSError, SyntaxError, ValueError) as e:
      raise errors.DataError(
          f"{where}: images/{name} cannot be decoded as an image ({e})") from None
  return out


def load_split(data_dir: str, split: str, *, image_size: int = 84, cache_dir: str = "",
               num_workers: int = 0, num_train_classes: int = 0,
               train_class_fraction: float = 0.0, seed: int = 1) -> ClassImages:
  """One meta-split of miniImageNet as class-indexed images.

  Args:
    data_dir: directory in the Ravi-Larochelle layout (``--config.data.path``).
    split: ``"train"``, ``"val"`` or ``"test"``.
    image_size: side of the square RGB images.
    cache_dir: cache directory; '' means ``<data_dir>/.cache`` if writable, else
      ``~/.cache/metalearn``.
    num_workers: decoding processes (0: automatic).
    num_train_classes: keep this many meta-train classes (0: all).
    train_class_fraction: or keep this fraction of them (0: all).
    seed: picks the kept subset.

  Returns:
    ClassImages with ``images`` ``[C, E, S, S, 3]`` uint8.

  Raises:
    DataError: missing directory, files or images, bad CSVs, undecodable images.
  """
  if split not in SPLITS:
    raise errors.ConfigError(f"split={split!r}: must be 'train', 'val' or 'test'")
  if not data_dir or not os.path.isdir(data_dir):
    raise errors.DataError(f"{_FLAG}={data_dir}: directory does not exist")
  image_dir = os.path.join(data_dir, "images")
  if not os.path.isdir(image_dir):
    raise errors.DataError(f"{_FLAG}={data_dir}: images/ is missing")
  all_rows = {s: _read_csv(data_dir, s) for s in SPLITS}
  wnids = {s: sorted({label for _, label in all_rows[s]}) for s in SPLITS}
  offset = sum(len(wnids[s]) for s in SPLITS[:SPLITS.index(split)])
  rows = all_rows[split]

  stats = []
  for name, _ in rows:
    try:
      st = os.stat(os.path.join(image_dir, name))
    except OSError:
      raise errors.DataError(
          f"{_FLAG}={data_dir}: images/{name} (listed in {split}.csv) is missing"
      ) from None
    stats.append(f"{name}:{st.st_size}:{st.st_mtime_ns}")
  fingerprint = hashlib.sha256(json.dumps(
      {"format": _FORMAT, "image_size": image_size, "rows": rows, "stats": stats}
  ).encode()).hexdigest()
  cache_dir = cache_dir or class_images.default_cache_dir(data_dir)
  cache_path = os.path.join(
      cache_dir, f"miniimagenet-{split}-{image_size}px-{fingerprint[:16]}.npz")
  cached = class_images.load_npz(cache_path, fingerprint)
  if cached is not None:
    images = cached["images"]
  else:
    files = [name for name, _ in rows]
    where = f"{_FLAG}={data_dir}"
    chunk = 500
    jobs = [(image_dir, files[i:i + chunk], image_size, where)
            for i in range(0, len(files), chunk)]
    workers = num_workers or class_images.default_num_workers()
    decoded = np.concatenate(class_images.parallel_map(_decode_chunk, jobs, workers))
    label_index = {w: i for i, w in enumerate(wnids[split])}
    labels_N = np.asarray([label_index[label] for _, label in rows])
    images = class_images.group_by_label(
        decoded, labels_N, range(len(wnids[split])), source=f"{where}: {split}.csv")
    try:
      atomic.write_npz(cache_path, images=images, fingerprint=np.asarray(fingerprint))
    except OSError as e:  # A missing cache only costs a decode next time.
      _log.warning("cannot write the miniImageNet cache %s (%s)", cache_path, e)
  result = ClassImages(
      images=images, class_names=tuple(wnids[split]),
      class_ids=np.arange(offset, offset + len(wnids[split]), dtype=np.int32),
      name=f"miniimagenet/{split}")
  if split == "train":
    keep = class_images.num_kept_classes(result.num_classes, num_train_classes,
                                         train_class_fraction)
    result = result.take(class_images.nested_subset(result.num_classes, keep, seed))
  return result

