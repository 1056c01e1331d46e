"""Inner-loop adaptation: per-step losses and the one-pass evaluation curve."""

import dataclasses

import jax
from jax.flatten_util import ravel_pytree
import jax.numpy as jnp
import numpy as np
import pytest

from metalearn import inner as inner_lib
from metalearn import learner as learner_lib
from metalearn.models import mlp
from metalearn.tasks.sinusoid import SinusoidTasks

LEARNER = learner_lib.Learner(mlp.MLP((16,)), "mse")
EPISODE = jax.tree.map(lambda x: x[0], SinusoidTasks().sample(jax.random.key(0), None, 1))
THETA = LEARNER.init(jax.random.key(1), EPISODE.support_x)
SUPPORT = lambda p: LEARNER.support_loss(p, EPISODE)


def test_adapt_is_plain_sgd_and_reports_pre_step_losses():
  cfg = inner_lib.InnerConfig(steps=3, lr=0.02)
  adapted, losses = inner_lib.adapt(THETA, SUPPORT, cfg=cfg)
  p, expected = THETA, []
  for _ in range(3):
    expected.append(SUPPORT(p)[0])
    g = jax.grad(lambda q: SUPPORT(q)[0])(p)
    p = jax.tree.map(lambda a, b: a - 0.02 * b, p, g)
  np.testing.assert_allclose(losses, expected, rtol=1e-5)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7),
               adapted, p)
  assert losses[-1] < losses[0]


def test_adapt_curve_matches_separate_adaptations():
  eval_fn = lambda p: LEARNER.query_loss(p, EPISODE)[1]
  steps = (0, 1, 4, 9)
  cfg = inner_lib.InnerConfig(lr=0.02)
  adapted, curve = jax.jit(lambda t: inner_lib.adapt_curve(
      t, SUPPORT, eval_fn, cfg=cfg, eval_steps=steps))(THETA)
  assert curve["loss"].shape == (len(steps),)
  for i, k in enumerate(steps):
    p, _ = inner_lib.adapt(THETA, SUPPORT, cfg=inner_lib.InnerConfig(steps=k, lr=0.02))
    np.testing.assert_allclose(curve["loss"][i], eval_fn(p)["loss"], rtol=1e-5)
  np.testing.assert_allclose(jax.tree.leaves(adapted)[0], jax.tree.leaves(p)[0],
                             rtol=1e-5, atol=1e-7)


def test_zero_steps_returns_theta():
  adapted, losses = inner_lib.adapt(THETA, SUPPORT, cfg=inner_lib.InnerConfig(steps=0))
  assert losses.shape == (0,)
  jax.tree.map(np.testing.assert_array_equal, adapted, THETA)


def _task_ids(eps):
  """(A, B) with y = A·sin x + B·cos x (= a·sin(x − φ)), solved from two points."""
  x, y = np.asarray(eps.support_x[..., 0], np.float64), np.asarray(eps.support_y[..., 0])
  m = np.stack([np.sin(x[:, :2]), np.cos(x[:, :2])], -1)  # [T, 2, 2]
  ab = np.linalg.solve(m, y[:, :2, None])[..., 0]
  return set(map(tuple, np.round(ab, 2).tolist()))


def test_sinusoid_pool_restricts_training_tasks():
  pooled = SinusoidTasks(shots=3, queries=3, pool_size=4).sample(jax.random.key(0), None, 64)
  assert len(_task_ids(pooled)) == 4
  free = SinusoidTasks(shots=3, queries=3).sample(jax.random.key(0), None, 64)
  assert len(_task_ids(free)) == 64


def test_adapt_curve_and_adapt_from_start_from_a_given_optimiser_state():
  cfg = inner_lib.InnerConfig(steps=3, lr=0.01, optimizer="adam")
  # A state with history: Adam after 3 steps on the same task.
  _, state, _ = inner_lib.adapt_from(THETA, cfg.make_optimizer().init(THETA), SUPPORT,
                                     cfg=cfg)
  eval_fn = lambda p: LEARNER.query_loss(p, EPISODE)[1]
  _, curve = inner_lib.adapt_curve(THETA, SUPPORT, eval_fn, cfg=cfg, eval_steps=(0, 3),
                                   opt_state=state)
  from_state, _, _ = inner_lib.adapt_from(THETA, state, SUPPORT, cfg=cfg)
  fresh, _ = inner_lib.adapt(THETA, SUPPORT, cfg=cfg)
  np.testing.assert_allclose(curve["loss"][1], eval_fn(from_state)["loss"], rtol=1e-5)
  assert abs(float(eval_fn(fresh)["loss"]) - float(curve["loss"][1])) > 1e-4


def test_frozen_modules_keep_their_values_and_get_the_unrolled_meta_gradient():
  # A conv net with batch norm: freezing its offsets and scales in the inner loop must
  # give exactly the hand-written update theta' = theta - lr * mask * grad, and the
  # meta-gradient of the query loss through it (no optax in the reference).
  from metalearn.models import conv4  # pylint: disable=g-import-not-at-top
  net = learner_lib.Learner(conv4.Conv4(3, filters=4, depth=2), "xent")
  key_x, key_q = jax.random.split(jax.random.key(2))
  x = jax.random.normal(key_x, (6, 8, 8, 1))
  xq = jax.random.normal(key_q, (6, 8, 8, 1))
  y = np.array([0, 1, 2, 0, 1, 2], np.int32)
  theta = net.init(jax.random.key(3), x)
  support = lambda p: net.score(net.apply(p, x), y)
  query = lambda p: net.score(net.apply(p, xq), y)[0]
  cfg = inner_lib.InnerConfig(steps=2, lr=0.3, frozen=("BatchStatNorm",))

  def by_hand(t):
    p = t
    for _ in range(2):
      g = jax.grad(lambda q: support(q)[0])(p)
      p = jax.tree_util.tree_map_with_path(
          lambda path, a, b: a if "BatchStatNorm" in jax.tree_util.keystr(path)
          else a - 0.3 * b, p, g)
    return p

  adapted, _ = inner_lib.adapt(theta, support, cfg=cfg)
  expected = by_hand(theta)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
               adapted, expected)
  bn = [k for k in adapted if k.startswith("BatchStatNorm")]
  assert len(bn) == 2
  for k in bn:  # Untouched by the inner loop...
    jax.tree.map(np.testing.assert_array_equal, adapted[k], theta[k])
  assert not np.allclose(adapted["Conv_0"]["kernel"],
                         theta["Conv_0"]["kernel"])
  # ...but meta-learned: the second-order meta-gradient reaches them.
  meta = jax.grad(lambda t: query(inner_lib.adapt(t, support, cfg=cfg)[0]))(theta)
  ref = jax.grad(lambda t: query(by_hand(t)))(theta)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6), meta, ref)
  assert np.abs(meta["BatchStatNorm_1"]["bias"]).max() > 0
  with pytest.raises(ValueError, match="no parameter under a module named 'BatchNorm'"):
    inner_lib.adapt(theta, support, cfg=inner_lib.InnerConfig(frozen=("BatchNorm",)))


def _dead_feature_problem(dtype):
  """A tanh regression whose support inputs have an all-zero last feature.

  The support gradient of ``w[2]`` is then exactly zero at every inner step, so inner
  Adam's second moment for it stays exactly zero; the query inputs do use that
  feature, so its meta-gradient is not zero. The other support gradients stay far from
  zero (2 to 4 in size) over the first inner steps, away from the kink of Adam's
  update (about sign(g)) at g = 0.

  Returns:
    ``(theta, support, query)``: the parameters, ``params -> (loss, aux)`` and
    ``params -> loss``.
  """
  rng = np.random.default_rng(0)
  xs, xq = rng.uniform(0.5, 1.5, (2, 8, 3))
  xs[:, 2] = 0.0
  c = lambda a: jnp.asarray(a, dtype)
  theta = {"w": c([-0.4, -0.3, 0.2]), "b": c(-0.5)}
  xs, xq, y = c(xs), c(xq), c(np.full(8, 0.9))
  loss = lambda p, x: jnp.mean((jnp.tanh(x @ p["w"]) + p["b"] - y) ** 2)
  return theta, lambda p: (loss(p, xs), None), lambda p: loss(p, xq)


def _flat_meta_grads(theta, support, query, *cfgs):
  """The meta-gradient of the query loss after ``adapt`` under each config, flattened."""
  meta_grad = lambda t, cfg: jax.grad(
      lambda u: query(inner_lib.adapt(u, support, cfg=cfg)[0]))(t)
  return jax.jit(lambda t: [ravel_pytree(meta_grad(t, c))[0] for c in cfgs])(theta)


def test_second_order_through_inner_adam_needs_eps_root():
  # The failure mode adam_eps_root fixes: a parameter whose support gradient is exactly
  # zero has Adam second moment 0, where d sqrt(v)/dv = inf; inf * 0 = NaN reaches the
  # whole meta-gradient through the Hessian-vector products.
  theta, support, query = _dead_feature_problem(jnp.float32)
  cfg = inner_lib.InnerConfig(steps=2, lr=0.05, optimizer="adam")
  assert cfg.adam_eps_root == 0.0
  plain, first_order, fixed = _flat_meta_grads(
      theta, support, query, cfg, dataclasses.replace(cfg, first_order=True),
      dataclasses.replace(cfg, adam_eps_root=1e-12))
  assert not np.isfinite(plain).all()
  assert np.isfinite(first_order).all()
  assert np.isfinite(fixed).all()


@pytest.mark.parametrize("adam_b1", [0.0, 0.9])
def test_second_order_through_inner_adam_matches_central_finite_differences(adam_b1):
  steps = 3
  with jax.enable_x64(True):
    theta, support, query = _dead_feature_problem(jnp.float64)
    cfg = inner_lib.InnerConfig(steps=steps, lr=0.05, optimizer="adam", adam_b1=adam_b1,
                                adam_eps_root=1e-12)
    # Finite differences need every support gradient but the dead one well away from 0
    # at each inner step (Adam's update is about sign(g)).
    grad_fn = lambda p: jax.grad(lambda q: support(q)[0])(p)
    _, grads = inner_lib.adapt_curve(theta, support, grad_fn, cfg=cfg,
                                     eval_steps=range(steps))
    grads_KP = jax.vmap(lambda g: ravel_pytree(g)[0])(grads)
    dead = np.asarray(grads_KP[0] == 0)
    np.testing.assert_array_equal(grads_KP[:, dead], 0.0)
    assert dead.sum() == 1 and np.abs(grads_KP[:, ~dead]).min() > 1.0

    meta, first_order = _flat_meta_grads(theta, support, query, cfg,
                                         dataclasses.replace(cfg, first_order=True))
    # The reference: re-run the whole adaptation and query loss per perturbed entry.
    objective = jax.jit(lambda t: query(inner_lib.adapt(t, support, cfg=cfg)[0]))
    flat, unravel = ravel_pytree(theta)
    h = 1e-6
    fd = np.array([(objective(unravel(flat.at[i].add(h)))
                    - objective(unravel(flat.at[i].add(-h)))) / (2 * h)
                   for i in range(flat.size)])
    assert np.isfinite(meta).all()
    np.testing.assert_allclose(meta, fd, rtol=1e-5)
    # The check has teeth: the first-order meta-gradient is off by far more.
    assert np.abs(first_order - fd).max() > 1e-3
    assert np.abs(first_order - fd).max() > 100 * np.abs(meta - fd).max()
    # eps_root barely moves the adaptation itself.
    adapt = lambda c: ravel_pytree(inner_lib.adapt(theta, support, cfg=c)[0])[0]
    np.testing.assert_allclose(adapt(cfg), adapt(dataclasses.replace(cfg, adam_eps_root=0.0)),
                               rtol=1e-9)


@pytest.mark.parametrize("bad", [-1e-12, float("nan")])
def test_adam_eps_root_must_be_non_negative(bad):
  with pytest.raises(ValueError, match="inner adam_eps_root"):
    inner_lib.InnerConfig(optimizer="adam", adam_eps_root=bad)
