"""The 1-40-40-1 ReLU network of MAML's sinusoid regression (Finn et al. 2017, 5.1)."""

from typing import Optional, Sequence

from flax import linen as nn
import jax
import jax.numpy as jnp


class MLP(nn.Module):
  """A ReLU multilayer perceptron; ``num_stats`` is accepted for a uniform interface."""

  hidden: Sequence[int] = (40, 40)
  out: int = 1
  param_dtype: jnp.dtype = jnp.float32
  # Return the last hidden layer (the body's features), without the output layer.
  features_only: bool = False

  @nn.compact
  def __call__(self, x_BxD: jax.Array, num_stats: Optional[int] = None) -> jax.Array:
    del num_stats  # No normalisation layers.
    x = x_BxD
    for width in self.hidden:
      x = nn.relu(nn.Dense(width, param_dtype=self.param_dtype)(x))
    if self.features_only:
      return x
    return nn.Dense(self.out, param_dtype=self.param_dtype)(x)
