"""Few-shot image classification as a task family: a split loaded from ``config.data``,
episodes sampled on the device (``sampling.ImageTaskFamily``)."""

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from metalearn.errors import ConfigError
from metalearn.tasks import base
from metalearn.tasks import datasets
from metalearn.tasks import sampling
from metalearn.tasks.episode import Episode

# Stand-in examples per class beyond shots + queries for shape-only sampling.
_SPARE = 64


@dataclasses.dataclass(frozen=True)
class ImageTasks:
  """N-way K-shot episodes of one data set's splits.

  Attributes:
    episodes: the episode shape and rotation (hashable; what sampling compiles for).
    data: ``config.data`` (the loader's settings).
  """

  episodes: sampling.ImageTaskFamily
  data: Any = dataclasses.field(compare=False, hash=False, repr=False)

  def sample(self, key: jax.Array, data: Any, num_tasks: int) -> Episode:
    return self.episodes.sample(key, data, num_tasks)

  def input_shape(self) -> tuple[int, int, int]:
    name, size = self.data.name, self.data.image_size
    if name == "omniglot":
      return (size or 28, size or 28, 1)
    if name == "miniimagenet":
      return (size or 84, size or 84, 3)
    return tuple(datasets.load_split(self.data, "train").images.shape[2:])

  def load(self, split: str) -> sampling.ImageData:
    """The split on the device; raises ``DataError`` now if it cannot supply episodes."""
    data = sampling.to_device(datasets.load_split(self.data, split))
    self.episodes.check(data)
    return data

  def abstract_data(self) -> jax.ShapeDtypeStruct | sampling.ImageData:
    e = self.episodes
    images = jax.ShapeDtypeStruct((e.ways, e.shots + e.queries + _SPARE)
                                  + self.input_shape(), jnp.uint8)
    if not e.within_alphabet:
      return images
    ids = jax.ShapeDtypeStruct((e.ways,), jnp.int32)
    return sampling.ImageData(images=images, class_ids=ids, alphabet_ids=ids)


def make(config, evaluation: bool) -> ImageTasks:
  e = config.eval if evaluation else None
  ways = (e and e.ways) or config.ways
  shots = (e and e.shots) or config.shots
  queries = (e and e.queries) or config.queries
  rotate = config.eval.rotate if evaluation else config.rotate
  within = config.eval.within_alphabet if evaluation else config.within_alphabet
  return ImageTasks(sampling.ImageTaskFamily(ways=ways, shots=shots, queries=queries,
                                             rotate=bool(rotate),
                                             within_alphabet=bool(within)), config.data)


def _check(config) -> None:
  if config.sinusoid_pool:
    raise ConfigError("config.sinusoid_pool: sets the sinusoid task pool; image tasks "
                      "use data.num_train_classes or data.train_class_fraction")
  for key, value in (("within_alphabet", config.within_alphabet),
                     ("eval.within_alphabet", config.eval.within_alphabet)):
    if value and config.data.name != "omniglot":
      raise ConfigError(f"config.{key}: draws an episode's classes from one alphabet; "
                        f"config.data.name={config.data.name!r} has no alphabets "
                        "(only 'omniglot' has)")


KIND = base.TaskKind(name="images", make=make, loss="xent",
                     data_name=lambda c: c.data.name,
                     size_keys=("data.train_class_fraction", "data.num_train_classes"),
                     check=_check, alphabets=True)
