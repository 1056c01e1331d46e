"""Tests of the Omniglot reader, cache and splits.

Most tests use a tiny release written to tmp_path (random 105x105 mode-'1' PNGs);
the real-data tests at the end read ``<repo>/../shared/data/omniglot`` (or
``$METALEARN_OMNIGLOT_DIR``) and skip when it is absent. They decode it once per
session into a temporary cache.
"""

import io
import os
import shutil
import time
import urllib.error
import zipfile

import numpy as np
import pytest
from PIL import Image

from metalearn import errors
from metalearn.tasks import class_images, omniglot

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REAL_DIR = os.environ.get("METALEARN_OMNIGLOT_DIR",
                          os.path.join(REPO, "..", "shared", "data", "omniglot"))
# (alphabets, characters per alphabet) of the fixture's two sets.
FIXTURE = {"images_background": (("Beta", 3), ("Alpha", 2), ("Gamma", 2)),
           "images_evaluation": (("Delta", 2), ("Epsilon", 3))}
DRAWINGS = 4


def _png(seed: int) -> bytes:
  rng = np.random.RandomState(seed)
  ink = rng.rand(105, 105) < 0.1
  buf = io.BytesIO()
  Image.fromarray(~ink).convert("1").save(buf, format="PNG")  # White background.
  return buf.getvalue()


def make_release(root, drawings=DRAWINGS, seed=0, sets=FIXTURE):
  """Writes a tiny Omniglot release (two zips) into ``root``; returns ``root``."""
  os.makedirs(root, exist_ok=True)
  for set_name, alphabets in sets.items():
    with zipfile.ZipFile(os.path.join(root, set_name + ".zip"), "w") as zf:
      for alphabet, num_chars in alphabets:
        for c in range(num_chars):
          for d in range(drawings):
            seed += 1
            zf.writestr(f"{set_name}/{alphabet}/character{c + 1:02d}/{seed:04d}_{d + 1:02d}.png",
                        _png(seed))
  return str(root)


def _one_line(excinfo):
  assert "\n" not in str(excinfo.value)
  return str(excinfo.value)


def test_reads_fixture_in_global_order(tmp_path):
  data = make_release(tmp_path / "data")
  chars = omniglot.load_characters(data, cache_dir=str(tmp_path / "cache"),
                                   download=False)
  assert chars.images.shape == (12, DRAWINGS, 28, 28, 1)
  assert chars.images.dtype == np.uint8
  assert chars.names[:3] == ("Alpha/character01", "Alpha/character02",
                             "Beta/character01")
  assert chars.alphabets[7:] == ("Delta",) * 2 + ("Epsilon",) * 3
  np.testing.assert_array_equal(chars.background, [True] * 7 + [False] * 5)
  # Alpha/character01 drawing 1 is the 9th PNG written (Beta was written first).
  expected = 255 - np.asarray(Image.open(io.BytesIO(_png(3 * DRAWINGS + 1))).convert("L")
                              .resize((28, 28), Image.LANCZOS))
  np.testing.assert_array_equal(chars.images[0, 0, :, :, 0], expected)


def test_decode_png_inverts_and_resizes():
  buf = io.BytesIO()
  image = np.ones((105, 105), bool)
  image[:, :52] = False  # Left half ink (black in the PNG).
  Image.fromarray(image).convert("1").save(buf, format="PNG")
  out = omniglot.decode_png(buf.getvalue(), 28)
  assert out.shape == (28, 28) and out.dtype == np.uint8
  assert (out[:, :11] >= 250).all() and (out[:, 16:] <= 5).all()
  assert 0 < out[0, 13] < 255  # Antialiased edge.


def test_extracted_folders_equal_zips(tmp_path):
  data = make_release(tmp_path / "zips")
  folder = tmp_path / "folders"
  for set_name in omniglot.SETS:
    with zipfile.ZipFile(os.path.join(data, set_name + ".zip")) as zf:
      zf.extractall(folder)
  a = omniglot.load_characters(data, cache_dir=str(tmp_path / "c1"), download=False)
  b = omniglot.load_characters(str(folder), cache_dir=str(tmp_path / "c2"),
                               download=False)
  np.testing.assert_array_equal(a.images, b.images)
  assert a.names == b.names


def test_cache_is_reused_and_rebuilt_when_source_changes(tmp_path, monkeypatch):
  data = make_release(tmp_path / "data")
  cache = tmp_path / "cache"
  first = omniglot.load_characters(data, cache_dir=str(cache), download=False)
  files = os.listdir(cache)
  assert len(files) == 1 and files[0].endswith(".npz")  # No temporary file left.
  real_decode = omniglot._decode_all
  calls = []

  def counting_decode(*args, **kwargs):
    calls.append(1)
    return real_decode(*args, **kwargs)

  monkeypatch.setattr(omniglot, "_decode_all", counting_decode)
  again = omniglot.load_characters(data, cache_dir=str(cache), download=False)
  assert not calls
  np.testing.assert_array_equal(first.images, again.images)
  assert first.names == again.names
  # Same layout, different drawings: a new fingerprint, so decoded again.
  make_release(tmp_path / "data", seed=500)
  changed = omniglot.load_characters(data, cache_dir=str(cache), download=False)
  assert len(calls) == 1
  assert not np.array_equal(first.images, changed.images)
  # A damaged cache file is rebuilt, not an error.
  for name in os.listdir(cache):
    with open(cache / name, "wb") as f:
      f.write(b"garbage")
  omniglot.load_characters(data, cache_dir=str(cache), download=False)
  assert len(calls) == 2


def test_maml_split_sizes_rotations_and_subsets(tmp_path):
  data = make_release(tmp_path / "data")
  chars = omniglot.load_characters(data, cache_dir=str(tmp_path / "c"), download=False)
  parts = omniglot.split_characters(chars, "maml", seed=1, maml_sizes=(6, 2))
  assert [len(parts[k]) for k in ("train", "val", "test")] == [6, 2, 4]
  assert sorted(np.concatenate(list(parts.values())).tolist()) == list(range(12))
  other = omniglot.split_characters(chars, "maml", seed=2, maml_sizes=(6, 2))
  assert not np.array_equal(parts["train"], other["train"])

  train = omniglot.rotated_classes(chars, parts["train"], True, "t")
  assert train.images.shape == (24, DRAWINGS, 28, 28, 1)
  np.testing.assert_array_equal(train.class_ids[:4], 4 * parts["train"][0] + np.arange(4))
  np.testing.assert_array_equal(train.images[1], np.rot90(chars.images[parts["train"][0]],
                                                          1, axes=(1, 2)))
  assert train.class_names[2].endswith("/rot180")
  test = omniglot.rotated_classes(chars, parts["test"], False, "t")
  np.testing.assert_array_equal(test.class_ids, 4 * parts["test"])
  assert not set(train.class_ids.tolist()) & set(test.class_ids.tolist())


def test_lake_split_and_kept_train_classes(tmp_path):
  data = make_release(tmp_path / "data")
  kwargs = {"protocol": "lake", "cache_dir": str(tmp_path / "c"), "download": False,
            "lake_val_alphabets": 1}
  train = omniglot.load_split(data, "train", **kwargs)
  val = omniglot.load_split(data, "val", **kwargs)
  test = omniglot.load_split(data, "test", **kwargs)
  alphabets = lambda split: {n.split("/")[0] for n in split.class_names}
  assert alphabets(test) == {"Delta", "Epsilon"} and test.num_classes == 5
  assert len(alphabets(val)) == 1 and not alphabets(val) & alphabets(train)
  assert train.num_classes // 4 + val.num_classes == 7  # Train is rotated x4.
  assert val.images.shape[0] == val.class_ids.shape[0]
  # Kept subsets are counted in characters (before rotation) and nested.
  small = omniglot.load_split(data, "train", num_train_classes=2, **kwargs)
  large = omniglot.load_split(data, "train", num_train_classes=3, **kwargs)
  assert small.num_classes == 8 and large.num_classes == 12
  assert set(small.class_ids.tolist()) <= set(large.class_ids.tolist())
  half = omniglot.load_split(data, "train", train_class_fraction=0.5, **kwargs)
  assert half.num_classes == 4 * round(0.5 * train.num_classes // 4)
  with pytest.raises(errors.ConfigError, match="num_train_classes=99"):
    omniglot.load_split(data, "train", num_train_classes=99, **kwargs)
  with pytest.raises(errors.ConfigError, match="config.data.protocol='nope'"):
    omniglot.load_split(data, "train", protocol="nope", cache_dir=str(tmp_path / "c"),
                        download=False)


def test_missing_directory(tmp_path):
  with pytest.raises(errors.DataError, match="--config.data.path=.*does not exist") as e:
    omniglot.load_characters(str(tmp_path / "nope"), download=False)
  _one_line(e)
  with pytest.raises(errors.DataError, match="images_background.zip nor"):
    omniglot.load_characters(str(tmp_path), download=False)


def test_truncated_zip(tmp_path):
  data = make_release(tmp_path / "data")
  path = os.path.join(data, "images_background.zip")
  with open(path, "rb") as f:
    head = f.read(os.path.getsize(path) // 2)
  with open(path, "wb") as f:
    f.write(head)
  with pytest.raises(errors.DataError,
                     match="images_background.zip is not a valid zip file") as e:
    omniglot.load_characters(data, cache_dir=str(tmp_path / "c"), download=False)
  _one_line(e)


def test_wrong_layout(tmp_path):
  data = make_release(tmp_path / "data")
  with zipfile.ZipFile(os.path.join(data, "images_background.zip"), "w") as zf:
    zf.writestr("Alpha/character01/0001_01.png", _png(1))  # No images_background/.
  with pytest.raises(errors.DataError, match=r"no images at images_background/<alpha") as e:
    omniglot.load_characters(data, cache_dir=str(tmp_path / "c"), download=False)
  assert "top-level entries: Alpha" in _one_line(e)


def test_unequal_drawings(tmp_path):
  data = make_release(tmp_path / "data")
  with zipfile.ZipFile(os.path.join(data, "images_evaluation.zip"), "a") as zf:
    zf.writestr("images_evaluation/Delta/character01/9999_05.png", _png(9))
  with pytest.raises(errors.DataError, match="Delta/character01 has 5 drawings"):
    omniglot.load_characters(data, cache_dir=str(tmp_path / "c"), download=False)


def test_image_that_does_not_decode(tmp_path):
  data = make_release(tmp_path / "data")
  with zipfile.ZipFile(os.path.join(data, "images_evaluation.zip"), "a") as zf:
    zf.writestr("images_evaluation/Omega/character01/0001_01.png", b"not a png")
    for d in range(2, DRAWINGS + 1):  # A full character, so the layout check passes.
      zf.writestr(f"images_evaluation/Omega/character01/0001_{d:02d}.png", _png(d))
  with pytest.raises(errors.DataError,
                     match="Omega/character01/0001_01.png cannot be decoded") as e:
    omniglot.load_characters(data, cache_dir=str(tmp_path / "c"), download=False)
  _one_line(e)


def test_download_offline_names_the_flag(tmp_path, monkeypatch):
  def offline(url):
    raise urllib.error.URLError("Temporary failure in name resolution")

  monkeypatch.setattr(omniglot, "_fetch", offline)
  with pytest.raises(errors.DataError, match="downloading https://github.com/brendenlake"
                     ) as e:
    omniglot.load_characters(str(tmp_path / "new"), cache_dir=str(tmp_path / "c"))
  assert "point --config.data.path at" in _one_line(e)


def test_download_checks_sha256(tmp_path, monkeypatch):
  release = make_release(tmp_path / "release")
  contents = {}
  for set_name in omniglot.SETS:
    with open(os.path.join(release, set_name + ".zip"), "rb") as f:
      contents[omniglot.URL.format(set_name)] = f.read()
  monkeypatch.setattr(omniglot, "_fetch", contents.__getitem__)
  with pytest.raises(errors.DataError, match="has sha256 .*, expected ad41ab67") as e:
    omniglot.load_characters(str(tmp_path / "new"), cache_dir=str(tmp_path / "c"))
  _one_line(e)
  import hashlib  # pylint: disable=g-import-not-at-top
  monkeypatch.setattr(omniglot, "SHA256", {
      s: hashlib.sha256(contents[omniglot.URL.format(s)]).hexdigest()
      for s in omniglot.SETS})
  chars = omniglot.load_characters(str(tmp_path / "new"), cache_dir=str(tmp_path / "c"))
  assert chars.images.shape[0] == 12
  assert sorted(os.listdir(tmp_path / "new")) == ["images_background.zip",
                                                  "images_evaluation.zip"]


# --- Real data --------------------------------------------------------------------

needs_real = pytest.mark.skipif(
    not os.path.isdir(REAL_DIR),
    reason=f"Omniglot not found at {REAL_DIR} (set METALEARN_OMNIGLOT_DIR)")


@pytest.fixture(scope="module")
def real(tmp_path_factory):
  cache = str(tmp_path_factory.mktemp("omniglot_cache"))
  start = time.perf_counter()
  chars = omniglot.load_characters(REAL_DIR, cache_dir=cache, download=False)
  first_s = time.perf_counter() - start
  return chars, cache, first_s


@needs_real
def test_real_counts(real):
  chars, _, first_s = real
  print(f"first Omniglot load (decode + cache): {first_s:.1f} s")
  assert chars.images.shape == (1623, 20, 28, 28, 1)
  assert chars.background.sum() == 964 and (~chars.background).sum() == 659
  assert len(set(chars.alphabets[:964])) == 30 and len(set(chars.alphabets[964:])) == 20
  assert len(set(chars.names)) == 1623
  # Strokes bright on a dark background.
  assert chars.images.mean() < 40 and chars.images.max() == 255


@needs_real
def test_real_cache_reuse(real):
  chars, cache, first_s = real
  start = time.perf_counter()
  again = omniglot.load_characters(REAL_DIR, cache_dir=cache, download=False)
  cached_s = time.perf_counter() - start
  print(f"cached Omniglot load: {cached_s:.2f} s")
  assert cached_s < first_s / 5
  np.testing.assert_array_equal(chars.images, again.images)


@needs_real
def test_real_splits(real):
  chars, cache, _ = real
  kw = {"cache_dir": cache, "download": False, "chars": chars}
  maml = {s: omniglot.load_split(REAL_DIR, s, **kw) for s in ("train", "val", "test")}
  assert [maml[s].num_classes for s in ("train", "val", "test")] == [4400, 100, 423]
  lake = {s: omniglot.load_split(REAL_DIR, s, protocol="lake", rotations=False, **kw)
          for s in ("train", "val", "test")}
  assert lake["train"].num_classes + lake["val"].num_classes == 964
  assert lake["test"].num_classes == 659
  for splits in (maml, lake):
    chars_of = {s: set((splits[s].class_ids // 4).tolist()) for s in splits}
    assert not chars_of["train"] & chars_of["val"]
    assert not chars_of["train"] & chars_of["test"]
    assert not chars_of["val"] & chars_of["test"]
    assert len(set.union(*chars_of.values())) == 1623
  alphabets = lambda s: {n.split("/")[0] for n in lake[s].class_names}
  assert not alphabets("train") & alphabets("val")
  assert len(alphabets("val")) == 5
  eighth = omniglot.load_split(REAL_DIR, "train", num_train_classes=1100 // 8, **kw)
  assert eighth.num_classes == 4 * 137
  assert set(eighth.class_ids.tolist()) <= set(maml["train"].class_ids.tolist())


@needs_real
def test_real_changed_source_rebuilds(real, tmp_path, monkeypatch):
  _, cache, _ = real
  data = tmp_path / "data"
  data.mkdir()
  os.symlink(os.path.join(os.path.abspath(REAL_DIR), "images_background.zip"),
             data / "images_background.zip")
  shutil.copy(os.path.join(REAL_DIR, "images_evaluation.zip"), data)
  os.chmod(data / "images_evaluation.zip", 0o644)
  with zipfile.ZipFile(data / "images_evaluation.zip", "a") as zf:
    zf.comment = b"changed"  # Same images, different bytes.
  calls = []

  def fake_decode(*args, **kwargs):
    calls.append(1)
    raise RuntimeError("decode called")

  monkeypatch.setattr(omniglot, "_decode_all", fake_decode)
  omniglot.load_characters(REAL_DIR, cache_dir=cache, download=False)  # Cached.
  assert not calls
  with pytest.raises(RuntimeError, match="decode called"):
    omniglot.load_characters(str(data), cache_dir=cache, download=False)
  assert calls


def test_parallel_decoding_equals_serial_and_raises_data_error(tmp_path):
  data = make_release(tmp_path / "data")
  path = os.path.join(data, "images_background.zip")
  with zipfile.ZipFile(path) as zf:
    members = sorted(n for n in zf.namelist() if n.endswith(".png"))
  jobs = [(path, members[i:i + 7], 28, "where") for i in range(0, len(members), 7)]
  serial = class_images.parallel_map(omniglot._decode_chunk, jobs, 1)
  parallel = class_images.parallel_map(omniglot._decode_chunk, jobs, 2)
  np.testing.assert_array_equal(np.concatenate(serial), np.concatenate(parallel))
  bad = jobs + [(path, ["images_background/missing.png"], 28, "where")]
  with pytest.raises(errors.DataError, match="missing.png cannot be decoded"):
    class_images.parallel_map(omniglot._decode_chunk, bad, 2)
