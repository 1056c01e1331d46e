"""The task-family protocol and the record that registers a kind of task by name.

A task family is a distribution over few-shot tasks (learned_optimization's sense):

  family.sample(key, data, num_tasks) -> Episode   # a meta-batch, sampled on the device
  family.input_shape() -> tuple                     # one input example's shape
  family.load(split) -> data                        # the split's device data (or None)

``data`` is what ``load`` returned (``None`` for synthetic families): passed to
``sample`` as an argument so a jitted step keeps it out of its constants. A
``TaskKind`` builds the training and evaluation families of a config; the kinds are
registered in ``metalearn.tasks`` under the names ``config.task`` takes.
"""

import dataclasses
from typing import Any, Callable, Optional, Protocol

import jax
import numpy as np

from metalearn.errors import ConfigError

from metalearn.tasks.episode import Episode


class TaskFamily(Protocol):
  """What the meta-step, evaluation and FLOP counting need of a task family."""

  def sample(self, key: jax.Array, data: Any, num_tasks: int) -> Episode:
    ...

  def input_shape(self) -> tuple[int, ...]:
    ...

  def load(self, split: str) -> Any:
    ...


@dataclasses.dataclass(frozen=True)
class TaskKind:
  """How a config becomes task families.

  Attributes:
    name: the value of ``config.task``.
    make: ``make(config, evaluation) -> TaskFamily``; with ``evaluation`` the family of
      ``config.eval`` (its ways, shots, queries, rotation; fresh tasks only).
    loss: the loss its models train with ('mse' or 'xent'), checked against the model.
    data_name: ``data_name(config)``, the data set named in evaluation rows.
    size_keys: config keys that set how many distinct meta-training tasks or classes
      there are (the data axis of the compute-scaling sweep).
    check: extra config checks, ``check(config)`` raising ``ConfigError``.
    alphabets: its families can draw every class of an episode from one alphabet
      (``config.within_alphabet``, ``config.eval.within_alphabet``); the config
      refuses those keys for kinds without.
  """

  name: str
  make: Callable[[Any, bool], TaskFamily]
  loss: str
  data_name: Callable[[Any], str]
  size_keys: tuple[str, ...] = ()
  check: Optional[Callable[[Any], None]] = None
  alphabets: bool = False


def abstract_episodes(family: TaskFamily, num_tasks: Optional[int]) -> Episode:
  """The shapes and dtypes of a meta-batch (of one episode without the task axis if
  ``num_tasks`` is None), without data or compilation."""
  def sample(key):
    episodes = family.sample(key, abstract_data(family), num_tasks or 1)
    return episodes if num_tasks else jax.tree.map(lambda x: x[0], episodes)
  return jax.eval_shape(sample, jax.random.key(0))


def abstract_data(family: TaskFamily) -> Any:
  """A stand-in for the family's data, shapes only (``family.abstract_data()`` if it
  has one; None for synthetic families)."""
  make = getattr(family, "abstract_data", None)
  return None if make is None else make()


def check_vector_family(config, name: str) -> None:
  """The checks the synthetic vector families share (``mixture``, ``linreg``): no
  rotation and no sinusoid pool, and in ``config.<name>``: ``dim`` an integer >= 1,
  ``noise`` >= 0, ``pool`` (if present) an integer >= 0, every other key (a prior's
  standard deviation) > 0."""
  for key, value in (("rotate", config.rotate), ("eval.rotate", config.eval.rotate)):
    if value:
      raise ConfigError(f"config.{key}: turns image classes; {name} tasks have none")
  if config.sinusoid_pool:
    raise ConfigError(f"config.sinusoid_pool: sets the sinusoid task pool; {name} "
                      "tasks are always fresh")
  for key, value in config[name].items():
    where = f"config.{name}.{key}={value!r}"
    if key == "dim":
      if not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigError(f"{where}: must be an integer >= 1")
    elif key == "pool":
      if not isinstance(value, (int, np.integer)) or value < 0:
        raise ConfigError(f"{where}: must be an integer >= 0 (0: fresh tasks)")
    elif key == "noise":
      if not value >= 0:  # Also rejects NaN.
        raise ConfigError(f"{where}: must be >= 0")
    elif not value > 0:
      raise ConfigError(f"{where}: must be > 0")
