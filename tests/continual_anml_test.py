"""ANML against OML and against finite differences: with the gate fixed to one it is
OML on the prediction network; its meta-gradient (the neuromodulatory network's
included) matches central differences in float64; online it changes only the
prediction network."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from metalearn.continual import anml
from metalearn.continual import nets as nets_lib
from metalearn.continual import oml
from metalearn.continual.stream import Trajectory
from metalearn.errors import ConfigError

T, B, R, CLASSES, SHAPE = 3, 2, 4, 3, (7, 7, 1)


def _anml_net(dtype=jnp.float32):
  # 7×7 → conv 5×5 → pool 2×2: 2·2·3 = 12 gated features.
  def stack(c):
    return nets_lib.ConvStack((c,), pools=(True,), norm=True, conv_impl="xla",
                              param_dtype=dtype)
  return nets_lib.Net(head=nets_lib.DenseStack((), CLASSES, param_dtype=dtype),
                      body=stack(3), nm=nets_lib.Gate(stack(2), 12, param_dtype=dtype))


def _trajectory(key, dtype=jnp.float32):
  k1, k2, k3, k4 = jax.random.split(key, 4)
  return Trajectory(x=jax.random.normal(k1, (T, B) + SHAPE, dtype),
                    y=jax.random.randint(k2, (T, B), 0, CLASSES),
                    remember_x=jax.random.normal(k3, (R,) + SHAPE, dtype),
                    remember_y=jax.random.randint(k4, (R,), 0, CLASSES),
                    classes=jnp.array([0], jnp.int32))


def _xent(net, params, x, y):
  return optax.softmax_cross_entropy_with_integer_labels(net.apply(params, x), y).mean()


def test_anml_with_the_gate_fixed_to_one_equals_oml():
  net = _anml_net()
  oml_net = nets_lib.Net(head=net.head, body=net.body)  # No gate.
  key = jax.random.key(0)
  traj = _trajectory(key)
  theta = net.init(key, traj.remember_x)
  plain = {k: v for k, v in theta.items() if k != "nm"}
  cfg = oml.OnlineConfig(lr=0.4, online=anml.TRAIN_ONLINE)
  one = anml.without_gate(cfg)
  x = traj.remember_x
  np.testing.assert_array_equal(net.apply(theta, x, gate_one=True), oml_net.apply(plain, x))
  assert not np.allclose(net.apply(theta, x), oml_net.apply(plain, x))  # The gate acts.
  learned, _ = oml.learn_online(theta, traj.x, traj.y, net=net, cfg=one)
  learned_oml, _ = oml.learn_online(plain, traj.x, traj.y, net=oml_net, cfg=cfg)
  for part in ("body", "head"):
    for a, b in zip(jax.tree.leaves(learned[part]), jax.tree.leaves(learned_oml[part])):
      np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
  grads, aux = jax.jit(lambda t: anml.meta_grad(t, traj, key, net=net, cfg=one))(theta)
  grads_oml, aux_oml = jax.jit(lambda t: oml.meta_grad(t, traj, key, net=oml_net,
                                                       cfg=cfg))(plain)
  np.testing.assert_allclose(aux["meta_loss"], aux_oml["meta_loss"], rtol=1e-6)
  for part in ("body", "head"):
    for a, b in zip(jax.tree.leaves(grads[part]), jax.tree.leaves(grads_oml[part])):
      np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
  for g in jax.tree.leaves(grads["nm"]):  # A constant gate has no gradient.
    np.testing.assert_array_equal(g, 0.0)


def _reference_meta_loss(net, theta, traj, lr, online):
  """ANML's objective as a plain Python loop, the whole gated network at every step."""
  p = dict(theta)
  for t in range(T):
    grads = jax.grad(lambda q: _xent(net, {**p, **q}, traj.x[t], traj.y[t]))(
        {k: p[k] for k in online})
    p.update({k: jax.tree.map(lambda a, g: a - lr * g, p[k], grads[k]) for k in online})
  x = jnp.concatenate([traj.x.reshape((-1,) + SHAPE), traj.remember_x])
  return _xent(net, p, x, jnp.concatenate([traj.y.reshape(-1), traj.remember_y]))


def test_anml_meta_gradient_matches_central_finite_differences():
  with jax.enable_x64(True):
    net = _anml_net(jnp.float64)
    key = jax.random.key(1)
    traj = _trajectory(key, jnp.float64)
    theta = net.init(key, traj.remember_x)
    cfg = oml.OnlineConfig(lr=0.5, online=anml.TRAIN_ONLINE, reset_classes=False)
    grads, aux = jax.jit(lambda t: anml.meta_grad(t, traj, key, net=net, cfg=cfg))(theta)
    objective = jax.jit(lambda t: _reference_meta_loss(net, t, traj, cfg.lr, cfg.online))
    np.testing.assert_allclose(aux["meta_loss"], objective(theta), rtol=1e-12)
    leaves, treedef = jax.tree.flatten(theta)
    rng = np.random.default_rng(0)
    eps = 1e-6
    for _ in range(2):
      v = treedef.unflatten([rng.standard_normal(l.shape) for l in leaves])
      fd = (objective(jax.tree.map(lambda t, d: t + eps * d, theta, v))
            - objective(jax.tree.map(lambda t, d: t - eps * d, theta, v))) / (2 * eps)
      analytic = sum(jnp.vdot(g, d) for g, d in zip(jax.tree.leaves(grads),
                                                     jax.tree.leaves(v)))
      np.testing.assert_allclose(analytic, fd, rtol=1e-6, atol=1e-9)
    # The neuromodulatory network is meta-learned: its gradient alone, too.
    v = jax.tree.map(jnp.zeros_like, theta)
    v["nm"] = jax.tree.map(lambda a: jnp.asarray(rng.standard_normal(a.shape)),
                           theta["nm"])
    fd = (objective(jax.tree.map(lambda t, d: t + eps * d, theta, v))
          - objective(jax.tree.map(lambda t, d: t - eps * d, theta, v))) / (2 * eps)
    analytic = sum(jnp.vdot(g, d) for g, d in zip(jax.tree.leaves(grads["nm"]),
                                                   jax.tree.leaves(v["nm"])))
    np.testing.assert_allclose(analytic, fd, rtol=1e-6, atol=1e-9)
    assert abs(float(analytic)) > 1e-6


def test_online_phase_changes_only_the_prediction_network():
  net = _anml_net()
  key = jax.random.key(2)
  traj = _trajectory(key)
  theta = net.init(key, traj.remember_x)
  for online, fixed in ((anml.TRAIN_ONLINE, ("nm",)), (anml.EVAL_ONLINE, ("nm", "body"))):
    cfg = oml.OnlineConfig(lr=0.5, online=online)
    after, _ = jax.jit(lambda t, cfg=cfg: oml.learn_online(t, traj.x, traj.y, net=net,
                                                           cfg=cfg))(theta)
    for part in fixed:
      for a, b in zip(jax.tree.leaves(theta[part]), jax.tree.leaves(after[part])):
        np.testing.assert_array_equal(a, b)
    for part in online:
      assert any(not np.array_equal(a, b) for a, b in
                 zip(jax.tree.leaves(theta[part]), jax.tree.leaves(after[part])))


def test_the_gate_is_never_updated_online():
  net = _anml_net()
  with pytest.raises(ConfigError, match="config.train.online"):
    anml.check(net, oml.OnlineConfig(lr=0.1, online=("nm", "head")))
  with pytest.raises(ConfigError, match="neuromodulatory"):
    anml.check(dataclasses.replace(net, nm=None),
               oml.OnlineConfig(lr=0.1, online=("head",)))
