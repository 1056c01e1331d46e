"""Within-alphabet episodes (Lake et al. 2015's 20-way test): the sampler's properties.

Every class of an episode shares an alphabet, classes are distinct, the alphabet is
uniform among those with at least ``ways`` classes (chi-square test) and the classes
uniform within it (a per-class bound), on a synthetic split with known alphabets and on
the real Omniglot ``lake`` split (skipped without the data). Without the option the
episode streams are bit-identical to those of the sampler before the option existed
(digests recorded with the committed code before the change), and evaluation files
written before it keep their names.
"""

import glob
import hashlib
import math
import os
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments import omniglot_lake
from experiments import sinusoid
from metalearn import config as config_lib
from metalearn import errors
from metalearn.run import workdir as workdir_lib
from metalearn.tasks import datasets
from metalearn.tasks import images as images_lib
from metalearn.tasks import omniglot
from metalearn.tasks import sampling
from metalearn.tasks.class_images import ClassImages

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OMNIGLOT = os.path.join(os.path.dirname(REPO), "shared", "data", "omniglot")
NO_DATA = f"the Omniglot release is not at {OMNIGLOT}"

# Synthetic split: alphabet id -> its number of classes. Ids are sparse (not 0..A-1),
# as global ids of a split are; with WAYS = 5, the alphabets 10 and 15 (3 and 2 classes)
# can never supply an episode.
SIZES = {10: 3, 4: 7, 30: 12, 7: 5, 22: 9, 15: 2}
WAYS, SHOTS, QUERIES = 5, 1, 2
ELIGIBLE = sorted(a for a, n in SIZES.items() if n >= WAYS)


def _synthetic() -> ClassImages:
  """Classes in an interleaved order (alphabets not contiguous); pixel (0, 0) of each
  image holds its class row, so a sampled image tells which class it came from."""
  alphabet_C = np.concatenate([[a] * n for a, n in SIZES.items()])
  alphabet_C = alphabet_C[np.random.RandomState(0).permutation(len(alphabet_C))]
  num_classes = len(alphabet_C)
  images = np.zeros((num_classes, 4, 3, 3, 1), np.uint8)
  images[:, :, 0, 0, 0] = np.arange(num_classes)[:, None]
  images[:, :, 1, 1, 0] = np.arange(4)[None, :]
  return ClassImages(images=images, class_names=tuple(map(str, range(num_classes))),
                     class_ids=(100 + np.arange(num_classes)).astype(np.int32),
                     name="synthetic", alphabet_ids=alphabet_C.astype(np.int32))


def _chi2_critical(df: int, z: float = 3.719) -> float:
  """Upper 1e-4 quantile of chi-square(df) by Wilson-Hilferty (z: the normal's)."""
  v = 2.0 / (9.0 * df)
  return df * (1.0 - v + z * math.sqrt(v)) ** 3


def _chi2_uniform(counts: np.ndarray) -> float:
  expected = counts.sum() / len(counts)
  return float(((counts - expected) ** 2 / expected).sum())


@pytest.fixture(scope="module")
def synthetic_episodes():
  split = _synthetic()
  family = sampling.ImageTaskFamily(ways=WAYS, shots=SHOTS, queries=QUERIES,
                                    within_alphabet=True)
  data = sampling.to_device(split)
  family.check(data)
  episodes = jax.device_get(jax.jit(family.sample, static_argnums=2)(
      jax.random.key(0), data, 6000))
  return split, episodes


def test_every_class_of_an_episode_shares_an_alphabet(synthetic_episodes):
  split, ep = synthetic_episodes
  rows_TxN = ep.class_ids - 100
  alphabets_TxN = split.alphabet_ids[rows_TxN]
  assert (alphabets_TxN == alphabets_TxN[:, :1]).all()
  assert set(np.unique(alphabets_TxN[:, 0])) == set(ELIGIBLE)
  # Distinct classes in every episode.
  assert (np.diff(np.sort(rows_TxN, axis=1), axis=1) > 0).all()
  # The images are those of the reported classes, support and query alike.
  pixel = lambda x: np.rint(x[..., 0, 0, 0] * 255).astype(int)
  np.testing.assert_array_equal(pixel(ep.support_x), np.repeat(rows_TxN, SHOTS, axis=1))
  np.testing.assert_array_equal(pixel(ep.query_x), np.repeat(rows_TxN, QUERIES, axis=1))


def test_alphabets_are_uniform_among_those_with_enough_classes(synthetic_episodes):
  split, ep = synthetic_episodes
  first = split.alphabet_ids[ep.class_ids[:, 0] - 100]
  counts = np.asarray([(first == a).sum() for a in ELIGIBLE])
  # Drawn in proportion to size (7, 12, 5, 9) the statistic would be about 470.
  assert _chi2_uniform(counts) < _chi2_critical(len(ELIGIBLE) - 1), counts


def test_classes_are_uniform_within_their_alphabet(synthetic_episodes):
  split, ep = synthetic_episodes
  tasks = ep.class_ids.shape[0]
  included = np.bincount((ep.class_ids - 100).ravel(), minlength=split.num_classes)
  for row, alphabet in enumerate(split.alphabet_ids):
    if alphabet not in ELIGIBLE:
      assert included[row] == 0
      continue
    p = WAYS / SIZES[int(alphabet)] / len(ELIGIBLE)
    assert abs(included[row] - tasks * p) < 5 * math.sqrt(tasks * p * (1 - p)), row
  # The label order is a random permutation: each row is label 0 about 1/ways of the
  # times its alphabet is drawn (a sorted top_k would always give the largest first).
  first_row = np.bincount(ep.class_ids[:, 0] - 100, minlength=split.num_classes)
  biggest = [r for r, a in enumerate(split.alphabet_ids) if a == 30]
  p = 1 / 12 / len(ELIGIBLE)
  assert all(abs(first_row[r] - tasks * p) < 5 * math.sqrt(tasks * p) for r in biggest)


def test_one_episode_and_rotation_keep_the_alphabet():
  split = _synthetic()
  data = sampling.to_device(split)
  for rotate in (False, True):
    family = sampling.ImageTaskFamily(ways=WAYS, shots=SHOTS, queries=QUERIES,
                                      rotate=rotate, within_alphabet=True)
    for seed in range(20):
      one = family.sample_one(jax.random.key(seed), data)
      alphabets = split.alphabet_ids[np.asarray(one.class_ids) - 100]
      assert one.class_ids.shape == (WAYS,) and len(set(alphabets.tolist())) == 1


def test_too_few_classes_or_no_alphabets_is_a_clear_error():
  split = _synthetic()
  data = sampling.to_device(split)
  family = sampling.ImageTaskFamily(ways=13, shots=1, queries=1, within_alphabet=True)
  with pytest.raises(errors.DataError, match="no alphabet of synthetic has 13 classes"):
    family.check(split)
  with pytest.raises(errors.DataError, match="no alphabet .* has 13 classes"):
    family.check(data)
  # 12 classes: only alphabet 30 qualifies, and it is the only one drawn.
  twelve = sampling.ImageTaskFamily(ways=12, shots=1, queries=1, within_alphabet=True)
  twelve.check(data)
  ep = twelve.sample(jax.random.key(1), data, 50)
  assert set(split.alphabet_ids[np.asarray(ep.class_ids).ravel() - 100]) == {30}
  plain = sampling.ImageData(data.images, data.class_ids)
  ok = sampling.ImageTaskFamily(ways=WAYS, shots=1, queries=1, within_alphabet=True)
  with pytest.raises(errors.DataError, match="need the alphabet of each class"):
    ok.check(plain)
  with pytest.raises(errors.DataError, match="need the alphabet of each class"):
    ok.sample(jax.random.key(0), plain, 2)
  with pytest.raises(errors.DataError, match="need the alphabet of each class"):
    ok.sample(jax.random.key(0), data.images, 2)


def test_config_refuses_within_alphabet_where_there_are_no_alphabets():
  c = sinusoid.get_config("smoke")
  c.within_alphabet = True
  with pytest.raises(errors.ConfigError, match=r"config\.within_alphabet: .*sinusoid"):
    config_lib.validate(c)
  c = omniglot_lake.get_config("maml_20way1shot,smoke")
  config_lib.validate(c)
  c.data.name = "miniimagenet"
  c.model.name = "conv4_miniimagenet"
  with pytest.raises(errors.ConfigError, match=r"config\.eval\.within_alphabet: .*"
                     "miniimagenet"):
    config_lib.validate(c)
  with pytest.raises(errors.ConfigError, match="unknown variant"):
    omniglot_lake.get_config("maml_20way5shot")


def test_lake_configs_evaluate_within_alphabet_and_train_as_asked():
  for arg in ("maml_20way1shot", "protonet_20way1shot", "maml_20way1shot,smoke",
              "protonet_20way1shot,within_train,smoke"):
    config_lib.validate(omniglot_lake.get_config(arg))
    assert omniglot_lake.get_config(arg).keys() == config_lib.base_config().keys()
  for arg in ("maml_20way1shot", "protonet_20way1shot"):
    c = omniglot_lake.get_config(arg)
    assert c.data.protocol == "lake" and not c.data.eval_rotations
    evaluation, training = images_lib.make(c, True), images_lib.make(c, False)
    assert evaluation.episodes == sampling.ImageTaskFamily(
        ways=20, shots=1, queries=1, within_alphabet=True)
    assert not training.episodes.within_alphabet
    assert config_lib.eval_protocol(c).within_alphabet
  c = omniglot_lake.get_config("maml_20way1shot,within_train")
  assert images_lib.make(c, False).episodes.within_alphabet


# ---- Without the option, nothing changes. ----

# sha256[:16] of episodes drawn by the committed sampler before within-alphabet
# episodes were added (CPU, jax 0.10.2). Regenerate only for an intended change of the
# stream, and say so.
BEFORE = {
    "batch": "f4bc07d55e0e11a8",
    "batch_rotate": "51ca6cd69e0ef309",
    "one": "21e21fc019df8715",
    "family": "90db80e4d80c6fbe",
    "family_one_rotate": "7c23bbb2532efc8e",
    "lake_test": "4751d188283e63e3",
    "lake_train": "edc7a8e4be96e523",
}


def _digest(episodes) -> str:
  h = hashlib.sha256()
  for leaf in jax.tree.leaves(jax.device_get(episodes)):
    a = np.ascontiguousarray(np.asarray(leaf))
    h.update(f"{a.dtype}{a.shape}".encode())
    h.update(a.tobytes())
  return h.hexdigest()[:16]


def test_streams_without_the_option_are_bit_identical_to_before():
  images = jnp.asarray(np.random.RandomState(0).randint(0, 256, (10, 8, 6, 6, 1))
                       .astype(np.uint8))
  ids = jnp.asarray((3 + 5 * np.arange(10)).astype(np.int32))
  data = sampling.ImageData(images, ids)
  got = {
      "batch": sampling.sample_episodes(jax.random.key(3), images, 16, ways=5, shots=2,
                                        queries=3, class_ids=ids),
      "batch_rotate": sampling.sample_episodes(
          jax.random.key(3), images, 16, ways=5, shots=2, queries=3, class_ids=ids,
          rotate=True),
      "one": sampling.sample_episode(jax.random.key(4), images, ways=4, shots=1,
                                     queries=2),
      "family": sampling.ImageTaskFamily(ways=5, shots=1, queries=2).sample(
          jax.random.key(5), data, 8),
      "family_one_rotate": sampling.ImageTaskFamily(
          ways=3, shots=2, queries=1, rotate=True).sample_one(jax.random.key(6), data),
  }
  assert {k: _digest(v) for k, v in got.items()} == {k: BEFORE[k] for k in got}


def _lake(split: str) -> sampling.ImageData:
  cfg = datasets.default_data_config()
  cfg.path, cfg.protocol, cfg.download = OMNIGLOT, "lake", False
  return sampling.to_device(datasets.load_split(cfg, split))


@pytest.mark.skipif(not os.path.isdir(OMNIGLOT), reason=NO_DATA)
def test_real_lake_streams_without_the_option_are_bit_identical_to_before():
  family = sampling.ImageTaskFamily(ways=20, shots=1, queries=1)
  # The alphabets now travel with the data; without the option they are not read.
  test, train = _lake("test"), _lake("train")
  assert test.alphabet_ids is not None
  assert _digest(family.sample(jax.random.key(7), test, 4)) == BEFORE["lake_test"]
  assert _digest(family.sample(jax.random.key(8), train, 4)) == BEFORE["lake_train"]


def test_evaluation_files_written_before_the_option_keep_their_names():
  paths = [p for p in glob.glob(os.path.join(REPO, "results", "**", "rows_step*.jsonl"),
                                recursive=True) if re.search(r"_[0-9a-f]{8}\.jsonl$", p)]
  if not paths:
    pytest.skip("no committed evaluation files with a protocol digest under results/")
  for p in paths:
    e = workdir_lib.evaluation_of(p)
    assert not e.protocol.within_alphabet
    run_dir = os.path.dirname(os.path.dirname(p))
    assert workdir_lib.eval_stem(run_dir, e.step, e.protocol) == p[:-len(".jsonl")]


def test_a_within_alphabet_evaluation_is_its_own_file_and_reads_back(tmp_path):
  c = omniglot_lake.get_config("maml_20way1shot,smoke")
  within = config_lib.eval_protocol(c)
  c.eval.within_alphabet = False
  whole = config_lib.eval_protocol(c)
  settings = dict(eval_split=within.split, eval_ways=within.ways,
                  eval_shots=within.shots, eval_queries=within.queries,
                  eval_inner_lr=within.inner_lr, eval_bn_mode=within.bn_mode,
                  eval_seed=within.seed, eval_batch=within.batch, eval_rotate=False,
                  bn_mode=within.bn_mode, checkpoint_step=20, episodes=within.episodes,
                  metric="accuracy", mean=0.5, ci95=0.1)
  rows = [dict(settings, k=k, eval_within_alphabet=True) for k in within.steps]
  values = {"accuracy": np.zeros((within.episodes, len(within.steps)))}
  workdir_lib.write_evaluation(str(tmp_path), 20, within, rows, values)
  (found,) = workdir_lib.evaluations(str(tmp_path))
  assert found.protocol == within and found.protocol.within_alphabet
  assert workdir_lib.find_evaluation(str(tmp_path), 20, within) is not None
  assert workdir_lib.find_evaluation(str(tmp_path), 20, whole) is None
  assert workdir_lib.episode_settings(found.stem + ".jsonl")["eval_within_alphabet"]


# ---- The real Omniglot lake split. ----


@pytest.mark.skipif(not os.path.isdir(OMNIGLOT), reason=NO_DATA)
def test_real_lake_episodes_are_within_one_alphabet():
  chars = omniglot.load_characters(OMNIGLOT, download=False)
  alphabet_of_char = np.asarray(chars.alphabets)
  parts = omniglot.split_characters(chars, "lake", seed=1)
  evaluation_alphabets = set(alphabet_of_char[parts["test"]])
  train_alphabets = set(alphabet_of_char[parts["train"]])
  assert len(evaluation_alphabets) == 20 and len(train_alphabets) == 25
  family = sampling.ImageTaskFamily(ways=20, shots=1, queries=0, within_alphabet=True)
  sample = jax.jit(family.sample, static_argnums=2)
  for split, allowed, episodes in (("test", evaluation_alphabets, 2000),
                                   ("train", train_alphabets, 300)):
    data = _lake(split)
    family.check(data)
    ids = np.concatenate([
        np.asarray(sample(jax.random.fold_in(jax.random.key(9), i), data, 500).class_ids)
        for i in range(math.ceil(episodes / 500))])
    alphabets = alphabet_of_char[ids // omniglot.NUM_ROTATIONS]
    assert (alphabets == alphabets[:, :1]).all(), split
    assert (np.diff(np.sort(ids, axis=1), axis=1) > 0).all(), split
    assert set(alphabets[:, 0]) <= allowed, split
    if split == "test":  # Every evaluation alphabet has >= 20 characters: 1/20 each.
      counts = np.asarray([(alphabets[:, 0] == a).sum() for a in sorted(allowed)])
      assert _chi2_uniform(counts) < _chi2_critical(19), counts
  # Validation: Inuktitut has 16 characters, too few for 20 ways; never drawn.
  val = _lake("val")
  ids = np.asarray(family.sample(jax.random.key(3), val, 500).class_ids)
  drawn = set(alphabet_of_char[ids[:, 0] // omniglot.NUM_ROTATIONS])
  assert len(drawn) == 4 and not any(a.startswith("Inuktitut") for a in drawn)
