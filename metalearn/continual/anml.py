"""ANML (Beaulieu et al. 2020): a neuromodulatory network gates the prediction network.

ANML's network (``nets.anml_omniglot``) has a prediction network — three conv blocks
(``body``) and a Dense layer (``head``) — and a neuromodulatory (NM) network, three conv
blocks of its own, a Dense layer and a sigmoid, computed from the same image. The NM
network's output multiplies the prediction network's last features elementwise before
the head, so it decides per input which features reach the head, and so which weights
the online gradient reaches (a gate of 0 stops both the activation and its gradient):
selective activation and selective plasticity, meta-learned.

Meta-training is OML's (``oml.py``), with the parts swapped: during a trajectory only
the prediction network's weights change (``body`` and ``head``, as ANML's code runs it,
``--rln 7`` freezing the NM network's seven layers), the NM network stays fixed, and
the meta-gradient updates both networks' initial weights. At meta-test ANML's code
updates only the head online (``--rln 13``), with its last layer re-initialised.

With the gate fixed to one (``OnlineConfig.gate_one``), ANML is OML with an empty
representation network and the whole prediction network online: the same outputs, the
same online updates and the same meta-gradient (``tests/continual_anml_test.py``).
"""

import dataclasses

import jax

from metalearn.continual import nets as nets_lib
from metalearn.continual import oml
from metalearn.continual.stream import Trajectory
from metalearn.errors import ConfigError

# What ANML's code updates online: in meta-training, at meta-test.
TRAIN_ONLINE = ("body", "head")
EVAL_ONLINE = ("head",)


def check(net: nets_lib.Net, cfg: oml.OnlineConfig, key: str = "train.online") -> None:
  """An ANML network has a gate, and the gate is never updated online."""
  if net.nm is None:
    raise ConfigError(f"config.model.name: ANML needs a neuromodulatory network; "
                      f"this network has parts {net.parts}")
  oml.check(cfg.online, net, key)


def gates(theta: dict, x: jax.Array, *, net: nets_lib.Net) -> jax.Array:
  """The NM network's gates ``[batch, features]`` for inputs ``x``: what fraction of
  the prediction network's features an input lets through."""
  return net.nm.apply({"params": theta["nm"]}, x)


def meta_grad(theta: dict, traj: Trajectory, key: jax.Array, *, net: nets_lib.Net,
              cfg: oml.OnlineConfig) -> tuple[dict, dict]:
  """ANML's meta-gradient for one trajectory: OML's objective on the gated network,
  the NM network fixed online and meta-learned (``oml.meta_grad``)."""
  check(net, cfg)
  return oml.meta_grad(theta, traj, key, net=net, cfg=cfg)


def without_gate(cfg: oml.OnlineConfig) -> oml.OnlineConfig:
  """``cfg`` with the gate fixed to one."""
  return dataclasses.replace(cfg, gate_one=True)
