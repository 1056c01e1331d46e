"""One entry point for few-shot image splits: ``load_split(config.data, split)``.

``config.data.name`` picks the loader:

* ``omniglot``: the original release in ``path`` (``omniglot.py``), protocol ``maml``
  (1100/100/423 characters, seeded) or ``lake`` (background / evaluation alphabets).
* ``miniimagenet``: the Ravi-Larochelle layout in ``path`` (``miniimagenet.py``).
* ``tfds``: any TFDS image-classification dataset ``tfds_name`` (``tfds_data.py``),
  read from ``path`` as TFDS data dir ('' for TFDS's default); ``cifar100`` gets the
  CIFAR-FS class split.

All return a ``ClassImages`` (``images`` uint8 ``[C, E, H, W, Ch]``); put it on the
device with ``sampling.to_device`` and sample episodes with ``sampling.ImageTaskFamily``.
"""

from typing import Any

import ml_collections

from metalearn import errors
from metalearn.tasks import miniimagenet, omniglot, tfds_data
from metalearn.tasks.class_images import ClassImages

NAMES = ("omniglot", "miniimagenet", "tfds")
SPLITS = ("train", "val", "test")
PROTOCOLS = ("maml", "lake")

__all__ = ["ClassImages", "default_data_config", "load_split"]


def default_data_config() -> ml_collections.ConfigDict:
  """Data settings with defaults; experiments start from this and override keys.

  Returns:
    ConfigDict with keys:
      name: 'omniglot' | 'miniimagenet' | 'tfds'.
      path: data directory (Omniglot zips, miniImageNet layout, or TFDS data dir).
      protocol: Omniglot split protocol, 'maml' or 'lake'.
      split_seed: seed of the class split and of the kept-class subset.
      rotations: Omniglot: add 90/180/270-degree rotations as meta-train classes.
      eval_rotations: Omniglot: add them to meta-validation and meta-test too.
      num_train_classes: keep this many meta-train classes, counted before
        rotation (0: all).
      train_class_fraction: or keep this fraction of them (0.0: all).
      lake_val_alphabets: Omniglot 'lake': background alphabets held out for val.
      cache_dir: where decoded arrays are cached ('' : <path>/.cache if writable,
        else ~/.cache/metalearn).
      download: Omniglot: download missing zips (sha256-checked).
      num_workers: decoding processes (0: 1 on <= 2 CPUs, else one per CPU, max 8).
      tfds_name: TFDS dataset name for name='tfds'.
      tfds_splits: TFDS splits pooled before the class split.
      image_size: square image side (0: 28 Omniglot, 84 miniImageNet, native TFDS).
  """
  config = ml_collections.ConfigDict()
  config.name = "omniglot"
  config.path = ""
  config.protocol = "maml"
  config.split_seed = 1
  config.rotations = True
  config.eval_rotations = False
  config.num_train_classes = 0
  config.train_class_fraction = 0.0
  config.lake_val_alphabets = 5
  config.cache_dir = ""
  config.download = True
  config.num_workers = 0
  config.tfds_name = "cifar100"
  config.tfds_splits = "train+test"
  config.image_size = 0
  return config


def _get(data_cfg: Any, key: str, default: Any) -> Any:
  try:
    return data_cfg[key] if isinstance(data_cfg, dict) else getattr(data_cfg, key)
  except (KeyError, AttributeError):
    return default


def load_split(data_cfg: Any, split: str) -> ClassImages:
  """Loads one meta-split described by ``config.data``.

  Args:
    data_cfg: ``config.data`` (a ConfigDict or any object with the attributes of
      ``default_data_config()``; missing optional keys take their defaults).
    split: ``"train"``, ``"val"`` or ``"test"``.

  Returns:
    The split as ClassImages.

  Raises:
    ConfigError: unknown name, split or protocol, or bad sizes.
    DataError: missing or damaged data.
  """
  defaults = default_data_config()
  cfg = {k: _get(data_cfg, k, defaults[k]) for k in defaults}
  name = cfg["name"]
  if name not in NAMES:
    raise errors.ConfigError(
        f"config.data.name={name!r}: must be one of {', '.join(NAMES)}")
  if split not in SPLITS:
    raise errors.ConfigError(
        f"split={split!r}: must be one of {', '.join(SPLITS)}")
  if cfg["image_size"] < 0:
    raise errors.ConfigError(
        f"config.data.image_size={cfg['image_size']}: must be >= 0")
  common = {"num_train_classes": cfg["num_train_classes"],
            "train_class_fraction": cfg["train_class_fraction"]}
  if name == "omniglot":
    if cfg["protocol"] not in PROTOCOLS:
      raise errors.ConfigError(
          f"config.data.protocol={cfg['protocol']!r}: must be one of "
          f"{', '.join(PROTOCOLS)}")
    return omniglot.load_split(
        cfg["path"], split, protocol=cfg["protocol"], seed=cfg["split_seed"],
        rotations=cfg["rotations"], eval_rotations=cfg["eval_rotations"],
        lake_val_alphabets=cfg["lake_val_alphabets"],
        image_size=cfg["image_size"] or 28, cache_dir=cfg["cache_dir"],
        download=cfg["download"], num_workers=cfg["num_workers"], **common)
  if name == "miniimagenet":
    return miniimagenet.load_split(
        cfg["path"], split, image_size=cfg["image_size"] or 84,
        cache_dir=cfg["cache_dir"], num_workers=cfg["num_workers"],
        seed=cfg["split_seed"], **common)
  if not cfg["tfds_name"]:
    raise errors.ConfigError("config.data.tfds_name is empty: name a TFDS dataset")
  return tfds_data.load_split(
      cfg["tfds_name"], split, seed=cfg["split_seed"], tfds_splits=cfg["tfds_splits"],
      data_dir=cfg["path"] or None, image_size=cfg["image_size"], **common)
