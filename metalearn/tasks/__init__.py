"""Task families (``base.TaskFamily``), registered by the name ``config.task`` takes.

  sinusoid   regression on sine waves, sampled on the device (``sinusoid.py``)
  images     N-way K-shot classification of an image data set (``images.py``)
  mixture    classification of Gaussian mixtures, with a known Bayes floor (``mixture.py``)
  linreg     Bayesian linear regression, with known Bayes and GD curves (``linreg.py``)

The sinusoid's Bayes-optimal predictor (noisy or not) is in ``bayes_sinusoid.py``.

``register`` adds a kind from outside the library.
"""

from metalearn import registry
from metalearn.tasks import base
from metalearn.tasks import images
from metalearn.tasks import linreg
from metalearn.tasks import mixture
from metalearn.tasks import sinusoid
from metalearn.tasks.base import TaskFamily
from metalearn.tasks.base import TaskKind
from metalearn.tasks.episode import Episode

__all__ = ["Episode", "TaskFamily", "TaskKind", "base", "get", "names", "register"]

_REGISTRY = registry.Registry("task", TaskKind)
register = _REGISTRY.register
get = _REGISTRY.get
names = _REGISTRY.names

for _kind in (sinusoid.KIND, images.KIND, mixture.KIND, linreg.KIND):
  register(_kind)
