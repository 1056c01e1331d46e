"""Checks MAML, first-order MAML and Reptile against independent computations:
central finite differences, hand-derived gradients on quadratics, direct gradients."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metalearn import algorithms
from metalearn import learner as learner_lib
from metalearn.inner import InnerConfig
from metalearn.models import conv4
from metalearn.models import mlp
from metalearn.tasks.episode import Episode
from metalearn.tasks.sinusoid import SinusoidTasks


def _image_episode(key, ways=3, shots=2, queries=2, size=8, dtype=jnp.float32):
  k1, k2 = jax.random.split(key)
  return Episode(
      support_x=jax.random.normal(k1, (ways * shots, size, size, 1), dtype),
      support_y=jnp.repeat(jnp.arange(ways), shots),
      query_x=jax.random.normal(k2, (ways * queries, size, size, 1), dtype),
      query_y=jnp.repeat(jnp.arange(ways), queries))


def _query_loss_after(learner, inner, theta, episode):
  """The MAML objective, written as a plain Python loop of SGD steps (unrolled)."""
  p = theta
  for _ in range(inner.steps):
    g = jax.grad(lambda q: learner.support_loss(q, episode)[0])(p)
    p = jax.tree.map(lambda a, b: a - inner.lr * b, p, g)
  return learner.query_loss(p, episode)[0]


@pytest.mark.parametrize("steps", [1, 3])
@pytest.mark.parametrize("model", ["mlp", "conv"])
def test_maml_matches_central_finite_differences(steps, model):
  with jax.enable_x64(True):
    key = jax.random.key(0)
    if model == "mlp":
      learner = learner_lib.Learner(mlp.MLP((8, 8), param_dtype=jnp.float64), "mse")
      episode = jax.tree.map(lambda x: x[0].astype(jnp.float64),
                             SinusoidTasks(shots=5, queries=5).sample(key, None, 1))
      theta = learner.init(key, episode.support_x)
      lr = 0.05
    else:
      net = conv4.Conv4(3, filters=4, depth=2, conv_impl="im2col",
                        param_dtype=jnp.float64)
      learner = learner_lib.Learner(net, "xent")
      episode = _image_episode(key, dtype=jnp.float64)
      theta = learner.init(key, episode.support_x)
      lr = 0.3
    inner = InnerConfig(steps=steps, lr=lr)
    grads, _ = jax.jit(lambda t: algorithms.maml.maml_meta_grad(
        t, episode, key, learner=learner, inner=inner))(theta)
    objective = jax.jit(lambda t: _query_loss_after(learner, inner, t, episode))
    leaves, treedef = jax.tree.flatten(theta)
    rng = np.random.default_rng(0)
    eps = 1e-5
    for _ in range(4):  # Directional derivatives along random directions.
      v = treedef.unflatten([rng.standard_normal(l.shape) for l in leaves])
      plus = objective(jax.tree.map(lambda t, d: t + eps * d, theta, v))
      minus = objective(jax.tree.map(lambda t, d: t - eps * d, theta, v))
      fd = (plus - minus) / (2 * eps)
      analytic = sum(jnp.vdot(g, d) for g, d in zip(jax.tree.leaves(grads),
                                                     jax.tree.leaves(v)))
      np.testing.assert_allclose(analytic, fd, rtol=1e-6, atol=1e-8)


def test_zero_inner_lr_gives_query_gradient_for_maml_and_fomaml():
  key = jax.random.key(1)
  learner = learner_lib.Learner(conv4.Conv4(3, filters=4, depth=2), "xent")
  episode = _image_episode(key)
  theta = learner.init(key, episode.support_x)
  inner = InnerConfig(steps=3, lr=0.0)
  direct = jax.grad(lambda t: learner.query_loss(t, episode)[0])(theta)
  # The convolutions' biases feed batch norm, so their gradients are 0 up to float32
  # roundoff of the whole gradient's scale (about 1e-7 here, whose sign and size depend
  # on the CPU's summation order): absolute tolerance a few ulps of the largest entry.
  atol = 8 * np.finfo(np.float32).eps * max(float(jnp.abs(g).max())
                                            for g in jax.tree.leaves(direct))
  for fn in (algorithms.maml.maml_meta_grad, algorithms.maml.fomaml_meta_grad):
    grads, _ = jax.jit(lambda t, f=fn: f(t, episode, key, learner=learner, inner=inner))(theta)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=atol),
                 grads, direct)


@dataclasses.dataclass(frozen=True)
class QuadraticLearner:
  """Support loss ½(p−a)ᵀA(p−a), query loss ½(p−b)ᵀB(p−b); the episode holds A, a, B, b."""

  def support_loss(self, p, ep):
    d = p - ep.support_y
    return 0.5 * d @ ep.support_x @ d, {"loss": 0.5 * d @ ep.support_x @ d}

  def query_loss(self, p, ep):
    d = p - ep.query_y
    return 0.5 * d @ ep.query_x @ d, {"loss": 0.5 * d @ ep.query_x @ d}


def _quadratic_problem(n=4, seed=0):
  rng = np.random.default_rng(seed)
  ma, mb = rng.standard_normal((2, n, n))
  a_mat, b_mat = ma @ ma.T + np.eye(n), mb @ mb.T + np.eye(n)
  a, b, theta = rng.standard_normal((3, n))
  ep = Episode(support_x=jnp.asarray(a_mat, jnp.float32), support_y=jnp.asarray(a, jnp.float32),
               query_x=jnp.asarray(b_mat, jnp.float32), query_y=jnp.asarray(b, jnp.float32))
  return ep, jnp.asarray(theta, jnp.float32), (a_mat, a, b_mat, b, theta)


def test_first_order_maml_is_maml_without_second_order_terms_on_a_quadratic():
  ep, theta, (a_mat, a, b_mat, b, theta_np) = _quadratic_problem()
  lr = 0.1
  p1 = theta_np - lr * a_mat @ (theta_np - a)
  maml_expected = (np.eye(4) - lr * a_mat) @ b_mat @ (p1 - b)  # d p1/dθ = I − αA.
  fomaml_expected = b_mat @ (p1 - b)  # Second-order term αA dropped.
  kw = dict(learner=QuadraticLearner(), inner=InnerConfig(steps=1, lr=lr))
  key = jax.random.key(0)
  maml, _ = algorithms.maml.maml_meta_grad(theta, ep, key, **kw)
  fomaml, _ = algorithms.maml.fomaml_meta_grad(theta, ep, key, **kw)
  maml_fo, _ = algorithms.maml.maml_meta_grad(
      theta, ep, key, learner=QuadraticLearner(),
      inner=InnerConfig(steps=1, lr=lr, first_order=True))
  np.testing.assert_allclose(maml, maml_expected, rtol=1e-5)
  np.testing.assert_allclose(fomaml, fomaml_expected, rtol=1e-5)
  np.testing.assert_allclose(maml_fo, fomaml_expected, rtol=1e-5)
  assert not np.allclose(maml_expected, fomaml_expected, rtol=1e-2)


def test_reptile_one_sgd_step_is_scaled_support_gradient():
  ep, theta, (a_mat, a, _, _, theta_np) = _quadratic_problem(seed=1)
  lr = 0.05
  grads, _ = algorithms.reptile.reptile_meta_grad(
      theta, ep, jax.random.key(0), learner=QuadraticLearner(),
      inner=InnerConfig(steps=1, lr=lr))
  np.testing.assert_allclose(grads, lr * a_mat @ (theta_np - a), rtol=1e-5, atol=1e-6)


def test_reptile_adam_moves_towards_support_minimum():
  ep, theta, (_, a, _, _, theta_np) = _quadratic_problem(seed=2)
  grads, _ = algorithms.reptile.reptile_meta_grad(
      theta, ep, jax.random.key(0), learner=QuadraticLearner(),
      inner=InnerConfig(steps=200, lr=0.05, optimizer="adam"))
  adapted = theta_np - np.asarray(grads)
  assert np.linalg.norm(adapted - a) < 0.1 * np.linalg.norm(theta_np - a)


@pytest.mark.parametrize("n,b,steps", [(50, 10, 5), (5, 3, 4), (6, 6, 2)])
def test_minibatch_indices_are_consecutive_slices_of_shuffled_passes(n, b, steps):
  idx = np.asarray(algorithms.reptile.minibatch_indices(jax.random.key(3), n, b, steps))
  assert idx.shape == (steps, b)
  flat = idx.reshape(-1)
  for start in range(0, len(flat), n):  # Each pass is a permutation (the last partial).
    block = flat[start:start + n]
    assert len(set(block.tolist())) == len(block) and block.min() >= 0 and block.max() < n
  again = algorithms.reptile.minibatch_indices(jax.random.key(3), n, b, steps)
  other = algorithms.reptile.minibatch_indices(jax.random.key(4), n, b, steps)
  np.testing.assert_array_equal(idx, again)
  if n > 2:
    assert not np.array_equal(idx, np.asarray(other))
  with pytest.raises(ValueError, match="batch_size"):
    algorithms.reptile.minibatch_indices(jax.random.key(3), n, n + 1, steps)


def _reptile_mlp_problem():
  key = jax.random.key(5)
  learner = learner_lib.Learner(mlp.MLP((8, 8)), "mse")
  episode = jax.tree.map(lambda x: x[0],
                         SinusoidTasks(shots=10, queries=5).sample(key, None, 1))
  return learner, episode, learner.init(key, episode.support_x)


def test_reptile_minibatch_steps_match_a_hand_written_adam_loop():
  learner, episode, theta = _reptile_mlp_problem()
  inner = InnerConfig(steps=4, lr=0.01, optimizer="adam", adam_b1=0.0, adam_b2=0.999,
                      batch_size=3)
  key = jax.random.key(7)
  grads, _ = algorithms.reptile.reptile_meta_grad(theta, episode, key, learner=learner,
                                          inner=inner)
  idx = np.asarray(algorithms.reptile.minibatch_indices(key, 10, 3, 4))
  p, v = theta, jax.tree.map(jnp.zeros_like, theta)
  for t in range(1, 5):  # Adam with β1 = 0, written out.
    batch = episode.replace(support_x=episode.support_x[idx[t - 1]],
                            support_y=episode.support_y[idx[t - 1]])
    g = jax.grad(lambda q: learner.support_loss(q, batch)[0])(p)
    v = jax.tree.map(lambda v, g: 0.999 * v + 0.001 * g * g, v, g)
    p = jax.tree.map(lambda p, g, v: p - 0.01 * g / (jnp.sqrt(v / (1 - 0.999 ** t)) + 1e-8),
                     p, g, v)
  expected = jax.tree.map(lambda a, b: a - b, theta, p)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6),
               grads, expected)
  full, _ = algorithms.reptile.reptile_meta_grad(theta, episode, key, learner=learner,
                                         inner=dataclasses.replace(inner, batch_size=0))
  assert not np.allclose(jax.tree.leaves(full)[0], jax.tree.leaves(grads)[0])


def test_reptile_with_the_whole_support_as_minibatch_is_full_batch_reptile():
  # A batch of all n examples is a permutation of the support set: same mean loss.
  learner, episode, theta = _reptile_mlp_problem()
  inner = InnerConfig(steps=3, lr=0.02, optimizer="adam")
  full, _ = algorithms.reptile.reptile_meta_grad(theta, episode, jax.random.key(0),
                                         learner=learner, inner=inner)
  shuffled, _ = algorithms.reptile.reptile_meta_grad(
      theta, episode, jax.random.key(0), learner=learner,
      inner=dataclasses.replace(inner, batch_size=10))
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-7),
               full, shuffled)


@pytest.mark.parametrize("name", ["maml", "fomaml"])
def test_minibatch_inner_steps_are_refused_outside_reptile(name):
  learner, episode, theta = _reptile_mlp_problem()
  with pytest.raises(ValueError, match="batch_size=3"):
    algorithms.get(name).meta_grad(theta, episode, jax.random.key(0), learner=learner,
                         inner=InnerConfig(steps=1, lr=0.01, batch_size=3))


def test_remat_gives_the_same_gradients():
  key = jax.random.key(2)
  learner = learner_lib.Learner(conv4.Conv4(3, filters=4, depth=2), "xent")
  episode = _image_episode(key)
  theta = learner.init(key, episode.support_x)
  run = lambda inner: jax.jit(lambda t: algorithms.maml.maml_meta_grad(
      t, episode, key, learner=learner, inner=inner))(theta)
  plain, _ = run(InnerConfig(steps=4, lr=0.3))
  remat, _ = run(InnerConfig(steps=4, lr=0.3, remat=True))
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7),
               plain, remat)
