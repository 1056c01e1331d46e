"""The four-block convolutional network of MAML (Finn et al. 2017, Section 5.2).

Omniglot variant: 4 × [3×3 conv, 64 filters, stride 2, BatchNorm, ReLU] on 28×28×1,
flatten (2·2·64 = 256) → linear head. miniImageNet variant: 4 × [3×3 conv, 32 filters,
stride 1, BatchNorm, ReLU, 2×2 max-pool] on 84×84×3, flatten (5·5·32 = 800) → linear.
BatchNorm uses batch statistics only (see ``layers.BatchStatNorm``).
"""

from typing import Optional

from flax import linen as nn
import jax
import jax.numpy as jnp

from metalearn.models import layers


class Conv4(nn.Module):
  """MAML's conv net; ``pool=False`` is the Omniglot variant, ``pool=True`` miniImageNet."""

  num_classes: int
  filters: int = 64
  pool: bool = False
  depth: int = 4
  conv_impl: str = "auto"
  param_dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x_BxHxWxC: jax.Array,
               num_stats: Optional[int] = None) -> jax.Array:
    x = x_BxHxWxC
    for _ in range(self.depth):
      x = layers.Conv(self.filters, stride=1 if self.pool else 2,
                      impl=self.conv_impl, param_dtype=self.param_dtype)(x)
      x = layers.BatchStatNorm(param_dtype=self.param_dtype)(x, num_stats)
      x = nn.relu(x)
      if self.pool:
        x = layers.max_pool_2x2(x)
    x = x.reshape(x.shape[0], -1)
    return nn.Dense(self.num_classes, param_dtype=self.param_dtype)(x)


def omniglot_conv4(num_classes: int, conv_impl: str = "auto", **kw) -> Conv4:
  return Conv4(num_classes, filters=64, pool=False, conv_impl=conv_impl, **kw)


def miniimagenet_conv4(num_classes: int, conv_impl: str = "auto", **kw) -> Conv4:
  return Conv4(num_classes, filters=32, pool=True, conv_impl=conv_impl, **kw)
