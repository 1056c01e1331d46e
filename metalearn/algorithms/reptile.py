"""Reptile (Nichol, Achiam & Schulman 2018).

Each task adapts ``θ`` by K steps of SGD or Adam on its support set; the outer update
moves ``θ`` towards the adapted parameters. It is expressed as the pseudo-gradient
``θ − adapted``, so that any optax optimiser applies it: ``optax.sgd(ε)`` gives the
paper's ``θ ← θ + ε (mean adapted − θ)``, with ε linearly annealed by a schedule as in
the paper's outer step size.
"""

import jax

from metalearn import inner as inner_lib
from metalearn.algorithms import base
from metalearn.inner import InnerConfig
from metalearn.learner import Learner
from metalearn.tasks.episode import Episode


def reptile_meta_grad(theta, episode: Episode, key: jax.Array, *, learner: Learner,
                      inner: InnerConfig):
  """Reptile pseudo-gradient ``θ − adapt(θ)`` for one task.

  Args and returns as ``maml.maml_meta_grad``; the query set is only scored.
  """
  del key
  theta = jax.lax.stop_gradient(theta)
  adapted, losses_K = inner_lib.adapt(
      theta, lambda p: learner.support_loss(p, episode), cfg=inner)
  grads = jax.tree.map(lambda t, a: t - a, theta, adapted)
  _, metrics = learner.query_loss(adapted, episode)
  return grads, base.post_adaptation_metrics(learner, adapted, episode, losses_K,
                                             metrics)
