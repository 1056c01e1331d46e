"""OML's meta-gradient against independent computations: central finite differences in
float64 and a hand-written Python loop of SGD steps; rematerialisation against none;
the online phase against what it may change."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from metalearn.continual import nets as nets_lib
from metalearn.continual import oml
from metalearn.continual.stream import Trajectory

T, B, R, CLASSES = 4, 2, 5, 3


def _mlp_net(dtype):
  return nets_lib.Net(rln=nets_lib.DenseStack((6,), param_dtype=dtype),
                      head=nets_lib.DenseStack((5,), CLASSES, param_dtype=dtype))


def _conv_net(dtype):
  return nets_lib.Net(
      rln=nets_lib.ConvStack((3, 2), strides=(2, 1), conv_impl="xla", param_dtype=dtype),
      head=nets_lib.DenseStack((), CLASSES, param_dtype=dtype))


def _trajectory(key, shape, dtype, steps=T):
  k1, k2, k3, k4 = jax.random.split(key, 4)
  return Trajectory(
      x=jax.random.normal(k1, (steps, B) + shape, dtype),
      y=jax.random.randint(k2, (steps, B), 0, CLASSES),
      remember_x=jax.random.normal(k3, (R,) + shape, dtype),
      remember_y=jax.random.randint(k4, (R,), 0, CLASSES),
      classes=jnp.array([1], jnp.int32))


def _xent(net, params, x, y):
  return optax.softmax_cross_entropy_with_integer_labels(net.apply(params, x), y).mean()


def _reference_meta_loss(net, theta, traj, lr, online):
  """OML's objective as a plain Python loop over the trajectory, the whole network
  applied at every step (no features, no scan)."""
  p = dict(theta)
  for t in range(traj.y.shape[0]):
    grads = jax.grad(lambda q: _xent(net, {**p, **q}, traj.x[t], traj.y[t]))(
        {k: p[k] for k in online})
    p.update({k: jax.tree.map(lambda a, g: a - lr * g, p[k], grads[k]) for k in online})
  x = jnp.concatenate([traj.x.reshape((-1,) + traj.x.shape[2:]), traj.remember_x])
  y = jnp.concatenate([traj.y.reshape(-1), traj.remember_y])
  return _xent(net, p, x, y)


def test_meta_gradient_matches_central_finite_differences():
  # (ANML's test checks the same on conv nets with per-example normalisation.)
  with jax.enable_x64(True):
    dtype = jnp.float64
    net, shape = _mlp_net(dtype), (4,)
    key = jax.random.key(0)
    traj = _trajectory(key, shape, dtype)
    theta = net.init(key, traj.remember_x)
    cfg = oml.OnlineConfig(lr=0.5, online=("head",), reset_classes=False)
    grads, aux = jax.jit(lambda t: oml.meta_grad(t, traj, key, net=net, cfg=cfg))(theta)
    objective = jax.jit(lambda t: _reference_meta_loss(net, t, traj, cfg.lr, cfg.online))
    np.testing.assert_allclose(aux["meta_loss"], objective(theta), rtol=1e-12)
    leaves, treedef = jax.tree.flatten(theta)
    rng = np.random.default_rng(0)
    eps = 1e-6
    for _ in range(3):  # Directional derivatives along random directions.
      v = treedef.unflatten([rng.standard_normal(l.shape) for l in leaves])
      plus = objective(jax.tree.map(lambda t, d: t + eps * d, theta, v))
      minus = objective(jax.tree.map(lambda t, d: t - eps * d, theta, v))
      fd = (plus - minus) / (2 * eps)
      analytic = sum(jnp.vdot(g, d) for g, d in zip(jax.tree.leaves(grads),
                                                     jax.tree.leaves(v)))
      np.testing.assert_allclose(analytic, fd, rtol=1e-6, atol=1e-9)
    # The gradient reaches the representation only through the online updates and
    # the final scoring: both are in the check above; it must not be zero.
    assert float(optax.tree.norm(grads["rln"])) > 0


def test_remat_gives_the_same_gradient():
  net = _mlp_net(jnp.float32)
  key = jax.random.key(1)
  traj = _trajectory(key, (4,), jnp.float32, steps=6)
  theta = net.init(key, traj.remember_x)
  base = oml.OnlineConfig(lr=0.3, online=("head",))
  grad = lambda cfg: jax.jit(lambda t: oml.meta_grad(t, traj, key, net=net, cfg=cfg))(
      theta)
  g0, a0 = grad(base)
  for remat, segment in (("step", 0), ("segments", 0), ("segments", 3)):
    g1, a1 = grad(dataclasses.replace(base, remat=remat, segment=segment))
    for x, y in zip(jax.tree.leaves(g0), jax.tree.leaves(g1)):
      np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-7, err_msg=remat)
    np.testing.assert_allclose(a0["meta_loss"], a1["meta_loss"], rtol=1e-6)


def test_segment_length_divides_the_trajectory():
  assert oml.segment_length(20) == 5 and oml.segment_length(16) == 4
  assert oml.segment_length(7) == 1 and oml.segment_length(1) == 1
  assert oml.segment_length(12, 6) == 6
  with pytest.raises(Exception, match="does not divide"):
    oml.segment_length(12, 5)


def test_online_updates_change_only_the_prediction_network():
  net = _conv_net(jnp.float32)
  key = jax.random.key(2)
  traj = _trajectory(key, (7, 7, 1), jnp.float32)
  theta = net.init(key, traj.remember_x)
  cfg = oml.OnlineConfig(lr=0.5, online=("head",))
  after, steps = jax.jit(lambda t: oml.learn_online(t, traj.x, traj.y, net=net,
                                                    cfg=cfg))(theta)
  assert steps["loss"].shape == (T,)
  for a, b in zip(jax.tree.leaves(theta["rln"]), jax.tree.leaves(after["rln"])):
    np.testing.assert_array_equal(a, b)  # The representation: bit for bit.
  changed = [not np.array_equal(a, b) for a, b in zip(jax.tree.leaves(theta["head"]),
                                                      jax.tree.leaves(after["head"]))]
  assert all(changed)
  # And the online phase is T plain SGD steps of the prediction network.
  @jax.jit
  def reference(p):
    for t in range(T):
      g = jax.grad(lambda h: _xent(net, {**p, "head": h}, traj.x[t], traj.y[t]))(
          p["head"])
      p = {**p, "head": jax.tree.map(lambda a, d: a - cfg.lr * d, p["head"], g)}
    return p
  p = reference(theta)
  for a, b in zip(jax.tree.leaves(p["head"]), jax.tree.leaves(after["head"])):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_first_order_stops_the_gradient_at_the_online_gradients():
  net = _mlp_net(jnp.float32)
  key = jax.random.key(3)
  traj = _trajectory(key, (4,), jnp.float32)
  theta = net.init(key, traj.remember_x)
  cfg = oml.OnlineConfig(lr=0.3, online=("head",), first_order=True, reset_classes=False)
  grads, _ = jax.jit(lambda t: oml.meta_grad(t, traj, key, net=net, cfg=cfg))(theta)

  def reference(t):  # The online gradients as constants.
    p = dict(t)
    for s in range(T):
      g = jax.grad(lambda h: _xent(net, {**p, "head": h}, traj.x[s], traj.y[s]))(
          p["head"])
      p["head"] = jax.tree.map(lambda a, d: a - cfg.lr * jax.lax.stop_gradient(d),
                               p["head"], g)
    x = jnp.concatenate([traj.x.reshape(-1, 4), traj.remember_x])
    return _xent(net, p, x, jnp.concatenate([traj.y.reshape(-1), traj.remember_y]))

  for a, b in zip(jax.tree.leaves(grads), jax.tree.leaves(jax.jit(jax.grad(reference))(theta))):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_reset_redraws_only_the_trajectory_classes_rows():
  net = _mlp_net(jnp.float32)
  key = jax.random.key(4)
  theta = net.init(key, jnp.zeros((2, 4)))
  reset = oml.reset_rows(theta, jnp.array([0, 2]), jax.random.key(9))
  before, after = theta["head"]["out"]["kernel"], reset["head"]["out"]["kernel"]
  np.testing.assert_array_equal(before[:, 1], after[:, 1])
  assert not np.array_equal(before[:, 0], after[:, 0])
  assert not np.array_equal(before[:, 2], after[:, 2])
  np.testing.assert_array_equal(theta["head"]["out"]["bias"], reset["head"]["out"]["bias"])
  # A reset row's initial weights cannot be meta-learned: their gradient is zero.
  traj = _trajectory(key, (4,), jnp.float32)
  traj = traj.replace(classes=jnp.array([2], jnp.int32))
  cfg = oml.OnlineConfig(lr=0.3, online=("head",))
  grads, _ = jax.jit(lambda t: oml.meta_grad(t, traj, key, net=net, cfg=cfg))(theta)
  np.testing.assert_array_equal(grads["head"]["out"]["kernel"][:, 2], 0.0)
  assert np.abs(grads["head"]["out"]["kernel"][:, 0]).max() > 0
