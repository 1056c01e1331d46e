"""Meta-learning algorithms on one contract (``base.Algorithm``), registered by name.

  from metalearn import algorithms
  algorithms.get("maml")              # the record configs name with config.algorithm
  algorithms.register(my_algorithm)   # outside code adds its own, then names it

The meta-step, evaluation and FLOP counting take the record itself.
"""

from typing import Union

from metalearn.algorithms import base
from metalearn.algorithms import maml
from metalearn.algorithms import reptile
from metalearn.algorithms.base import Algorithm

__all__ = ["Algorithm", "base", "get", "names", "register"]

_REGISTRY: dict[str, Algorithm] = {}


def register(algorithm: Algorithm, *, replace: bool = False) -> Algorithm:
  """Makes ``algorithm`` available by its name to configs; returns it.

  Raises:
    ValueError: the name is taken (pass ``replace=True`` to replace it), or the
      argument is not an ``Algorithm``.
  """
  if not isinstance(algorithm, Algorithm):
    raise ValueError(f"register() takes a metalearn.algorithms.Algorithm, got "
                     f"{type(algorithm).__name__}")
  if algorithm.name in _REGISTRY and not replace:
    raise ValueError(f"algorithm {algorithm.name!r} is already registered")
  _REGISTRY[algorithm.name] = algorithm
  return algorithm


def get(algorithm: Union[str, Algorithm]) -> Algorithm:
  """The record registered under a name (a record is returned as it is)."""
  if isinstance(algorithm, Algorithm):
    return algorithm
  if algorithm not in _REGISTRY:
    raise ValueError(f"algorithm={algorithm!r}: expected one of {names()}")
  return _REGISTRY[algorithm]


def names() -> tuple[str, ...]:
  return tuple(sorted(_REGISTRY))


for _algorithm in (maml.MAML, maml.FOMAML, reptile.REPTILE):
  register(_algorithm)
