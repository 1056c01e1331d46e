"""The networks of continual meta-learning: a representation, a gate, a prediction net.

A continual-learning network (``Net``) has up to four parts, each a Flax module with
its own parameters under its own name in one params dict:

  rln   representation learning network, ``x -> h`` (OML's conv or MLP stack)
  body  the prediction network's layers before the gate, ``h -> z`` (ANML's convs)
  nm    neuromodulatory network, ``x -> gate`` in (0, 1), the shape of ``z`` (ANML)
  head  the prediction network's last layers, ``z * gate -> outputs`` (its final
        Dense layer is named ``out``, the layer whose class rows are reset)

so ``outputs = head(body(rln(x)) * nm(x))``, an absent part being the identity (no
gate: a gate of one). The prediction network is ``body`` + ``head``. OML (Javed &
White 2019) has ``rln`` and ``head``; ANML (Beaulieu et al. 2020) has ``nm``, ``body``
and ``head``. Which parts an online phase updates is the caller's choice (``online``);
the others are fixed during it, so their part of the forward pass can be computed once
for all of a trajectory's examples (``features``) and only the rest per online step
(``from_features``). ``prefix_level`` says how much is fixed.

Normalisation is per example (``ExampleNorm``): ANML's reference code runs batch norm in
training mode on one image at a time, which is instance normalisation with a learned
scale and offset; per-example statistics also keep every prediction independent of the
other examples of a batch, so scoring in batches equals scoring one at a time.
Convolutions are unpadded ('VALID'), as in both reference codes; weights are drawn
He-normal (``kaiming_normal_``), biases zero.
"""

import dataclasses
from typing import Any, Optional, Sequence

from flax import linen as nn
import jax
from jax import lax
import jax.numpy as jnp

from metalearn.models import layers

PARTS = ("rln", "nm", "body", "head")
PREDICTION = ("body", "head")
he_normal = nn.initializers.variance_scaling(2.0, "fan_in", "normal")


def valid_conv(x_BxHxWxC: jax.Array, kernel_KxKxCxO: jax.Array, stride: int,
               impl: str) -> jax.Array:
  """Unpadded convolution, NHWC / HWIO; ``impl`` 'xla' (native) or 'im2col' (K·K
  strided slices and one matmul, faster on XLA:CPU; see ``models.layers``)."""
  impl = layers.resolve_conv_impl(impl)
  if impl != "im2col":
    return lax.conv_general_dilated(x_BxHxWxC, kernel_KxKxCxO, (stride, stride), "VALID",
                                    dimension_numbers=("NHWC", "HWIO", "NHWC"))
  k = kernel_KxKxCxO.shape[0]
  b, h, w, c = x_BxHxWxC.shape
  ho, wo = (h - k) // stride + 1, (w - k) // stride + 1
  taps = [lax.slice(x_BxHxWxC, (0, i, j, 0),
                    (b, i + (ho - 1) * stride + 1, j + (wo - 1) * stride + 1, c),
                    (1, stride, stride, 1))
          for i in range(k) for j in range(k)]
  cols = jnp.concatenate(taps, axis=-1)  # Column (i * k + j) * C + c, as the kernel.
  return jnp.einsum("bhwi,io->bhwo", cols, kernel_KxKxCxO.reshape(k * k * c, -1))


class ExampleNorm(nn.Module):
  """Normalises each example's channels over its own spatial positions, then scales
  and shifts (batch norm on a batch of one image, as ANML's code runs it)."""

  epsilon: float = 1e-5
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x_BxHxWxC: jax.Array) -> jax.Array:
    c = x_BxHxWxC.shape[-1]
    scale = self.param("scale", nn.initializers.ones, (c,), self.param_dtype)
    bias = self.param("bias", nn.initializers.zeros, (c,), self.param_dtype)
    mean = x_BxHxWxC.mean((1, 2), keepdims=True)
    var = jnp.square(x_BxHxWxC - mean).mean((1, 2), keepdims=True)
    return (x_BxHxWxC - mean) * lax.rsqrt(var + self.epsilon) * scale + bias


class ConvStack(nn.Module):
  """Unpadded 3×3 convolutions, each [conv, (norm), ReLU, (2×2 max-pool)], flattened.

  Attributes:
    channels: output channels of each convolution.
    strides: stride of each (default 1).
    pools: whether a 2×2 max-pool follows each (default none).
    norm: per-example normalisation after each convolution (ANML) or none (OML).
    conv_impl: 'auto' | 'xla' | 'im2col'.
  """

  channels: Sequence[int]
  strides: Sequence[int] = ()
  pools: Sequence[bool] = ()
  norm: bool = False
  conv_impl: str = "auto"
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x_BxHxWxC: jax.Array) -> jax.Array:
    x = x_BxHxWxC
    for i, features in enumerate(self.channels):
      stride = self.strides[i] if self.strides else 1
      kernel = self.param(f"conv{i}_kernel", he_normal, (3, 3, x.shape[-1], features),
                          self.param_dtype)
      bias = self.param(f"conv{i}_bias", nn.initializers.zeros, (features,),
                        self.param_dtype)
      x = valid_conv(x, kernel, stride, self.conv_impl) + bias
      if self.norm:
        x = ExampleNorm(param_dtype=self.param_dtype, name=f"norm{i}")(x)
      x = nn.relu(x)
      if self.pools and self.pools[i]:
        x = layers.max_pool_2x2(x)
    return x.reshape(x.shape[0], -1)


class DenseStack(nn.Module):
  """ReLU Dense layers of widths ``hidden``, then (if ``out``) a linear layer ``out``."""

  hidden: Sequence[int] = ()
  out: int = 0
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x_BxD: jax.Array) -> jax.Array:
    x = x_BxD.reshape(x_BxD.shape[0], -1)
    for i, width in enumerate(self.hidden):
      x = nn.relu(nn.Dense(width, kernel_init=he_normal, param_dtype=self.param_dtype,
                           name=f"dense{i}")(x))
    if self.out:
      x = nn.Dense(self.out, kernel_init=he_normal, param_dtype=self.param_dtype,
                   name="out")(x)
    return x


class Gate(nn.Module):
  """The neuromodulatory network: a trunk, then a Dense layer of ``size`` units and a
  sigmoid (ANML: three conv blocks, then 2304 gates)."""

  trunk: nn.Module
  size: int
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    h = self.trunk(x)
    return nn.sigmoid(nn.Dense(self.size, kernel_init=he_normal,
                               param_dtype=self.param_dtype, name="to_gate")(h))


@dataclasses.dataclass(frozen=True)
class Net:
  """A continual-learning network: ``head(body(rln(x)) * nm(x))``, absent parts the
  identity (see the module docstring). Params are ``{part: params}``."""

  head: nn.Module
  rln: Optional[nn.Module] = None
  body: Optional[nn.Module] = None
  nm: Optional[nn.Module] = None

  @property
  def parts(self) -> tuple[str, ...]:
    return tuple(p for p in PARTS if getattr(self, p) is not None)

  def init(self, key: jax.Array, x: jax.Array) -> dict:
    """Initial params for inputs shaped like ``x`` (a batch)."""
    keys = dict(zip(PARTS, jax.random.split(key, len(PARTS))))
    params = {}
    h = x
    if self.rln is not None:
      params["rln"] = self.rln.init(keys["rln"], h)["params"]
      h = self.rln.apply({"params": params["rln"]}, h)
    if self.nm is not None:
      params["nm"] = self.nm.init(keys["nm"], x)["params"]
    if self.body is not None:
      params["body"] = self.body.init(keys["body"], h)["params"]
      h = self.body.apply({"params": params["body"]}, h)
    params["head"] = self.head.init(keys["head"], h.reshape(h.shape[0], -1))["params"]
    return params

  def prefix_level(self, online: Sequence[str]) -> int:
    """How much of the forward pass is fixed while ``online`` parts change: 0 nothing
    (an online ``rln`` or ``nm``), 1 ``rln`` and the gate, 2 all but the head."""
    online = set(online)
    if online & {"rln", "nm"}:
      return 0
    if "body" in online and self.body is not None:
      return 1
    return 2

  def _apply(self, part: str, params: dict, x: jax.Array) -> jax.Array:
    return getattr(self, part).apply({"params": params[part]}, x)

  def _gate(self, params: dict, x: jax.Array, gate_one: bool) -> Optional[jax.Array]:
    if self.nm is None:
      return None
    gate = self._apply("nm", params, x)
    return jnp.ones_like(gate) if gate_one else gate

  def _gated(self, params: dict, h: jax.Array, gate: Optional[jax.Array]) -> jax.Array:
    z = self._apply("body", params, h) if self.body is not None else h
    z = z.reshape(z.shape[0], -1)
    return z if gate is None else z * gate

  def features(self, params: dict, x: jax.Array, level: int,
               gate_one: bool = False) -> Any:
    """The fixed part of the forward pass at ``level`` (``prefix_level``)."""
    if level == 0:
      return x
    h = self._apply("rln", params, x) if self.rln is not None else x
    gate = self._gate(params, x, gate_one)
    if level == 1:
      return (h, gate)
    return self._gated(params, h, gate)

  def from_features(self, params: dict, feats: Any, level: int,
                    gate_one: bool = False) -> jax.Array:
    """The rest of the forward pass from ``features(params, x, level)``."""
    if level == 0:
      feats = self.features(params, feats, 1, gate_one)
    if level <= 1:
      feats = self._gated(params, *feats)
    return self._apply("head", params, feats)

  def apply(self, params: dict, x: jax.Array, gate_one: bool = False) -> jax.Array:
    """The whole forward pass."""
    return self.from_features(params, x, 0, gate_one)


def oml_omniglot(channels: int = 256, hidden: int = 1024, outputs: int = 1000,
                 conv_impl: str = "auto", param_dtype: Any = jnp.float32) -> Net:
  """OML's Omniglot network as ANML's code builds it: an RLN of six unpadded 3×3 convs
  (strides 1, 1, 1, 2, 1, 2; 28 → 3×3×256 = 2304 features) with ReLU, and a PLN of
  two Dense layers (2304 → 1024 → 1000 outputs)."""
  rln = ConvStack((channels,) * 6, strides=(1, 1, 1, 2, 1, 2), conv_impl=conv_impl,
                  param_dtype=param_dtype)
  return Net(head=DenseStack((hidden,) if hidden else (), outputs,
                             param_dtype=param_dtype), rln=rln)


def anml_omniglot(channels: int = 256, nm_channels: int = 112, outputs: int = 1000,
                  image_size: int = 28, conv_impl: str = "auto",
                  param_dtype: Any = jnp.float32) -> Net:
  """ANML's Omniglot network (Beaulieu et al. 2020): a prediction network of three
  [3×3 conv, norm, ReLU] blocks of 256 channels (the first two max-pooled; 28 → 3×3×256
  = 2304 features) and one Dense layer to 1000 outputs; a neuromodulatory network of
  the same three blocks at 112 channels (1008 features), a Dense layer to 2304 and a
  sigmoid, whose output multiplies the prediction network's 2304 features."""
  def stack(c):
    return ConvStack((c,) * 3, pools=(True, True, False), norm=True,
                     conv_impl=conv_impl, param_dtype=param_dtype)
  side = image_size
  for pool in (True, True, False):
    side = (side - 2) // 2 if pool else side - 2
  features = side * side * channels
  return Net(head=DenseStack((), outputs, param_dtype=param_dtype), body=stack(channels),
             nm=Gate(stack(nm_channels), features, param_dtype=param_dtype))


def sine_mlp(rln: Sequence[int] = (300,) * 5 + (900,), pln: Sequence[int] = (300, 300),
             outputs: int = 1, gated: bool = False, nm: Sequence[int] = (300,),
             param_dtype: Any = jnp.float32) -> Net:
  """OML's incremental-sine network: an MLP RLN (five 300-unit layers and one of
  900) and an MLP PLN (two 300-unit layers, one output). ``gated`` adds an ANML-style
  neuromodulatory MLP gating the RLN's output (the RLN then becomes the body, updated
  online with the head)."""
  trunk = DenseStack(tuple(rln), param_dtype=param_dtype)
  head = DenseStack(tuple(pln), outputs, param_dtype=param_dtype)
  if not gated:
    return Net(head=head, rln=trunk)
  return Net(head=head, body=trunk,
             nm=Gate(DenseStack(tuple(nm), param_dtype=param_dtype), rln[-1],
                     param_dtype=param_dtype))
