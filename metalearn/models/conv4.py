"""The four-block convolutional network of MAML (Finn et al. 2017, Section 5.2).

Omniglot variant: 4 × [3×3 conv, 64 filters, stride 2, BatchNorm, ReLU] on 28×28×1,
flatten (2·2·64 = 256) → linear head. miniImageNet variant: 4 × [3×3 conv, 32 filters,
stride 1, BatchNorm, ReLU, 2×2 max-pool] on 84×84×3, flatten (5·5·32 = 800) → linear.
BatchNorm uses batch statistics only (see ``layers.BatchStatNorm``).

MAML's reference code (cbfinn/maml ``maml.py``, ``utils.py``) differs from these
defaults in three places of the Omniglot network, each an option here:
``head='mean'`` feeds the head the spatial mean of the last block (64 features) rather
than the flattened map; ``head_init='normal'`` draws the head's weights from N(0, 1)
(``tf.random_normal``) rather than LeCun-normal; ``bn_scale=False`` drops batch norm's
scale, as ``tf.contrib.layers.batch_norm`` does by default.
"""

from typing import Optional

from flax import linen as nn
import jax
import jax.numpy as jnp

from metalearn.models import layers

HEADS = ("flatten", "mean")
HEAD_INITS = ("lecun_normal", "normal")


class Conv4(nn.Module):
  """MAML's conv net; ``pool=False`` is the Omniglot variant, ``pool=True`` miniImageNet."""

  num_classes: int
  filters: int = 64
  pool: bool = False
  depth: int = 4
  conv_impl: str = "auto"
  head: str = "flatten"  # 'flatten' | 'mean' (spatial mean of the last block).
  head_init: str = "lecun_normal"  # 'lecun_normal' | 'normal' (N(0, 1)).
  bn_scale: bool = True
  param_dtype: jnp.dtype = jnp.float32
  # Return the head's input (the body's features): same parameter names minus the
  # head's (ANIL's head-only inner loop, Prototypical Networks' embedding).
  features_only: bool = False

  def __post_init__(self):
    if self.head not in HEADS:
      raise ValueError(f"head={self.head!r}: expected one of {HEADS}")
    if self.head_init not in HEAD_INITS:
      raise ValueError(f"head_init={self.head_init!r}: expected one of {HEAD_INITS}")
    super().__post_init__()

  @nn.compact
  def __call__(self, x_BxHxWxC: jax.Array,
               num_stats: Optional[int] = None) -> jax.Array:
    x = x_BxHxWxC
    for _ in range(self.depth):
      x = layers.Conv(self.filters, stride=1 if self.pool else 2,
                      impl=self.conv_impl, param_dtype=self.param_dtype)(x)
      x = layers.BatchStatNorm(use_scale=self.bn_scale,
                               param_dtype=self.param_dtype)(x, num_stats)
      x = nn.relu(x)
      if self.pool:
        x = layers.max_pool_2x2(x)
    x = x.mean((1, 2)) if self.head == "mean" else x.reshape(x.shape[0], -1)
    if self.features_only:
      return x
    init = (nn.initializers.normal(1.0) if self.head_init == "normal"
            else nn.initializers.lecun_normal())
    return nn.Dense(self.num_classes, kernel_init=init, param_dtype=self.param_dtype)(x)


def omniglot_conv4(num_classes: int, conv_impl: str = "auto", filters: int = 64,
                   **kw) -> Conv4:
  return Conv4(num_classes, filters=filters, pool=False, conv_impl=conv_impl, **kw)


def miniimagenet_conv4(num_classes: int, conv_impl: str = "auto", filters: int = 32,
                       **kw) -> Conv4:
  return Conv4(num_classes, filters=filters, pool=True, conv_impl=conv_impl, **kw)
