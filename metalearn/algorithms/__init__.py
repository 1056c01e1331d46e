"""Meta-learning algorithms sharing one contract (see ``base``)."""

from metalearn.algorithms.maml import fomaml_meta_grad
from metalearn.algorithms.maml import maml_meta_grad
from metalearn.algorithms.reptile import reptile_meta_grad

ALGORITHMS = {
    "maml": maml_meta_grad,
    "fomaml": fomaml_meta_grad,
    "reptile": reptile_meta_grad,
}


def get(name: str):
  """The ``meta_grad`` function of an algorithm by name."""
  if name not in ALGORITHMS:
    raise ValueError(f"algorithm={name!r}: expected one of {sorted(ALGORITHMS)}")
  return ALGORITHMS[name]
