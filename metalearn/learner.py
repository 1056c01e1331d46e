"""The learner: a model plus the loss it is adapted with, on one episode.

Algorithms see a plain parameter pytree and two functions of it: the support loss (what
the inner loop minimises) and the query loss (what the outer loop scores). The
batch-norm mode lives here because it decides which examples the query is normalised
with:

- ``transductive``: the query batch is normalised with its own statistics, as in MAML's
  reference code and the Reptile authors' transductive evaluation; every query
  prediction depends on the other query examples.
- ``non_transductive``: query examples are normalised with support statistics only
  (the model sees ``concat([support, query])`` and takes statistics from the support).
- ``transductive_joint``: the query is normalised together with the support set
  (statistics of ``concat([support, query])``).
"""

import dataclasses
from typing import Any

from flax import linen as nn
import jax
import jax.numpy as jnp
import optax

from metalearn.tasks.episode import Episode

BN_MODES = ("transductive", "non_transductive", "transductive_joint")
LOSSES = ("xent", "mse")

Params = Any
Metrics = dict[str, jax.Array]


@dataclasses.dataclass(frozen=True)
class Learner:
  """A model with its loss and batch-norm mode; pure functions of (params, episode).

  Attributes:
    model: a Flax module called as ``model.apply({'params': p}, x, num_stats)``.
    loss: 'xent' (classification, integer labels) or 'mse' (regression).
    bn_mode: one of ``BN_MODES``.
  """

  model: nn.Module
  loss: str = "xent"
  bn_mode: str = "transductive"

  def __post_init__(self):
    if self.loss not in LOSSES:
      raise ValueError(f"loss={self.loss!r}: expected one of {LOSSES}")
    if self.bn_mode not in BN_MODES:
      raise ValueError(f"bn_mode={self.bn_mode!r}: expected one of {BN_MODES}")

  def init(self, key: jax.Array, example_x_BxD: jax.Array) -> Params:
    """Initial parameters for inputs shaped like ``example_x_BxD``."""
    return self.model.init(key, example_x_BxD)["params"]

  def apply(self, params: Params, x_BxD: jax.Array, num_stats=None) -> jax.Array:
    return self.model.apply({"params": params}, x_BxD, num_stats)

  def score(self, outputs: jax.Array, targets: jax.Array) -> tuple[jax.Array, Metrics]:
    """Mean loss and metrics ('loss', and 'accuracy' for classification)."""
    if self.loss == "mse":
      loss = jnp.mean(jnp.square(outputs - targets))
      return loss, {"loss": loss}
    loss = optax.softmax_cross_entropy_with_integer_labels(outputs, targets).mean()
    accuracy = jnp.mean(jnp.argmax(outputs, -1) == targets)
    return loss, {"loss": loss, "accuracy": accuracy}

  def support_loss(self, params: Params, episode: Episode) -> tuple[jax.Array, Metrics]:
    """Loss on the support set of one (unbatched) episode."""
    return self.score(self.apply(params, episode.support_x), episode.support_y)

  def query_loss(self, params: Params, episode: Episode) -> tuple[jax.Array, Metrics]:
    """Loss on the query set of one episode, normalised as ``bn_mode`` says."""
    if self.bn_mode == "transductive":
      outputs = self.apply(params, episode.query_x)
    else:
      s = episode.support_x.shape[0]
      both = jnp.concatenate([episode.support_x, episode.query_x], axis=0)
      stats = s if self.bn_mode == "non_transductive" else None
      outputs = self.apply(params, both, num_stats=stats)[s:]
    return self.score(outputs, episode.query_y)
