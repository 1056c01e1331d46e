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
    width_key: the config key that sets the model's width: every hidden layer's size
      (``model.hidden``, a tuple) or the number of filters (``model.filters``).
  """

  name: str
  make: Callable[[Any], nn.Module]
  loss: str
  modules: tuple[str, ...]
  width_key: str = "model.hidden"


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
    ModelKind("conv4_omniglot", _conv4(conv4.omniglot_conv4), "xent", _CONV4_MODULES,
              "model.filters"),
    ModelKind("conv4_miniimagenet", _conv4(conv4.miniimagenet_conv4), "xent",
              _CONV4_MODULES, "model.filters"),
)}


# The conv nets' width when ``model.filters`` is 0 (the paper's).
_DEFAULT_FILTERS = {"conv4_omniglot": 64, "conv4_miniimagenet": 32}


def width(c) -> int:
  """The model's width: its hidden layers' size (all equal) or its filters."""
  kind = get(c.model.name)
  if kind.width_key == "model.filters":
    return int(c.model.filters or _DEFAULT_FILTERS[kind.name])
  hidden = tuple(c.model.hidden)
  if not hidden or len(set(hidden)) != 1:
    raise ValueError(f"model.hidden={hidden}: the width axis needs one or more hidden "
                     "layers of one size")
  return int(hidden[0])


def set_width(c, value: int) -> None:
  """Sets the model's width in config ``c`` (every hidden layer, or the filters)."""
  width(c)  # Fails on a model without one width.
  if get(c.model.name).width_key == "model.filters":
    c.model.filters = int(value)
  else:
    c.model.hidden = (int(value),) * len(tuple(c.model.hidden))


def get(name: str) -> ModelKind:
  if name not in MODELS:
    raise ValueError(f"model={name!r}: expected one of {tuple(MODELS)}")
  return MODELS[name]
