"""Class-indexed image arrays: the format every few-shot image loader returns.

A split of a few-shot dataset is one uint8 array ``images_CxExHxWxCh`` (C classes, E
examples per class) plus the name and a global integer id of each class. The episode
sampler (``sampling.py``) keeps that array on the device and gathers from it.

This module also holds the host-side helpers the loaders share: grouping labelled
examples into the class-indexed array, keeping a seeded subset of classes, an atomic
``.npz`` cache, the default cache directory, and a process pool for decoding images.
This module imports no JAX, so decoding workers start quickly.
"""

import concurrent.futures
import dataclasses
import hashlib
import logging
import multiprocessing
import os
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from metalearn import errors

_log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True, eq=False)
class ClassImages:
  """All images of the classes of one split, indexed by class.

  Attributes:
    images: ``[C, E, H, W, Ch]`` uint8; row ``c`` holds the E examples of class ``c``.
    class_names: C human-readable names (e.g. ``"Greek/character03/rot090"``).
    class_ids: ``[C]`` int32 global class ids, unique within the dataset and stable
      across splits, so ids of two splits can be compared for disjointness. Each
      loader documents its numbering.
    name: dataset and split, e.g. ``"omniglot/maml/train"``.
    alphabet_ids: ``[C]`` int32 global id of each class's alphabet (Omniglot; every
      turn of a character is in its alphabet), or None for data sets without
      alphabets. Within-alphabet episodes (``sampling.py``) draw from one of them.
  """

  images: np.ndarray
  class_names: tuple[str, ...]
  class_ids: np.ndarray
  name: str
  alphabet_ids: np.ndarray | None = None

  def __post_init__(self):
    if self.images.dtype != np.uint8 or self.images.ndim != 5:
      raise ValueError(
          f"ClassImages.images must be uint8 [C, E, H, W, Ch], got {self.images.dtype} "
          f"{self.images.shape}")
    num_classes = self.images.shape[0]
    if len(self.class_names) != num_classes or self.class_ids.shape != (num_classes,):
      raise ValueError(
          f"ClassImages: {num_classes} classes but {len(self.class_names)} names and "
          f"class_ids of shape {self.class_ids.shape}")
    if self.alphabet_ids is not None and self.alphabet_ids.shape != (num_classes,):
      raise ValueError(f"ClassImages: {num_classes} classes but alphabet_ids of shape "
                       f"{self.alphabet_ids.shape}")

  @property
  def num_classes(self) -> int:
    return self.images.shape[0]

  @property
  def examples_per_class(self) -> int:
    return self.images.shape[1]

  @property
  def image_shape(self) -> tuple[int, int, int]:
    return tuple(self.images.shape[2:])

  def take(self, rows: Sequence[int] | np.ndarray, name: str | None = None
           ) -> "ClassImages":
    """The classes at ``rows`` (in that order), as a new ClassImages."""
    rows = np.asarray(rows, dtype=np.int64)
    return ClassImages(
        images=self.images[rows],
        class_names=tuple(self.class_names[r] for r in rows),
        class_ids=self.class_ids[rows].astype(np.int32),
        name=name or self.name,
        alphabet_ids=None if self.alphabet_ids is None
        else self.alphabet_ids[rows].astype(np.int32))


def num_kept_classes(num_classes: int, count: int = 0, fraction: float = 0.0,
                     *, what: str = "meta-training classes") -> int:
  """How many of ``num_classes`` classes to keep given a count or a fraction.

  Args:
    num_classes: classes available.
    count: keep this many (``config.data.num_train_classes``); 0 means no limit.
    fraction: keep ``round(fraction * num_classes)`` (at least 1)
      (``config.data.train_class_fraction``); 0 means no limit.
    what: what the classes are, for error messages.

  Returns:
    The number of classes to keep.

  Raises:
    ConfigError: both or out-of-range values are given.
  """
  if count and fraction:
    raise errors.ConfigError(
        f"config.data.num_train_classes={count} and config.data.train_class_fraction="
        f"{fraction} are both set: set at most one")
  if count < 0 or count > num_classes:
    raise errors.ConfigError(
        f"config.data.num_train_classes={count}: must be in [0, {num_classes}] "
        f"(the split has {num_classes} {what})")
  if not 0.0 <= fraction <= 1.0:
    raise errors.ConfigError(
        f"config.data.train_class_fraction={fraction}: must be in [0, 1]")
  if count:
    return count
  if fraction:
    return max(1, round(fraction * num_classes))
  return num_classes


def nested_subset(num_classes: int, keep: int, seed: int) -> np.ndarray:
  """Sorted indices of ``keep`` of ``num_classes`` classes, chosen by a seeded permutation.

  The subsets for one seed are nested: the classes kept at ``keep=k`` are among those
  kept at any larger ``keep``, so runs at 1/8, 1/4, 1/2 of the classes share classes.
  """
  perm = np.random.RandomState(seed).permutation(num_classes)
  return np.sort(perm[:keep])


def group_by_label(images_NxHxWxCh: np.ndarray, labels_N: np.ndarray,
                   labels: Sequence[int], *, min_examples: int = 1,
                   source: str = "dataset") -> np.ndarray:
  """Groups labelled examples into a class-indexed array, vectorised.

  Classes with more examples than the smallest are truncated (first examples in
  dataset order are kept) and a log line says so.

  Args:
    images_NxHxWxCh: all examples.
    labels_N: integer label of each example.
    labels: the labels to keep, in the order of the output rows.
    min_examples: fewest examples a class may have.
    source: names the data for messages (a flag or file).

  Returns:
    ``images_CxExHxWxCh`` with ``C = len(labels)``.

  Raises:
    DataError: a class has fewer than ``min_examples`` examples.
  """
  labels = np.asarray(labels, dtype=np.int64)
  labels_N = np.asarray(labels_N, dtype=np.int64)
  order = np.argsort(labels_N, kind="stable")
  sorted_labels = labels_N[order]
  starts = np.searchsorted(sorted_labels, labels, side="left")
  ends = np.searchsorted(sorted_labels, labels, side="right")
  counts = ends - starts
  fewest = int(counts.min()) if len(counts) else 0
  if fewest < min_examples:
    worst = int(labels[np.argmin(counts)])
    raise errors.DataError(
        f"{source}: class label {worst} has {fewest} examples, fewer than the "
        f"{min_examples} needed")
  if int(counts.max()) != fewest:
    _log.warning("%s: classes have %d to %d examples; keeping the first %d of each",
                    source, fewest, int(counts.max()), fewest)
  rows_CxE = starts[:, None] + np.arange(fewest)[None, :]
  return images_NxHxWxCh[order[rows_CxE]]


def default_cache_dir(data_dir: str) -> str:
  """``<data_dir>/.cache`` if it can be written, else ``~/.cache/metalearn``."""
  local = os.path.join(data_dir, ".cache")
  try:
    os.makedirs(local, exist_ok=True)
    if os.access(local, os.W_OK):
      return local
  except OSError:
    pass
  return os.path.join(os.path.expanduser("~"), ".cache", "metalearn")


def sha256_file(path: str) -> str:
  """Hex sha256 of a file's bytes."""
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 22), b""):
      digest.update(block)
  return digest.hexdigest()


def load_npz(path: str, fingerprint: str) -> dict[str, np.ndarray] | None:
  """The arrays of a cache file if it exists, is readable and has ``fingerprint``.

  Returns None otherwise (a stale or damaged cache is rebuilt, not an error).
  """
  if not os.path.exists(path):
    return None
  try:
    with np.load(path, allow_pickle=False) as npz:
      arrays = {k: npz[k] for k in npz.files}
  except (OSError, ValueError, EOFError) as e:  # Includes zipfile.BadZipFile.
    _log.warning("cache %s is unreadable (%s); rebuilding it", path, e)
    return None
  if str(arrays.get("fingerprint", "")) != fingerprint:
    _log.info("cache %s is for another source; rebuilding it", path)
    return None
  return arrays


def parallel_map(fn: Callable[[Any], Any], chunks: Iterable[Any],
                 num_workers: int) -> list[Any]:
  """``[fn(c) for c in chunks]``, in up to ``num_workers`` processes.

  Workers are started with ``spawn``: forking a process in which JAX has started its
  threads can deadlock. Like any ``spawn`` pool this re-imports the caller's main
  module, so a script must guard its entry point with ``if __name__ == "__main__"``;
  if the pool breaks, the work is redone serially with a warning. ``fn`` must be a
  module-level function of an importable module.
  """
  chunks = list(chunks)
  if num_workers <= 1 or len(chunks) <= 1:
    return [fn(c) for c in chunks]
  context = multiprocessing.get_context("spawn")
  try:
    with concurrent.futures.ProcessPoolExecutor(
        max_workers=min(num_workers, len(chunks)), mp_context=context) as pool:
      return list(pool.map(fn, chunks))
  except concurrent.futures.process.BrokenProcessPool as e:
    _log.warning("decoding processes failed (%s); decoding in this process. Guard the "
                 "script's entry point with if __name__ == '__main__' or set "
                 "config.data.num_workers=1", e)
    return [fn(c) for c in chunks]


def default_num_workers() -> int:
  """Decoding processes: 1 on machines with up to 2 CPUs, else one per CPU (max 8).

  Measured for Omniglot on 2 shared CPUs: 1 process 7.2-9.9 s; 2 forked processes
  4.3 s when the machine was idle but 11.8 s when other jobs were running; 2 spawned
  processes 10.5-13.2 s under load. Parallel decoding only pays with spare CPUs.
  """
  try:
    cpus = len(os.sched_getaffinity(0))
  except AttributeError:
    cpus = os.cpu_count() or 1
  return 1 if cpus <= 2 else min(cpus, 8)
