"""Task families (``base.TaskFamily``), registered by the name ``config.task`` takes.

  sinusoid   regression on sine waves, sampled on the device (``sinusoid.py``)
  images     N-way K-shot classification of an image data set (``images.py``)

``register`` adds a kind from outside the library.
"""

from metalearn.tasks import base
from metalearn.tasks import images
from metalearn.tasks import sinusoid
from metalearn.tasks.base import TaskFamily
from metalearn.tasks.base import TaskKind
from metalearn.tasks.episode import Episode

__all__ = ["Episode", "TaskFamily", "TaskKind", "base", "get", "names", "register"]

_REGISTRY: dict[str, TaskKind] = {}


def register(kind: TaskKind, *, replace: bool = False) -> TaskKind:
  """Makes a kind of task available to configs as ``config.task = kind.name``."""
  if not isinstance(kind, TaskKind):
    raise ValueError(f"register() takes a metalearn.tasks.TaskKind, got "
                     f"{type(kind).__name__}")
  if kind.name in _REGISTRY and not replace:
    raise ValueError(f"task kind {kind.name!r} is already registered")
  _REGISTRY[kind.name] = kind
  return kind


def get(name: str) -> TaskKind:
  if name not in _REGISTRY:
    raise ValueError(f"task={name!r}: expected one of {names()}")
  return _REGISTRY[name]


def names() -> tuple[str, ...]:
  return tuple(sorted(_REGISTRY))


for _kind in (sinusoid.KIND, images.KIND):
  register(_kind)
