"""Omniglot from the original release: decode, resize, cache, and the meta-learning splits.

Source: ``images_background.zip`` (30 alphabets, 964 characters) and
``images_evaluation.zip`` (20 alphabets, 659 characters) of ``brendenlake/omniglot``,
or the folders they extract to, in one directory (``--config.data.path``). Members are
``images_background/<Alphabet>/<characterNN>/<id>_<drawer>.png``, 105x105 mode ``1``.

Decoding: each PNG is converted to 8-bit grey, resized with Lanczos antialiasing to
``image_size`` (28 by default) and inverted, so strokes are bright (255 -> 1.0) on a
dark background (0), as MAML feeds them. (cbfinn/maml resizes the mode-``1`` image
directly, which Pillow does with nearest-neighbour sampling; we antialias instead.)

Character order (the global character index 0..1622): background set first, then
evaluation; within a set, alphabets and character folders in sorted (code point) order;
drawings sorted by file name. The decoded array is cached as one ``.npz`` named by a
fingerprint of the source (sha256 of each zip, or names, sizes and mtimes of the files
of an extracted folder), so a changed source is decoded again.

Splits (``protocol``):

* ``maml``: the 1623 characters are permuted with ``np.random.RandomState(seed)``;
  the first 1100 are meta-train, the next 100 meta-validation, the last 423 meta-test.
  Same sizes and procedure as cbfinn/maml, not the same characters (its shuffle used
  Python's ``random`` over ``os.listdir`` order).
* ``lake``: background alphabets meta-train, evaluation alphabets (659 characters)
  meta-test. Meta-validation is ``lake_val_alphabets`` whole background alphabets
  (default 5, chosen with ``RandomState(seed)``), removed from meta-train, so that
  validation characters come from alphabets never trained on, as at test time.

Rotations by 0/90/180/270 degrees (``np.rot90``, counter-clockwise) are materialised as
extra classes of the meta-training split when ``rotations`` is set (as the issue asks:
rotations during meta-training), and of the validation and test splits only when
``eval_rotations`` is set. (cbfinn/maml's data generator also rotates evaluation
tasks; set ``eval_rotations`` to reproduce that.) ``num_train_classes`` /
``train_class_fraction`` keep a seeded, nested subset of the meta-training
characters before rotation.

Class ids: ``4 * character_index + quarter_turns`` in every split (rotation 0 when
not rotated), so ids are comparable across splits and settings. Alphabet ids: each
class's alphabet in global alphabet order (the 30 background alphabets sorted, then the
20 evaluation ones), for within-alphabet episodes (``sampling.py``).
"""

import dataclasses
import hashlib
import io
import json
import logging
import os
import time
import urllib.error
import urllib.request
import zipfile

import numpy as np
from PIL import Image

from metalearn import atomic
from metalearn import errors
from metalearn.tasks import class_images
from metalearn.tasks.class_images import ClassImages

_log = logging.getLogger(__name__)

SETS = ("images_background", "images_evaluation")
URL = "https://github.com/brendenlake/omniglot/raw/master/python/{}.zip"
SHA256 = {
    "images_background": "ad41ab679c8b5d90b271ef46be6987cc81211774a695c29dcc5367b2b26ee640",
    "images_evaluation": "1f61a8f3366785b057fc117d9228e78a16e3d976c8953b2a10fcc74cf0609cee",
}
MAML_SPLIT_SIZES = (1100, 100)  # meta-train, meta-validation; the rest is meta-test.
NUM_ROTATIONS = 4
_FORMAT = "omniglot-v1-L-lanczos-inverted"  # Change when decoding changes.
_FLAG = "--config.data.path"


@dataclasses.dataclass(frozen=True, eq=False)
class Characters:
  """Every character of the release, in global character order.

  Attributes:
    images: ``[1623, 20, S, S, 1]`` uint8, strokes bright.
    alphabets: alphabet folder name of each character.
    characters: character folder name of each character (``character01`` ...).
    background: ``[1623]`` bool, True for characters of ``images_background``.
  """

  images: np.ndarray
  alphabets: tuple[str, ...]
  characters: tuple[str, ...]
  background: np.ndarray

  @property
  def names(self) -> tuple[str, ...]:
    return tuple(f"{a}/{c}" for a, c in zip(self.alphabets, self.characters))

  @property
  def alphabet_ids(self) -> np.ndarray:
    """``[1623]`` int32: each character's alphabet, numbered in global order."""
    order = {a: i for i, a in enumerate(dict.fromkeys(self.alphabets))}
    return np.asarray([order[a] for a in self.alphabets], dtype=np.int32)


def _fetch(url: str) -> bytes:
  """Downloads ``url`` (a separate function so tests can replace it)."""
  with urllib.request.urlopen(url, timeout=60) as response:
    return response.read()


def _download(data_dir: str, set_name: str) -> str:
  """Downloads ``<set_name>.zip`` into ``data_dir``, checks its sha256, returns its path."""
  url = URL.format(set_name)
  dest = os.path.join(data_dir, set_name + ".zip")
  _log.info("downloading %s to %s", url, dest)
  try:
    data = _fetch(url)
  except (urllib.error.URLError, OSError, ValueError) as e:
    reason = getattr(e, "reason", None) or e
    raise errors.DataError(
        f"{_FLAG}={data_dir}: {set_name}.zip is missing and downloading {url} failed "
        f"({reason}); point {_FLAG} at a directory holding images_background.zip and "
        "images_evaluation.zip") from None
  digest = hashlib.sha256(data).hexdigest()
  if digest != SHA256[set_name]:
    raise errors.DataError(
        f"{_FLAG}={data_dir}: downloaded {url} has sha256 {digest}, expected "
        f"{SHA256[set_name]}")
  try:
    with atomic.open_for_write(dest, "wb") as f:
      f.write(data)
  except OSError as e:
    raise errors.DataError(
        f"{_FLAG}={data_dir}: cannot write the downloaded {set_name}.zip ({e.strerror})"
    ) from None
  return dest


def _find_sources(data_dir: str, download: bool) -> dict[str, str]:
  """Path of each set's zip or extracted folder, downloading missing zips if allowed."""
  if not data_dir:
    raise errors.DataError(
        f"{_FLAG} is empty: set it to the directory holding images_background.zip and "
        "images_evaluation.zip")
  if not os.path.isdir(data_dir) and not download:
    raise errors.DataError(f"{_FLAG}={data_dir}: directory does not exist")
  sources = {}
  for set_name in SETS:
    zip_path = os.path.join(data_dir, set_name + ".zip")
    folder = os.path.join(data_dir, set_name)
    if os.path.isfile(zip_path):
      sources[set_name] = zip_path
    elif os.path.isdir(folder):
      sources[set_name] = folder
    elif download:
      sources[set_name] = _download(data_dir, set_name)
    else:
      raise errors.DataError(
          f"{_FLAG}={data_dir}: neither {set_name}.zip nor {set_name}/ is there")
  return sources


def _list_members(source: str, set_name: str, data_dir: str
                  ) -> tuple[list[tuple[str, str]], list[list[str]]]:
  """The (alphabet, character) pairs of one set and the sorted image members of each."""
  where = f"{_FLAG}={data_dir}: {os.path.basename(source)}"
  if source.endswith(".zip"):
    try:
      with zipfile.ZipFile(source) as zf:
        names = zf.namelist()
    except (zipfile.BadZipFile, OSError) as e:
      raise errors.DataError(
          f"{where} is not a valid zip file (truncated or corrupt: {e})") from None
  else:
    names = []
    for root, _, files in os.walk(source):
      rel = os.path.relpath(root, os.path.dirname(source))
      names.extend(os.path.join(rel, f).replace(os.sep, "/") for f in files)
  groups: dict[tuple[str, str], list[str]] = {}
  for name in names:
    parts = name.split("/")
    if len(parts) == 4 and parts[0] == set_name and parts[3].lower().endswith(".png"):
      groups.setdefault((parts[1], parts[2]), []).append(name)
  if not groups:
    tops = sorted({n.split("/")[0] for n in names})[:5]
    raise errors.DataError(
        f"{where} has no images at {set_name}/<alphabet>/<character>/*.png "
        f"(top-level entries: {', '.join(tops) or 'none'})")
  keys = sorted(groups)
  members = [sorted(groups[k]) for k in keys]
  counts = np.asarray([len(m) for m in members])
  usual = np.bincount(counts).argmax()
  if (counts != usual).any():
    odd = int(np.flatnonzero(counts != usual)[0])
    raise errors.DataError(
        f"{where}: {'/'.join(keys[odd])} has {counts[odd]} drawings, most characters "
        f"have {usual}; every character needs the same number")
  return keys, members


def _fingerprint(sources: dict[str, str], image_size: int) -> str:
  parts = {"format": _FORMAT, "image_size": image_size}
  for set_name, source in sorted(sources.items()):
    if source.endswith(".zip"):
      parts[set_name] = class_images.sha256_file(source)
    else:
      listing = []
      for root, _, files in os.walk(source):
        for f in sorted(files):
          st = os.stat(os.path.join(root, f))
          listing.append(f"{os.path.relpath(os.path.join(root, f), source)}:"
                         f"{st.st_size}:{st.st_mtime_ns}")
      parts[set_name] = hashlib.sha256("\n".join(sorted(listing)).encode()).hexdigest()
  return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def decode_png(data: bytes, image_size: int) -> np.ndarray:
  """One Omniglot PNG as ``[S, S]`` uint8, resized with Lanczos, strokes bright."""
  with Image.open(io.BytesIO(data)) as im:
    grey = im.convert("L")
  if grey.size != (image_size, image_size):
    grey = grey.resize((image_size, image_size), Image.LANCZOS)
  return 255 - np.asarray(grey, dtype=np.uint8)


def _decode_chunk(job: tuple[str, list[str], int, str]) -> np.ndarray:
  """Decodes members of one zip or folder (runs in a worker process)."""
  source, members, image_size, where = job
  out = np.empty((len(members), image_size, image_size), np.uint8)
  is_zip = source.endswith(".zip")
  zf = zipfile.ZipFile(source) if is_zip else None
  try:
    for i, member in enumerate(members):
      try:
        if zf is not None:
          data = zf.read(member)
        else:
          with open(os.path.join(os.path.dirname(source), member), "rb") as f:
            data = f.read()
        out[i] = decode_png(data, image_size)
      except (zipfile.BadZipFile, KeyError, OSError, SyntaxError, ValueError) as e:
        raise errors.DataError(
            f"{where}: {member} cannot be decoded as an image ({e})") from None
  finally:
    if zf is not None:
      zf.close()
  return out


def _decode_all(data_dir: str, sources: dict[str, str], image_size: int,
                num_workers: int) -> Characters:
  keys, background, jobs, drawings = [], [], [], set()
  chunk = 1000
  for set_name in SETS:
    set_keys, set_members = _list_members(sources[set_name], set_name, data_dir)
    keys += set_keys
    background += [set_name == SETS[0]] * len(set_keys)
    drawings.add(len(set_members[0]))
    flat = [m for members in set_members for m in members]
    where = f"{_FLAG}={data_dir}: {os.path.basename(sources[set_name])}"
    jobs += [(sources[set_name], flat[i:i + chunk], image_size, where)
             for i in range(0, len(flat), chunk)]
  if len(drawings) != 1:
    raise errors.DataError(
        f"{_FLAG}={data_dir}: images_background and images_evaluation have different "
        "numbers of drawings per character")
  workers = num_workers or class_images.default_num_workers()
  if sum(len(j[1]) for j in jobs) < 2000:
    workers = 1  # Starting processes costs more than decoding a small set.
  decoded = np.concatenate(class_images.parallel_map(_decode_chunk, jobs, workers))
  images = decoded.reshape(len(keys), drawings.pop(), image_size, image_size, 1)
  return Characters(
      images=images,
      alphabets=tuple(k[0] for k in keys),
      characters=tuple(k[1] for k in keys),
      background=np.asarray(background, dtype=bool))


def load_characters(data_dir: str, *, image_size: int = 28, cache_dir: str = "",
                    download: bool = True, num_workers: int = 0) -> Characters:
  """All Omniglot characters, decoded once and then read from the cache.

  Args:
    data_dir: directory with the two zips or extracted folders
      (``--config.data.path``).
    image_size: side of the square output images.
    cache_dir: where the decoded ``.npz`` lives; '' means ``<data_dir>/.cache`` if
      writable, else ``~/.cache/metalearn``.
    download: fetch missing zips from the original release (sha256 checked).
    num_workers: decoding processes; 0 means ``class_images.default_num_workers()``.

  Returns:
    The characters in global character order.

  Raises:
    DataError: missing, corrupt or badly laid out files, or an undecodable image.
  """
  if image_size < 1:
    raise errors.ConfigError(f"config.data.image_size={image_size}: must be positive")
  sources = _find_sources(data_dir, download)
  fingerprint = _fingerprint(sources, image_size)
  cache_dir = cache_dir or class_images.default_cache_dir(data_dir)
  cache_path = os.path.join(
      cache_dir, f"omniglot-{image_size}px-{fingerprint[:16]}.npz")
  cached = class_images.load_npz(cache_path, fingerprint)
  if cached is not None:
    return Characters(
        images=cached["images"], alphabets=tuple(cached["alphabets"].tolist()),
        characters=tuple(cached["characters"].tolist()),
        background=cached["background"])
  start = time.perf_counter()
  chars = _decode_all(data_dir, sources, image_size, num_workers)
  _log.info("decoded %d Omniglot characters in %.1f s", len(chars.alphabets),
               time.perf_counter() - start)
  try:
    atomic.write_npz(
        cache_path, images=chars.images, alphabets=np.asarray(chars.alphabets),
        characters=np.asarray(chars.characters), background=chars.background,
        fingerprint=np.asarray(fingerprint))
  except OSError as e:
    _log.warning("cannot write the Omniglot cache %s (%s)", cache_path, e)
  return chars


def split_characters(chars: Characters, protocol: str = "maml", *, seed: int = 1,
                     maml_sizes: tuple[int, int] = MAML_SPLIT_SIZES,
                     lake_val_alphabets: int = 5) -> dict[str, np.ndarray]:
  """Sorted global character indices of the ``train``, ``val`` and ``test`` splits.

  Args:
    chars: all characters.
    protocol: ``"maml"`` or ``"lake"`` (see the module docstring).
    seed: seed of the permutation that assigns characters or alphabets to splits.
    maml_sizes: meta-train and meta-validation sizes of the ``maml`` protocol.
    lake_val_alphabets: background alphabets held out for ``lake`` meta-validation.

  Returns:
    ``{"train": ..., "val": ..., "test": ...}`` int64 index arrays.

  Raises:
    ConfigError: unknown protocol or sizes that do not fit the data.
  """
  num_chars = len(chars.alphabets)
  rng = np.random.RandomState(seed)
  if protocol == "maml":
    num_train, num_val = maml_sizes
    if num_train + num_val >= num_chars:
      raise errors.ConfigError(
          f"config.data.protocol=maml: needs more than {num_train}+{num_val} "
          f"characters, the data has {num_chars}")
    perm = rng.permutation(num_chars)
    parts = np.split(perm, [num_train, num_train + num_val])
    return {k: np.sort(p) for k, p in zip(("train", "val", "test"), parts)}
  if protocol == "lake":
    bg_alphabets = sorted({a for a, b in zip(chars.alphabets, chars.background) if b})
    if not 0 <= lake_val_alphabets < len(bg_alphabets):
      raise errors.ConfigError(
          f"config.data.lake_val_alphabets={lake_val_alphabets}: must be in "
          f"[0, {len(bg_alphabets)}) (background alphabets)")
    held_out = {bg_alphabets[i]
                for i in rng.permutation(len(bg_alphabets))[:lake_val_alphabets]}
    alphabets = np.asarray(chars.alphabets)
    is_val = chars.background & np.isin(alphabets, list(held_out))
    return {"train": np.flatnonzero(chars.background & ~is_val),
            "val": np.flatnonzero(is_val),
            "test": np.flatnonzero(~chars.background)}
  raise errors.ConfigError(
      f"config.data.protocol={protocol!r}: must be 'maml' or 'lake'")


def rotated_classes(chars: Characters, indices: np.ndarray, rotations: bool,
                    name: str) -> ClassImages:
  """The characters at ``indices`` as classes, each x4 rotations if ``rotations``.

  Rows are character-major: character ``i`` at 0, 90, 180, 270 degrees, then ``i+1``.
  """
  images = chars.images[indices]
  names = chars.names
  alphabet_ids = chars.alphabet_ids[indices]
  if not rotations:
    return ClassImages(
        images=images, class_names=tuple(names[i] for i in indices),
        class_ids=(NUM_ROTATIONS * np.asarray(indices)).astype(np.int32), name=name,
        alphabet_ids=alphabet_ids)
  rotated = np.stack([np.rot90(images, k, axes=(2, 3)) for k in range(NUM_ROTATIONS)],
                     axis=1)
  return ClassImages(
      images=np.ascontiguousarray(rotated.reshape((-1,) + images.shape[1:])),
      class_names=tuple(f"{names[i]}/rot{90 * k:03d}"
                        for i in indices for k in range(NUM_ROTATIONS)),
      class_ids=(NUM_ROTATIONS * np.asarray(indices)[:, None]
                 + np.arange(NUM_ROTATIONS)[None, :]).reshape(-1).astype(np.int32),
      name=name, alphabet_ids=np.repeat(alphabet_ids, NUM_ROTATIONS))


def load_split(data_dir: str, split: str, *, protocol: str = "maml", seed: int = 1,
               rotations: bool = True, eval_rotations: bool = False,
               num_train_classes: int = 0, train_class_fraction: float = 0.0,
               lake_val_alphabets: int = 5, image_size: int = 28,
               cache_dir: str = "", download: bool = True, num_workers: int = 0,
               chars: Characters | None = None) -> ClassImages:
  """One split of Omniglot as class-indexed images (see the module docstring).

  Args:
    data_dir: directory with the release (``--config.data.path``).
    split: ``"train"``, ``"val"`` or ``"test"``.
    protocol: ``"maml"`` or ``"lake"``.
    seed: split seed (``config.data.split_seed``); also picks the kept subset.
    rotations: add 90/180/270-degree rotations as classes of meta-train.
    eval_rotations: add them to meta-validation and meta-test too.
    num_train_classes: keep this many meta-training characters (0: all).
    train_class_fraction: or keep this fraction of them (0: all).
    lake_val_alphabets: background alphabets held out for ``lake`` validation.
    image_size: side of the square images.
    cache_dir: cache directory ('' for the default).
    download: fetch missing zips.
    num_workers: decoding processes (0: automatic).
    chars: already loaded characters (skips loading; for callers that load once).

  Returns:
    The split; ``images`` is ``[C, 20, S, S, 1]`` uint8.
  """
  if split not in ("train", "val", "test"):
    raise errors.ConfigError(f"split={split!r}: must be 'train', 'val' or 'test'")
  if chars is None:
    chars = load_characters(data_dir, image_size=image_size, cache_dir=cache_dir,
                            download=download, num_workers=num_workers)
  indices = split_characters(chars, protocol, seed=seed,
                             lake_val_alphabets=lake_val_alphabets)[split]
  if split == "train":
    keep = class_images.num_kept_classes(
        len(indices), num_train_classes, train_class_fraction,
        what="meta-training characters")
    indices = indices[class_images.nested_subset(len(indices), keep, seed)]
  rotate = rotations if split == "train" else eval_rotations
  return rotated_classes(chars, indices, rotate, f"omniglot/{protocol}/{split}")
