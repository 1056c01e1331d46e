"""Layers for per-task adapted networks: a 3×3 convolution with a per-backend
formulation, batch normalisation from batch statistics only, and 2×2 max-pooling.

Why a convolution of our own: under ``vmap`` over tasks, each task's adapted kernel
turns XLA's convolution into a grouped convolution, and second-order MAML
differentiates it twice. XLA:CPU takes slow paths for both (see PERF_NOTES), while a
convolution written as im2col (nine strided slices, one matmul) becomes a batched
matmul that XLA:CPU runs near its matmul speed. On GPU/TPU the native convolution
(cuDNN, the MXU) is the better path. All formulations are kept, tested against each
other, and chosen per backend by ``conv_impl='auto'``.
"""

from typing import Optional

from flax import linen as nn
import jax
from jax import lax
import jax.numpy as jnp

CONV_IMPLS = ("auto", "xla", "im2col", "patches")
# Measured and dropped (benchmarks/README.md, under lax.map over tasks, K = 1): nine
# accumulated per-tap matmuls instead of one concatenated matmul, 0.71x; a channel-major
# im2col (out[O, M] = W^T @ cols[KKC, M], free of XLA's transposing copies before the
# kernel-gradient matmul) 0.66x, because YNNPACK runs the short-and-wide matmuls much
# slower than the tall [M, KKC] @ [KKC, O] ones.


def resolve_conv_impl(conv_impl: str) -> str:
  """Maps 'auto' to the fastest measured formulation for the default backend."""
  if conv_impl not in CONV_IMPLS:
    raise ValueError(f"conv_impl={conv_impl!r}: expected one of {CONV_IMPLS}")
  if conv_impl == "auto":
    return "im2col" if jax.default_backend() == "cpu" else "xla"
  return conv_impl


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
  """TF/XLA 'SAME' padding (low, high) for one spatial dimension."""
  out = -(-size // stride)
  total = max((out - 1) * stride + kernel - size, 0)
  return total // 2, total - total // 2


def conv2d(x_BxHxWxC: jax.Array, kernel_KxKxCxO: jax.Array, *, stride: int,
           impl: str) -> jax.Array:
  """'SAME'-padded 2-D convolution, NHWC input and HWIO kernel.

  Args:
    x_BxHxWxC: input batch.
    kernel_KxKxCxO: square kernel.
    stride: spatial stride (both dimensions).
    impl: one of ``CONV_IMPLS``: 'xla' (lax.conv_general_dilated), 'im2col' (K·K
      strided slices, concatenated, one matmul), 'patches'
      (lax.conv_general_dilated_patches + one matmul), 'auto'.

  Returns:
    ``[B, ceil(H/stride), ceil(W/stride), O]``.
  """
  impl = resolve_conv_impl(impl)
  k = kernel_KxKxCxO.shape[0]
  _, h, w, c = x_BxHxWxC.shape
  pad_h, pad_w = same_padding(h, k, stride), same_padding(w, k, stride)
  if impl == "xla":
    return lax.conv_general_dilated(
        x_BxHxWxC, kernel_KxKxCxO, (stride, stride), (pad_h, pad_w),
        dimension_numbers=("NHWC", "HWIO", "NHWC"))
  if impl == "patches":
    # Patch features come out channel-major, (c, i, j); reorder the kernel to match.
    patches = lax.conv_general_dilated_patches(
        x_BxHxWxC, (k, k), (stride, stride), (pad_h, pad_w),
        dimension_numbers=("NHWC", "HWIO", "NHWC"))
    kernel_CKKxO = jnp.transpose(kernel_KxKxCxO, (2, 0, 1, 3)).reshape(c * k * k, -1)
    return jnp.einsum("bhwi,io->bhwo", patches, kernel_CKKxO)
  taps = _strided_taps(x_BxHxWxC, k, stride, pad_h, pad_w)
  # Column index (i * k + j) * C + c matches the HWIO kernel reshaped to [K*K*C, O].
  cols_BxHoxWoxKKC = jnp.concatenate(taps, axis=-1)
  kernel_KKCxO = kernel_KxKxCxO.reshape(k * k * c, -1)
  return jnp.einsum("bhwi,io->bhwo", cols_BxHoxWoxKKC, kernel_KKCxO)


def _strided_taps(x_BxHxWxC, k, stride, pad_h, pad_w):
  """The K·K shifted, strided views of the padded input, tap (i, j) at i*K + j."""
  _, h, w, c = x_BxHxWxC.shape
  ho, wo = -(-h // stride), -(-w // stride)
  xp = jnp.pad(x_BxHxWxC, ((0, 0), pad_h, pad_w, (0, 0)))
  return [
      lax.slice(xp, (0, i, j, 0),
                (xp.shape[0], i + (ho - 1) * stride + 1,
                 j + (wo - 1) * stride + 1, c),
                (1, stride, stride, 1))
      for i in range(k) for j in range(k)
  ]


class Conv(nn.Module):
  """A square 'SAME' convolution with bias; see ``conv2d``."""

  features: int
  kernel_size: int = 3
  stride: int = 1
  impl: str = "auto"
  param_dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x_BxHxWxC: jax.Array) -> jax.Array:
    c = x_BxHxWxC.shape[-1]
    kernel = self.param("kernel", nn.initializers.glorot_uniform(),
                        (self.kernel_size, self.kernel_size, c, self.features),
                        self.param_dtype)
    bias = self.param("bias", nn.initializers.zeros, (self.features,),
                      self.param_dtype)
    return conv2d(x_BxHxWxC, kernel, stride=self.stride, impl=self.impl) + bias


class BatchStatNorm(nn.Module):
  """Batch normalisation from the statistics of the batch at hand; no running averages.

  MAML normalises with the statistics of the batch being classified. ``num_stats``
  restricts the statistics to the first ``num_stats`` examples, which is how the
  non-transductive mode normalises query examples with support statistics
  (call on ``concat([support, query])`` with ``num_stats = len(support)``).
  """

  epsilon: float = 1e-3  # tf.contrib.layers.batch_norm's default, used by MAML.
  use_scale: bool = True  # False: no learned scale (tf.contrib's default, scale=False).
  param_dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, num_stats: Optional[int] = None) -> jax.Array:
    features = x.shape[-1]
    scale = (self.param("scale", nn.initializers.ones, (features,), self.param_dtype)
             if self.use_scale else None)
    bias = self.param("bias", nn.initializers.zeros, (features,), self.param_dtype)
    ref = x if num_stats is None else x[:num_stats]
    axes = tuple(range(x.ndim - 1))
    mean = ref.mean(axes)
    var = jnp.square(ref - mean).mean(axes)
    y = (x - mean) * lax.rsqrt(var + self.epsilon)
    return (y if scale is None else y * scale) + bias


def max_pool_2x2(x_BxHxWxC: jax.Array) -> jax.Array:
  """2×2 max-pooling, stride 2, 'VALID' (odd sizes drop the last row/column).

  Written as reshape + max so that its first and second derivatives are plain
  selects rather than XLA's select-and-scatter.
  """
  b, h, w, c = x_BxHxWxC.shape
  x = x_BxHxWxC[:, : h // 2 * 2, : w // 2 * 2]
  return x.reshape(b, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))
