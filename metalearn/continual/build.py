"""Everything a continual run needs, assembled once from a config: the stream family,
the network, the online phase, the training objective and the outer optimiser."""

import dataclasses
from typing import Any, Callable

from flax import struct
import jax
import jax.numpy as jnp
import ml_collections
import optax

from metalearn import compiler
from metalearn.continual import anml
from metalearn.continual import baselines
from metalearn.continual import config as config_lib
from metalearn.continual import nets as nets_lib
from metalearn.continual import oml
from metalearn.continual import stream as stream_lib
from metalearn.errors import ConfigError


@struct.dataclass
class State:
  """The training state: step, meta-parameters and the outer optimiser's state."""

  step: jax.Array
  theta: Any
  opt_state: Any


def make_net(c: ml_collections.ConfigDict) -> nets_lib.Net:
  m = c.model
  if m.name == "oml_omniglot":
    return nets_lib.oml_omniglot(m.channels, m.hidden, m.outputs, conv_impl=m.conv_impl)
  if m.name == "anml_omniglot":
    return nets_lib.anml_omniglot(m.channels, m.nm_channels, m.outputs,
                                  image_size=c.data.image_size, conv_impl=m.conv_impl)
  return nets_lib.sine_mlp(tuple(m.rln), tuple(m.pln), gated=m.name == "sine_anml",
                           nm=tuple(m.nm))


def outer_optimizer(name: str, lr: float) -> optax.GradientTransformation:
  return optax.adam(lr) if name == "adam" else optax.sgd(lr)


@dataclasses.dataclass(frozen=True)
class Setup:
  """A built continual run.

  Attributes:
    config: the validated config.
    family: the stream family (``stream.OmniglotStreams`` or ``SineStreams``).
    net: the network.
    online: the online phase of meta-training (OML / ANML).
    optimizer: the outer optimiser.
    objective: ``(theta, data, key) -> (grads, aux)`` for one trajectory or minibatch,
      or None for ``scratch`` (nothing is trained).
  """

  config: ml_collections.ConfigDict
  family: Any
  net: nets_lib.Net
  online: oml.OnlineConfig
  optimizer: optax.GradientTransformation
  objective: Callable[..., tuple[Any, dict]] | None

  def init_theta(self, key: jax.Array) -> dict:
    x = jnp.zeros((2,) + tuple(self.family.input_shape()), jnp.float32)
    return self.net.init(key, x)

  def init_state(self) -> State:
    """The state at step 0 (one compiled program: eager initialisation would compile
    each of its many small operations separately)."""
    return jax.jit(self._init_state)()

  def _init_state(self) -> State:
    theta = self.init_theta(jax.random.fold_in(jax.random.key(self.config.seed), 0))
    return State(step=jnp.zeros((), jnp.int32), theta=theta,
                 opt_state=self.optimizer.init(theta))

  def abstract_state(self) -> State:
    return jax.eval_shape(self._init_state)

  def train_step(self) -> Callable:
    """``step(state, data, key) -> (state, metrics)``, jitted with the state donated:
    ``meta_batch`` trajectories (or i.i.d. minibatches), averaged gradients, one outer
    update. The key is folded with the step, so a resumed run is exact."""
    family, objective, c = self.family, self.objective, self.config
    pretrain = c.algorithm == "pretrained"

    def one(theta, data, key):
      k_data, k_obj = jax.random.split(key)
      if pretrain:
        batch = family.iid_batch(k_data, data, c.train.pretrain_batch)
      else:
        batch = family.trajectory(k_data, data)
      return objective(theta, batch, k_obj)

    def step(state, data, key):
      key = jax.random.fold_in(key, state.step)
      keys = jax.random.split(key, c.meta_batch)
      grads, aux = jax.vmap(one, in_axes=(None, None, 0))(state.theta, data, keys)
      grads = jax.tree.map(lambda g: g.mean(0), grads)
      aux = jax.tree.map(lambda a: a.mean(0), aux)
      updates, opt_state = self.optimizer.update(grads, state.opt_state, state.theta)
      theta = optax.apply_updates(state.theta, updates)
      aux["grad_norm"] = optax.tree.norm(grads)
      return State(step=state.step + 1, theta=theta, opt_state=opt_state), aux

    return compiler.jit(step, fast_compile=bool(c.fast_compile), donate_argnums=0)


def build(c: ml_collections.ConfigDict) -> Setup:
  """Validates ``c`` and builds its run (raises ``ConfigError`` naming a bad key)."""
  config_lib.validate(c)
  family = stream_lib.make(c)
  net = make_net(c)
  online = oml.OnlineConfig(
      lr=float(c.train.lr), online=tuple(c.train.online), loss=family.loss,
      remat=c.train.remat, segment=int(c.train.remat_segment),
      first_order=bool(c.train.first_order), reset_classes=bool(c.train.reset_classes))
  objective = None
  if c.algorithm == "oml":
    oml.check(online.online, net, "train.online")
    objective = lambda theta, traj, key: oml.meta_grad(theta, traj, key, net=net,
                                                       cfg=online)
  elif c.algorithm == "anml":
    anml.check(net, online)
    objective = lambda theta, traj, key: anml.meta_grad(theta, traj, key, net=net,
                                                        cfg=online)
  elif c.algorithm == "pretrained":
    objective = lambda theta, batch, key: baselines.pretrain_grad(
        theta, batch, key, net=net, loss=family.loss)
  missing = set(c.eval.online) - set(net.parts)
  if missing:
    raise ConfigError(
        f"config.eval.online={tuple(c.eval.online)}: the network has no "
        f"{', '.join(sorted(missing))} (its parts: {net.parts})")
  return Setup(config=c, family=family, net=net, online=online,
               optimizer=outer_optimizer(c.outer.optimizer, c.outer.lr),
               objective=objective)
