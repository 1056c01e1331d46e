"""OML (Javed & White 2019): meta-learn a representation for online updates.

A representation network (RLN) is meta-learned so that a prediction network (PLN),
updated online by plain SGD over a trajectory from the stream — one step per example
(per minibatch of B examples), in order — predicts well afterwards, on a remembered set
of the meta-training data and on the trajectory itself:

  φ₀ = reset(θ_PLN)                             the trajectory's class rows redrawn
  φ_{t+1} = φ_t − α ∇_φ ℓ(f(θ_RLN, φ_t; x_t), y_t)    t = 0 … T−1
  L(θ) = ℓ(f(θ_RLN, φ_T; [x_rem, x_traj]), [y_rem, y_traj])

and the meta-gradient ∇_θ L flows through all T updates (second order; ``first_order``
stops it at the inner gradients). The same maths serves ANML (``anml.py``): only the
network differs (``nets.Net``), and which of its parts the online phase updates
(``OnlineConfig.online``; the others are fixed during it).

The trajectory is one ``lax.scan`` over its steps. Its parts that do not change online
(the RLN, ANML's gate) are evaluated once for all of the trajectory's and the remembered
set's examples before the scan (``Net.features``); each step runs only the rest.
Memory: reverse-mode through a scan keeps every step's carry (the online parameters)
and activations. ``remat='step'`` (``jax.checkpoint`` on each step) keeps only the
carries and recomputes each step's activations in the backward pass;
``remat='segments'`` checkpoints segments of S steps (about √T by default), keeping
T/S carries and recomputing one segment at a time, so memory grows as √T instead of T
(``benchmarks/continual_throughput.py`` measures it). All three give the same gradient.
"""

import dataclasses
import math
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import optax

from metalearn.continual import nets as nets_lib
from metalearn.continual.stream import Trajectory
from metalearn.errors import ConfigError

REMATS = ("none", "step", "segments")


@dataclasses.dataclass(frozen=True)
class OnlineConfig:
  """How the online phase updates the network.

  Attributes:
    lr: α, the online SGD step size.
    online: the parts updated online (``nets.PARTS``); the rest is fixed during it.
    loss: 'xent' (integer labels) or 'mse'.
    remat: 'none', 'step' or 'segments' (see the module docstring).
    segment: steps per rematerialised segment (0: the largest divisor of T ≤ ⌈√T⌉).
    first_order: stop the meta-gradient at the online gradients.
    gate_one: replace the neuromodulatory gate by ones (ANML ⇒ OML, for tests).
    reset_classes: redraw the trajectory classes' output rows before it (ANML's and
      OML's code do, so the meta-learner cannot rely on remembering them).
    unroll: unroll the trajectory's scan (FLOP counting: XLA counts a loop body once).
  """

  lr: float
  online: tuple[str, ...] = ("head",)
  loss: str = "xent"
  remat: str = "none"
  segment: int = 0
  first_order: bool = False
  gate_one: bool = False
  reset_classes: bool = True
  unroll: bool = False

  def __post_init__(self):
    if self.remat not in REMATS:
      raise ConfigError(f"remat={self.remat!r}: must be one of {REMATS}")
    bad = set(self.online) - set(nets_lib.PARTS)
    if bad or not self.online:
      raise ConfigError(f"online={self.online!r}: a non-empty subset of {nets_lib.PARTS}")


def score(outputs: jax.Array, targets: jax.Array, loss: str
          ) -> tuple[jax.Array, dict]:
  """Mean loss and metrics: cross-entropy and accuracy, or the mean squared error."""
  if loss == "mse":
    value = jnp.mean(jnp.square(outputs - targets))
    return value, {"loss": value}
  value = optax.softmax_cross_entropy_with_integer_labels(outputs, targets).mean()
  return value, {"loss": value,
                 "accuracy": jnp.mean(jnp.argmax(outputs, -1) == targets)}


def split(params: dict, online: Sequence[str]) -> tuple[dict, dict]:
  """``(online parts, fixed parts)`` of a params dict."""
  return ({k: v for k, v in params.items() if k in online},
          {k: v for k, v in params.items() if k not in online})


def segment_length(steps: int, segment: int = 0) -> int:
  """Steps per rematerialised segment: ``segment`` (it must divide ``steps``), or the
  largest divisor of ``steps`` not above ⌈√steps⌉."""
  if segment:
    if steps % segment:
      raise ConfigError(f"remat segment={segment} does not divide the trajectory's "
                        f"{steps} online steps")
    return segment
  top = math.isqrt(steps - 1) + 1 if steps > 1 else 1
  return max(d for d in range(1, top + 1) if steps % d == 0)


def sgd_step(online: dict, fixed: dict, feats: Any, y: jax.Array, *, net: nets_lib.Net,
             cfg: OnlineConfig, level: int) -> tuple[dict, dict]:
  """One online SGD step on one minibatch (``feats``: ``Net.features`` at ``level``).

  Returns:
    The updated online parts, and the minibatch's metrics before the step (the
    prequential loss, and accuracy).
  """
  def loss_fn(p):
    out = net.from_features({**fixed, **p}, feats, level, cfg.gate_one)
    return score(out, y, cfg.loss)

  (_, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(online)
  if cfg.first_order:
    grads = jax.lax.stop_gradient(grads)
  return jax.tree.map(lambda p, g: p - cfg.lr * g, online, grads), metrics


def scan_steps(step, carry: Any, xs: Any, *, remat: str = "none", segment: int = 0,
               unroll: bool = False):
  """``lax.scan(step, carry, xs)`` with the rematerialisation ``remat`` asks for."""
  if remat == "none":
    return jax.lax.scan(step, carry, xs, unroll=unroll)
  if remat == "step":
    return jax.lax.scan(jax.checkpoint(step), carry, xs)
  steps = jax.tree.leaves(xs)[0].shape[0]
  s = segment_length(steps, segment)
  xs = jax.tree.map(lambda a: a.reshape((steps // s, s) + a.shape[1:]), xs)
  carry, ys = jax.lax.scan(jax.checkpoint(lambda c, x: jax.lax.scan(step, c, x)),
                           carry, xs)
  return carry, jax.tree.map(lambda a: a.reshape((steps,) + a.shape[2:]), ys)


def online_sgd(online: dict, fixed: dict, feats_T: Any, y_T: jax.Array, *,
               net: nets_lib.Net, cfg: OnlineConfig, level: int) -> tuple[dict, dict]:
  """T online SGD steps in order, step t on ``(feats_T[t], y_T[t])`` (leading axes
  ``[T, B]``); returns the final online parts and per-step metrics ``[T]``."""
  def step(p, xy):
    return sgd_step(p, fixed, xy[0], xy[1], net=net, cfg=cfg, level=level)
  return scan_steps(step, online, (feats_T, y_T), remat=cfg.remat, segment=cfg.segment,
                    unroll=cfg.unroll)


def learn_online(params: dict, x_TxB: jax.Array, y_TxB: jax.Array, *,
                 net: nets_lib.Net, cfg: OnlineConfig) -> tuple[dict, dict]:
  """The online phase on its own: T SGD steps over ``(x_TxB[t], y_TxB[t])`` in order.

  Returns:
    The whole params dict afterwards (only the ``cfg.online`` parts differ from
    ``params``) and per-step metrics ``[T]``.
  """
  level = net.prefix_level(cfg.online)
  online, fixed = split(params, cfg.online)
  t, b = y_TxB.shape[:2]
  feats = net.features(params, x_TxB.reshape((t * b,) + x_TxB.shape[2:]), level,
                       cfg.gate_one)
  feats_T = jax.tree.map(lambda f: f.reshape((t, b) + f.shape[1:]), feats)
  online, steps = online_sgd(online, fixed, feats_T, y_TxB, net=net, cfg=cfg,
                             level=level)
  return {**fixed, **online}, steps


def reset_rows(params: dict, rows: jax.Array, key: jax.Array) -> dict:
  """``params`` with the output layer's columns ``rows`` redrawn He-normal."""
  out = params["head"]["out"]
  kernel = out["kernel"]
  fresh = nets_lib.he_normal(key, (kernel.shape[0], rows.shape[0]), kernel.dtype)
  head = dict(params["head"], out=dict(out, kernel=kernel.at[:, rows].set(fresh)))
  return dict(params, head=head)


def meta_loss(theta: dict, traj: Trajectory, key: jax.Array, *, net: nets_lib.Net,
              cfg: OnlineConfig) -> tuple[jax.Array, dict]:
  """The meta-objective of one trajectory (see the module docstring) and metrics."""
  if cfg.reset_classes and cfg.loss == "xent" and traj.classes.shape[0]:
    theta = reset_rows(theta, traj.classes, key)
  level = net.prefix_level(cfg.online)
  online, fixed = split(theta, cfg.online)
  t, b = traj.y.shape[:2]
  x_traj = traj.x.reshape((t * b,) + traj.x.shape[2:])
  feats = net.features(theta, jnp.concatenate([x_traj, traj.remember_x]), level,
                       cfg.gate_one)
  feats_T = jax.tree.map(lambda f: f[:t * b].reshape((t, b) + f.shape[1:]), feats)
  online, steps = online_sgd(online, fixed, feats_T, traj.y, net=net, cfg=cfg,
                             level=level)
  outputs = net.from_features({**fixed, **online}, feats, level, cfg.gate_one)
  targets = jnp.concatenate([traj.y.reshape((t * b,) + traj.y.shape[2:]),
                             traj.remember_y])
  loss, metrics = score(outputs, targets, cfg.loss)
  aux = {f"meta_{k}": v for k, v in metrics.items()}
  aux.update({f"online_{k}": jnp.mean(v) for k, v in steps.items()})
  return loss, jax.lax.stop_gradient(aux)


def meta_grad(theta: dict, traj: Trajectory, key: jax.Array, *, net: nets_lib.Net,
              cfg: OnlineConfig) -> tuple[dict, dict]:
  """``(∇_θ L, metrics)`` for one trajectory: the gradient of every meta-learned part
  (the RLN's, the PLN's initial weights', a gate's)."""
  grads, aux = jax.grad(meta_loss, has_aux=True)(theta, traj, key, net=net, cfg=cfg)
  return grads, aux


def check(online: Sequence[str], net: nets_lib.Net, key: str) -> None:
  """OML/ANML update only the prediction network online, and only parts it has."""
  missing = set(online) - set(net.parts)
  if missing:
    raise ConfigError(f"config.{key}={tuple(online)}: the network has no "
                      f"{', '.join(sorted(missing))} (its parts: {net.parts})")
  if set(online) - set(nets_lib.PREDICTION):
    raise ConfigError(f"config.{key}={tuple(online)}: only the prediction network "
                      f"{nets_lib.PREDICTION} is updated online; the representation "
                      "and the neuromodulatory network are meta-learned")
