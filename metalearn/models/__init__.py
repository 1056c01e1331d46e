"""Models, registered by the name ``config.model.name`` takes: the sinusoid MLP (a linear
model at ``hidden=()``), an MLP classifier of vector inputs (``config.ways`` outputs)
and MAML's conv nets. Each record builds the Flax module from a config and says which
loss it is trained with and which module names the inner loop can freeze."""

import dataclasses
from typing import Any, Callable

from flax import linen as nn

from metalearn.models import conv4
from metalearn.models import mlp


@dataclasses.dataclass(frozen=True)
class ModelKind:
  """Attributes:
    name: the value of ``config.model.name``.
    make: ``make(config) -> nn.Module``.
    loss: 'mse' (regression) or 'xent' (classification with ``config.ways`` outputs).
    modules: the module names ``config.inner.frozen`` may list.
  """

  name: str
  make: Callable[[Any], nn.Module]
  loss: str
  modules: tuple[str, ...]


def _conv4(make):
  def build(c):
    kw = {"filters": c.model.filters} if c.model.filters else {}
    return make(c.ways, conv_impl=c.model.conv_impl, head=c.model.head,
                head_init=c.model.head_init, bn_scale=c.model.bn_scale, **kw)
  return build


_CONV4_MODULES = ("Conv", "BatchStatNorm", "Dense")
MODELS = {m.name: m for m in (
    ModelKind("mlp", lambda c: mlp.MLP(tuple(c.model.hidden)), "mse", ("Dense",)),
    ModelKind("mlp_classifier", lambda c: mlp.MLP(tuple(c.model.hidden), out=c.ways),
              "xent", ("Dense",)),
    ModelKind("conv4_omniglot", _conv4(conv4.omniglot_conv4), "xent", _CONV4_MODULES),
    ModelKind("conv4_miniimagenet", _conv4(conv4.miniimagenet_conv4), "xent",
              _CONV4_MODULES),
)}


def get(name: str) -> ModelKind:
  if name not in MODELS:
    raise ValueError(f"model={name!r}: expected one of {tuple(MODELS)}")
  return MODELS[name]
