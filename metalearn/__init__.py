"""metalearn: JIT-compiled meta-learning in JAX, and the science of its compute scaling.

The public API, what follow-up research imports:

  import metalearn as ml
  config = ml.base_config()             # every key a run reads (experiments/*.py)
  setup = ml.build(config)              # learner, inner loop, algorithm, tasks, optimiser
  state = ml.train(config, workdir)     # the training loop: resumable, exact
  rows = ml.evaluate_checkpoint(config, workdir)

Pieces, for new algorithms and task families:

- ``Learner``: a model with its loss on one ``Episode``.
- ``InnerConfig``, ``adapt``, ``adapt_curve``: the inner loop (``lax.scan``).
- ``Algorithm``, ``register_algorithm``, ``algorithms``: the one contract
  (``meta_grad(theta, episode, key, *, learner, inner, log) -> (grads, aux)``) and its
  registry; a registered algorithm is named in configs like the built-in ones.
- ``make_meta_step``, ``MetaState``: the meta-step over a meta-batch.
- ``evaluate``, ``EvalResult``: few-shot scores with per-episode values.
- ``TaskFamily``, ``TaskKind``, ``register_task``, ``SinusoidTasks``,
  ``ImageTaskFamily``, ``Episode``: task families and their registry.
- ``fit``, ``compare``, ``bootstrap``, ``extrapolation_test``: scaling-curve fits.
"""

from metalearn import algorithms
from metalearn import tasks
from metalearn.algorithms import Algorithm
from metalearn.algorithms import register as register_algorithm
from metalearn.builder import Setup
from metalearn.builder import build
from metalearn.config import base_config
from metalearn.config import validate
from metalearn.evaluation import EvalResult
from metalearn.evaluation import evaluate
from metalearn.inner import InnerConfig
from metalearn.inner import adapt
from metalearn.inner import adapt_curve
from metalearn.learner import Learner
from metalearn.outer import MetaState
from metalearn.outer import make_meta_step
from metalearn.run.loop import train
from metalearn.run.scoring import evaluate as evaluate_checkpoint
from metalearn.scaling.fit_bootstrap import bootstrap
from metalearn.scaling.fits import compare
from metalearn.scaling.fits import extrapolation_test
from metalearn.scaling.fits import fit
from metalearn.tasks import Episode
from metalearn.tasks import TaskFamily
from metalearn.tasks import TaskKind
from metalearn.tasks import register as register_task
from metalearn.tasks.sampling import ImageTaskFamily
from metalearn.tasks.sinusoid import SinusoidTasks

__all__ = [
    "Algorithm", "EvalResult", "Episode", "ImageTaskFamily", "InnerConfig", "Learner",
    "MetaState", "Setup", "SinusoidTasks", "TaskFamily", "TaskKind", "adapt",
    "adapt_curve", "algorithms", "base_config", "bootstrap", "build", "compare",
    "evaluate", "evaluate_checkpoint", "extrapolation_test", "fit", "make_meta_step",
    "register_algorithm", "register_task", "tasks", "train", "validate",
]
