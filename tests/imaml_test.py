"""Checks iMAML against independent computations: the closed-form hypergradient of a
quadratic inner problem, differentiation through a converged unrolled proximal loop,
the CG residual recomputed by hand, compiled memory flat in K (second-order MAML's is
not), and the wiring (options, config checks, evaluation, FLOP counting, meta-step)."""

import dataclasses
import functools

from flax import linen as nn
import jax
from jax import lax
from jax.flatten_util import ravel_pytree
import jax.numpy as jnp
import numpy as np
import pytest

from metalearn import algorithms
from metalearn import builder as build_lib
from metalearn import compiler
from metalearn import config as config_lib
from metalearn import flops
from metalearn import inner as inner_lib
from metalearn.algorithms import base
from metalearn.algorithms import imaml
from metalearn.errors import ConfigError
from metalearn.inner import InnerConfig
from metalearn.learner import Learner
from metalearn.models import layers
from metalearn.models import mlp
from metalearn.tasks.sinusoid import SinusoidTasks


@dataclasses.dataclass(frozen=True)
class QuadraticLearner:
  """Support loss ½(φ−a)ᵀA(φ−a), query loss ½(φ−b)ᵀB(φ−b) + cᵀφ on a flattened pytree
  (the learner interface iMAML uses: ``support_loss``, ``query_loss``)."""

  A: np.ndarray
  a: np.ndarray
  B: np.ndarray
  b: np.ndarray
  c: np.ndarray
  unravel: object

  def support_loss(self, params, episode):
    del episode
    d = ravel_pytree(params)[0] - self.a
    loss = 0.5 * d @ self.A @ d
    return loss, {"loss": loss}

  def query_loss(self, params, episode):
    del episode
    phi = ravel_pytree(params)[0]
    d = phi - self.b
    loss = 0.5 * d @ self.B @ d + self.c @ phi
    return loss, {"loss": loss}


def _quadratic(rng, n=6):
  q, _ = np.linalg.qr(rng.standard_normal((n, n)))
  A = q @ np.diag(np.linspace(0.5, 4.0, n)) @ q.T
  m = rng.standard_normal((n, n))
  B = m @ m.T / n + np.eye(n)
  theta = {"w": jnp.asarray(rng.standard_normal(4)), "v": jnp.asarray(rng.standard_normal(2))}
  unravel = ravel_pytree(theta)[1]
  vec = lambda: jnp.asarray(rng.standard_normal(n))
  return QuadraticLearner(jnp.asarray(A), vec(), jnp.asarray(B), vec(), vec(), unravel), theta


def _closed_form(learner, theta, lam):
  """(hypergradient, ∇L_q at φ*), from φ*(θ) = (A + λI)⁻¹(A a + λ θ) differentiated by
  jax.grad (no CG, no inner loop)."""
  n = learner.A.shape[0]

  def phi_star(t):
    return jnp.linalg.solve(learner.A + lam * jnp.eye(n), learner.A @ learner.a + lam * t)

  outer = lambda t: learner.query_loss(learner.unravel(phi_star(t)), None)[0]
  t = ravel_pytree(theta)[0]
  gq = jax.grad(lambda p: learner.query_loss(learner.unravel(p), None)[0])(phi_star(t))
  return jax.grad(outer)(t), gq


def test_implicit_gradient_of_a_quadratic_is_the_closed_form_hypergradient():
  with jax.enable_x64(True):
    learner, theta = _quadratic(np.random.default_rng(0))
    lam = 1.5
    # GD on the proximal objective contracts by max |1 − lr(λ + eig A)| = 0.6 a step.
    inner = InnerConfig(steps=200, lr=0.2)
    grads, aux = imaml.imaml_meta_grad(theta, None, jax.random.key(0), learner=learner,
                                       inner=inner, lam=lam, cg_steps=6)
    expected, gq = _closed_form(learner, theta, lam)
    np.testing.assert_allclose(ravel_pytree(grads)[0], expected, rtol=1e-10, atol=1e-12)
    # The same as (I + A/λ)⁻¹ ∇L_q(φ*) written with numpy.
    n = learner.A.shape[0]
    np.testing.assert_allclose(
        expected, np.linalg.solve(np.eye(n) + np.asarray(learner.A) / lam, gq), rtol=1e-10)
    assert aux["cg_residual"] < 1e-12
    assert aux["inner_stationarity"] < 1e-12
    assert jax.tree.structure(grads) == jax.tree.structure(theta)


def test_cg_residual_is_the_true_residual_and_falls_with_iterations():
  with jax.enable_x64(True):
    learner, theta = _quadratic(np.random.default_rng(1))
    lam = 1.0
    inner = InnerConfig(steps=300, lr=0.2)
    n = learner.A.shape[0]
    matrix = np.eye(n) + np.asarray(learner.A) / lam
    _, gq = _closed_form(learner, theta, lam)
    residuals = []
    for steps in (0, 1, 2, n):
      grads, aux = imaml.imaml_meta_grad(theta, None, jax.random.key(0), learner=learner,
                                         inner=inner, lam=lam, cg_steps=steps)
      g = np.asarray(ravel_pytree(grads)[0])
      by_hand = np.linalg.norm(matrix @ g - gq) / np.linalg.norm(gq)
      np.testing.assert_allclose(aux["cg_residual"], by_hand, rtol=1e-8, atol=1e-14)
      residuals.append(float(aux["cg_residual"]))
    assert residuals[0] == pytest.approx(1.0)  # From g = 0.
    assert residuals[0] > residuals[1] > residuals[2] > 1e4 * residuals[3]
    assert residuals[3] < 1e-12


class SmoothNet(nn.Module):
  """A tanh network (twice differentiable everywhere: a ReLU net's GD chatters at its
  kinks and has no stationary point to differentiate), optionally with batch norm on
  batch statistics as the conv nets have."""

  norm: bool = False

  @nn.compact
  def __call__(self, x, num_stats=None):
    x = nn.Dense(8, param_dtype=jnp.float64)(x)
    if self.norm:
      x = layers.BatchStatNorm(param_dtype=jnp.float64)(x, num_stats)
    x = jnp.tanh(nn.Dense(8, param_dtype=jnp.float64)(jnp.tanh(x)))
    return nn.Dense(1, param_dtype=jnp.float64)(x)


def _unrolled_meta_grad(learner, episode, theta, lam, lr, steps):
  """d/dθ L_q(φ_K(θ)), differentiating through K written-out proximal GD steps."""
  def outer(t):
    def step(p, _):
      g = jax.grad(lambda q: learner.support_loss(q, episode)[0])(p)
      return jax.tree.map(lambda pi, gi, ti: pi - lr * (gi + lam * (pi - ti)), p, g, t), None
    p, _ = lax.scan(step, t, None, length=steps)
    return learner.query_loss(p, episode)[0]
  return jax.grad(outer)(theta)


@pytest.mark.parametrize("norm", [False, True])
def test_implicit_gradient_matches_unrolled_differentiation_at_convergence(norm):
  with jax.enable_x64(True):
    key = jax.random.key(0)
    episode = jax.tree.map(lambda x: x[0].astype(jnp.float64),
                           SinusoidTasks(shots=5, queries=5).sample(key, None, 1))
    learner = Learner(SmoothNet(norm=norm), "mse")
    theta = learner.init(key, episode.support_x)
    lam, lr, steps = 4.0, 0.1, 150
    grads, aux = compiler.jit(lambda t: imaml.imaml_meta_grad(
        t, episode, key, learner=learner, inner=InnerConfig(steps=steps, lr=lr),
        lam=lam, cg_steps=100), fast_compile=True)(theta)
    unrolled = compiler.jit(lambda t: _unrolled_meta_grad(
        learner, episode, t, lam, lr, steps), fast_compile=True)(theta)
    g, u = ravel_pytree(grads)[0], ravel_pytree(unrolled)[0]
    assert aux["inner_stationarity"] < 1e-8  # The inner loop converged.
    assert aux["cg_residual"] < 1e-10
    assert float(jnp.linalg.norm(g - u) / jnp.linalg.norm(u)) < 1e-6
    # Not trivially so: the first-order gradient (∇L_q at φ) differs from both.
    support = lambda p: learner.support_loss(p, episode)
    adapted, _ = inner_lib.adapt(theta, imaml.proximal(support, theta, lam),
                                 cfg=InnerConfig(steps=steps, lr=lr))
    q = ravel_pytree(jax.grad(lambda p: learner.query_loss(p, episode)[0])(adapted))[0]
    assert float(jnp.linalg.norm(q - u) / jnp.linalg.norm(u)) > 1e-2


def _temp_bytes(fn, theta, episode, inner):
  compiled = compiler.jit(lambda t: fn(t, episode, jax.random.key(0), inner=inner),
                          fast_compile=True).lower(theta).compile()
  return compiled.memory_analysis().temp_size_in_bytes


def test_compiled_memory_is_flat_in_inner_steps_unlike_second_order_maml():
  key = jax.random.key(0)
  learner = Learner(mlp.MLP((16, 16)), "mse")
  episode = jax.tree.map(lambda x: x[0],
                         SinusoidTasks(shots=20, queries=20).sample(key, None, 1))
  theta = learner.init(key, episode.support_x)
  bind = lambda f: lambda *a, **k: f(*a, learner=learner, **k)
  temp = {(name, k): _temp_bytes(bind(fn), theta, episode, InnerConfig(steps=k, lr=0.01))
          for name, fn in (("imaml", imaml.imaml_meta_grad),
                           ("maml", algorithms.maml.maml_meta_grad))
          for k in (5, 100)}
  assert temp["imaml", 100] <= 1.5 * temp["imaml", 5], temp
  assert temp["maml", 100] > 3 * temp["maml", 5], temp  # Stores K carries.


def _sinusoid_config(**imaml_options):
  c = config_lib.base_config()
  c.algorithm = "imaml"
  c.model.hidden = (8, 8)
  c.shots = c.queries = 5
  c.meta_batch = 2
  c.inner.steps = 3
  c.inner.lr = 0.05
  for k, v in imaml_options.items():
    c.imaml[k] = v
  return c


@pytest.mark.parametrize("key,value,match", [
    ("imaml.lam", 0.0, "config.imaml.lam: 0.0 must be a number > 0"),
    ("imaml.cg_steps", 0, "config.imaml.cg_steps: 0 must be an integer >= 1"),
    ("inner.frozen", "Dense", "config.inner.frozen: 'Dense': imaml adapts every"),
    ("inner.steps", 0, "config.inner.steps: 0: imaml needs at least 1"),
])
def test_bad_config_names_the_key(key, value, match):
  c = _sinusoid_config()
  section, name = key.split(".")
  c[section][name] = value
  with pytest.raises(ConfigError, match=match):
    config_lib.validate(c)


def test_options_reach_meta_grad_and_test_time_adaptation():
  c = _sinusoid_config(lam=0.5, cg_steps=3)
  setup = build_lib.build(c)
  key = jax.random.key(0)
  episode = jax.tree.map(lambda x: x[0], setup.tasks.sample(key, None, 1))
  theta = setup.init_state().theta
  learner, inner = setup.learner, setup.inner

  @jax.jit
  def meta_grads(t):
    return [ravel_pytree(f(t, episode, key, learner=learner, inner=inner)[0])[0]
            for f in (setup.algorithm.meta_grad,
                      functools.partial(imaml.imaml_meta_grad, lam=0.5, cg_steps=3),
                      imaml.imaml_meta_grad)]

  configured, direct, default = meta_grads(theta)
  np.testing.assert_allclose(configured, direct, rtol=1e-6)
  assert not np.allclose(configured, default, rtol=1e-3)

  # Test time: the proximal loop, written out by hand around θ.
  learner, inner, lam = setup.eval_learner, setup.eval_inner, 0.5

  @jax.jit
  def by_hand(theta):
    p, want = theta, []
    for k in range(4):
      if k:
        g = jax.grad(lambda q: learner.support_loss(q, episode)[0])(p)
        p = jax.tree.map(lambda pi, gi, ti: pi - inner.lr * (gi + lam * (pi - ti)),
                         p, g, theta)
      want.append(learner.query_loss(p, episode)[0])
    return jnp.stack(want)

  off = build_lib.build(_sinusoid_config(lam=0.5, cg_steps=3,
                                         test_proximal=False)).algorithm

  @jax.jit
  def curves(theta):
    kw = dict(learner=learner, inner=inner, eval_steps=(0, 1, 2, 3))
    final = setup.algorithm.adapted_query_loss(
        theta, episode, learner=learner, inner=dataclasses.replace(inner, steps=3))
    return (setup.algorithm.adapt_curve(theta, episode, **kw)["loss"], final,
            base.adapt_curve(theta, episode, **kw)["loss"],
            off.adapt_curve(theta, episode, **kw)["loss"])

  want = by_hand(theta)
  curve, final, plain, without = curves(theta)
  np.testing.assert_allclose(curve, want, rtol=1e-5)
  np.testing.assert_allclose(final, want[-1], rtol=1e-5)
  assert not np.allclose(plain[1:], want[1:], rtol=1e-5)
  np.testing.assert_allclose(without, plain, rtol=1e-6)  # test_proximal=False.


def test_flops_count_cg_iterations_and_the_proximal_term():
  def counts(cg_steps, test_proximal=True):
    setup = build_lib.build(_sinusoid_config(cg_steps=cg_steps,
                                             test_proximal=test_proximal))
    meta = flops.meta_step_flops(setup.learner, setup.algorithm, setup.inner,
                                 setup.abstract_episodes(2))
    adapt = flops.adaptation_flops(setup.eval_learner, setup.eval_inner,
                                   setup.abstract_episodes(None, evaluation=True),
                                   [0, 1, 4], setup.algorithm)
    return meta, adapt

  (meta1, adapt1), (meta5, adapt5) = counts(1), counts(5)
  _, plain = counts(5, test_proximal=False)
  assert meta5 > meta1 > 0  # The CG iterations are counted, not one loop body.
  assert adapt1 == adapt5 and adapt1[0] == 0 and adapt1[2] == pytest.approx(4 * adapt1[1])
  n = sum(x.size for x in jax.tree.leaves(
      build_lib.build(_sinusoid_config()).abstract_state().theta))
  # A proximal step adds (λ/2)‖φ−θ‖²'s gradient: a few FLOPs per parameter.
  assert 0 < adapt1[1] - plain[1] <= 6 * n


def test_meta_step_trains_and_reports_the_cg_residual():
  c = _sinusoid_config()
  c.fast_compile = True
  setup = build_lib.build(c)
  step = setup.meta_step()
  state = setup.init_state()
  key = jax.random.key(0)
  losses = []
  for _ in range(3):
    state, metrics = step(state, None, key, jnp.asarray(True))
    losses.append(float(metrics["query_loss_post"]))
  assert float(metrics["cg_residual"]) > 0  # Computed on logging steps.
  assert np.isfinite(losses).all() and int(state.step) == 3


@pytest.mark.parametrize("arg", ["5way1shot", "20way1shot", "5way1shot,smoke",
                                 "20way1shot,smoke"])
def test_experiment_config_validates(arg):
  from experiments import omniglot_imaml  # pylint: disable=g-import-not-at-top
  c = omniglot_imaml.get_config(arg)
  config_lib.validate(c)
  assert config_lib.base_config().keys() == c.keys()
  assert c.algorithm == "imaml" and c.imaml.lam == 2.0 and c.imaml.cg_steps == 5
  assert c.inner.steps == (25 if arg.startswith("20way") else 16)
