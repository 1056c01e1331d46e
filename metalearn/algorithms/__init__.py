"""Meta-learning algorithms on one contract (``base.Algorithm``), registered by name.

  from metalearn import algorithms
  algorithms.get("maml")              # the record configs name with config.algorithm
  algorithms.register(my_algorithm)   # outside code adds its own, then names it

The meta-step, evaluation and FLOP counting take the record itself.
"""

from metalearn import registry
from metalearn.algorithms import anil
from metalearn.algorithms import base
from metalearn.algorithms import imaml
from metalearn.algorithms import maml
from metalearn.algorithms import mamlpp
from metalearn.algorithms import metasgd
from metalearn.algorithms import protonet
from metalearn.algorithms import reptile
from metalearn.algorithms.base import Algorithm

__all__ = ["Algorithm", "base", "get", "names", "register"]

_REGISTRY = registry.Registry("algorithm", Algorithm)
register = _REGISTRY.register
get = _REGISTRY.get  # A name, or a record (returned as it is).
names = _REGISTRY.names


for _algorithm in (maml.MAML, maml.FOMAML, reptile.REPTILE):
  register(_algorithm)
register(imaml.IMAML)
register(anil.ANIL)
register(protonet.PROTONET)
register(metasgd.METASGD)
register(mamlpp.MAMLPP)
