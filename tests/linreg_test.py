"""Bayesian linear regression tasks: the sampler, the Bayes and gradient-descent curves
against brute force and against the project's own inner loop, and the registry wiring."""

import dataclasses
import importlib
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metalearn import builder as build_lib
from metalearn import config as config_lib
from metalearn import inner as inner_lib
from metalearn.errors import ConfigError
from metalearn.tasks import linreg

D, A, SIGMA = 8, 1.0, 0.5  # The config's defaults: dim, weight_std, noise.


def _gd(x_NxKxD, y_NxK, k, lr, bias=False, w0_NxD=None):
  """k literal steps of w <- w - lr * grad of mean((x·w + b - y)²), batched over tasks."""
  n, shots, dim = x_NxKxD.shape
  w = np.zeros((n, dim)) if w0_NxD is None else np.array(w0_NxD, np.float64)
  b = np.zeros(n)
  for _ in range(k):
    r_NxK = np.einsum("nkd,nd->nk", x_NxKxD, w) + b[:, None] - y_NxK
    w = w - lr * 2.0 / shots * np.einsum("nkd,nk->nd", x_NxKxD, r_NxK)
    if bias:
      b = b - lr * 2.0 / shots * r_NxK.sum(1)
  return w, b


def _sample_tasks(rng, n, shots, queries, dim=D, a=A, sigma=SIGMA):
  w = rng.normal(0, a, (n, dim))
  x = rng.normal(size=(n, shots + queries, dim))
  y = np.einsum("nkd,nd->nk", x, w) + rng.normal(0, sigma, (n, shots + queries))
  return w, x[:, :shots], y[:, :shots], x[:, shots:], y[:, shots:]


def _mean_se(v):
  return v.mean(), v.std(ddof=1) / math.sqrt(v.size)


def test_sampled_tasks_have_the_prior_statistics():
  tasks, shots, dim, a, sigma = 4000, 64, 3, 1.5, 0.5
  ep = jax.device_get(linreg.LinregTasks(shots, 4, dim, a, sigma)
                      .sample(jax.random.key(0), None, tasks))
  assert ep.support_x.shape == (tasks, shots, dim) and ep.support_x.dtype == np.float32
  assert ep.support_y.shape == (tasks, shots, 1) and ep.query_y.shape == (tasks, 4, 1)
  assert ep.class_ids is None
  x = ep.support_x.astype(np.float64)
  assert abs(x.mean()) < 0.01
  np.testing.assert_allclose(np.einsum("nki,nkj->ij", x, x) / (tasks * shots), np.eye(dim),
                             atol=0.01)
  # Least squares on each support set: weights spread as a² plus the fit's error,
  # residuals as σ²; the query shares the task's weights.
  y = ep.support_y[..., 0].astype(np.float64)
  w_hat = np.linalg.solve(np.einsum("nki,nkj->nij", x, x),
                          np.einsum("nki,nk->ni", x, y)[..., None])[..., 0]
  np.testing.assert_allclose(w_hat.var(0), a ** 2 + sigma ** 2 / (shots - dim - 1),
                             rtol=0.06)
  resid = y - np.einsum("nkd,nd->nk", x, w_hat)
  np.testing.assert_allclose(np.sum(resid ** 2) / (tasks * (shots - dim)), sigma ** 2,
                             rtol=0.02)
  query_err = ep.query_y[..., 0] - np.einsum("nkd,nd->nk", ep.query_x, w_hat)
  np.testing.assert_allclose(np.mean(query_err ** 2),
                             sigma ** 2 * (1 + dim / (shots - dim - 1)), rtol=0.05)


@pytest.mark.parametrize("shots", [4, 16])
def test_bayes_mse_matches_brute_force_ridge(shots):
  n, queries = 20000, 20
  w, xs, ys, xq, yq = _sample_tasks(np.random.default_rng(shots), n, shots, queries)

  def ridge_mse(penalty):
    gram = np.einsum("nki,nkj->nij", xs, xs) + penalty * np.eye(D)
    w_hat = np.linalg.solve(gram, np.einsum("nki,nk->ni", xs, ys)[..., None])[..., 0]
    return _mean_se(np.mean((np.einsum("nqd,nd->nq", xq, w_hat) - yq) ** 2, 1))

  brute, brute_se = ridge_mse(SIGMA ** 2 / A ** 2)  # The posterior mean.
  floor = linreg.bayes_mse(shots, D, A, SIGMA, jax.random.key(shots), 20000)
  assert abs(brute - floor.mean) < 4 * math.hypot(brute_se, floor.se), (brute, floor)
  worse, worse_se = ridge_mse(10 * SIGMA ** 2 / A ** 2)  # The test can tell ridges apart.
  assert worse - floor.mean > 4 * math.hypot(worse_se, floor.se)


@pytest.mark.parametrize("shots,bias,init_scale", [(3, False, 0.0), (12, False, 0.7),
                                                   (5, True, 0.0), (12, True, 0.4)])
def test_gd_mse_given_x_is_the_expectation_of_literal_gradient_steps(shots, bias,
                                                                     init_scale):
  # GD is linear in (true weights, noise, initial weights), so its expected squared
  # error is a² Σ_j |e(w = e_j)|² + σ² Σ_i |e(ε = e_i)|² + s0² Σ_j |e(w0 = e_j)|².
  x_KxD = np.random.default_rng(shots).normal(size=(shots, D))
  lr = 0.04
  for k in (0, 1, 3, 17):
    x_rep = np.broadcast_to(x_KxD, (D, shots, D))
    w_true, b_true = _gd(x_rep, x_KxD.T, k, lr, bias)  # Row j: w = e_j, y = X e_j.
    from_w = np.sum((w_true - np.eye(D)) ** 2) + np.sum(b_true ** 2)
    x_rep = np.broadcast_to(x_KxD, (shots, shots, D))
    w_eps, b_eps = _gd(x_rep, np.eye(shots), k, lr, bias)  # Rows: ε = e_i.
    from_noise = np.sum(w_eps ** 2) + np.sum(b_eps ** 2)
    x_rep = np.broadcast_to(x_KxD, (D, shots, D))
    w_init, b_init = _gd(x_rep, np.zeros((D, shots)), k, lr, bias, w0_NxD=np.eye(D))
    from_init = np.sum(w_init ** 2) + np.sum(b_init ** 2)
    want = (SIGMA ** 2 + A ** 2 * from_w + SIGMA ** 2 * from_noise
            + init_scale ** 2 * from_init)
    got = linreg.gd_mse_given_x(x_KxD, k, lr, A, SIGMA, init_scale, bias)
    np.testing.assert_allclose(got, want, rtol=1e-9, err_msg=f"k={k}")
  curve = linreg.gd_mse_given_x(x_KxD, [0, 1, 3, 17], lr, A, SIGMA, init_scale, bias)
  assert curve.shape == (4,) and curve[-1] == got


def test_gd_mse_matches_gradient_steps_on_sampled_tasks():
  n, shots, queries, lr, ks = 20000, 6, 10, 0.05, (1, 5, 20)
  w, xs, ys, xq, yq = _sample_tasks(np.random.default_rng(7), n, shots, queries)
  curve = linreg.gd_mse(ks, lr, shots, D, A, SIGMA, jax.random.key(7), n)
  for i, k in enumerate(ks):
    w_k, _ = _gd(xs, ys, k, lr)
    got, got_se = _mean_se(np.mean((np.einsum("nqd,nd->nq", xq, w_k) - yq) ** 2, 1))
    assert abs(got - curve.mean[i]) < 4 * math.hypot(got_se, curve.se[i]), (k, got, curve)


def test_gd_limits_and_the_bayes_bound():
  key, n, lr = jax.random.key(11), 4000, 0.05
  ks = [0, 1, 2, 5, 10, 20, 50, 100, 200, 500]
  for shots in (4, 8, 16):
    x = linreg.sample_inputs(key, n, shots, D)
    curve = linreg.gd_mse_given_x(x, ks, lr, A, SIGMA)
    bayes = linreg.bayes_mse_given_x(x, A, SIGMA)
    # Given X the posterior mean is optimal: no stopping time of GD beats it, and
    # GD from w = 0 starts at the prior predictive error σ² + d·a².
    assert np.all(curve.min(-1) >= bayes * (1 - 1e-12))
    np.testing.assert_allclose(curve[:, 0], SIGMA ** 2 + D * A ** 2)
    assert np.all(linreg.gd_mse_given_x(x, 5, lr, A, SIGMA, init_scale=0.5)
                  > curve[:, 3])  # A random start is worse than the prior mean.
    estimate = linreg.gd_mse(ks, lr, shots, D, A, SIGMA, key, n)
    np.testing.assert_allclose(estimate.mean, curve.mean(0))
    assert linreg.bayes_mse(shots, D, A, SIGMA, key, n).mean == pytest.approx(bayes.mean())
  # K > d: GD converges to least squares, σ²(1 + tr (XᵀX)⁻¹), whose mean over X is
  # σ²(1 + d/(K − d − 1)) (the inverse Wishart's mean).
  x = linreg.sample_inputs(key, n, 16, D)
  least_squares = SIGMA ** 2 * (1 + np.trace(np.linalg.inv(np.swapaxes(x, 1, 2) @ x),
                                             axis1=1, axis2=2))
  np.testing.assert_allclose(linreg.gd_mse_given_x(x, 100000, lr, A, SIGMA),
                             least_squares, rtol=1e-6)
  mean, se = _mean_se(least_squares)
  assert abs(mean - SIGMA ** 2 * (1 + D / (16 - D - 1))) < 4 * se


def _config(shots=6):
  c = config_lib.base_config()
  c.task, c.model.name, c.model.hidden = "linreg", "mlp", ()
  c.shots, c.queries, c.eval.queries = shots, 4, 50
  c.meta_batch, c.inner.steps, c.inner.lr, c.fast_compile = 4, 2, 0.05, True
  return c


@pytest.fixture(scope="module")
def setup():
  return build_lib.build(_config())


def test_a_config_builds_and_takes_meta_steps(setup):
  assert isinstance(setup.tasks, linreg.LinregTasks) and setup.tasks.dim == D
  assert setup.eval_tasks.queries == 50
  state = setup.init_state()
  assert jax.tree.map(jnp.shape, state.theta) == {"Dense_0": {"kernel": (D, 1),
                                                              "bias": (1,)}}
  step = setup.meta_step()
  for i in range(2):
    state, metrics = step(state, setup.tasks.load("train"), jax.random.key(i),
                          jnp.bool_(True))
  assert int(state.step) == 2
  assert all(np.isfinite(float(v)) for v in metrics.values())
  assert float(metrics["query_loss_post"]) < float(metrics["query_loss_pre"])


def test_gd_curve_is_the_projects_inner_loop_from_zero(setup):
  # The linear `mlp` (hidden=()) has a bias, adapted too: gd_mse(..., bias=True).
  zero = jax.tree.map(jnp.zeros_like, setup.init_state().theta)
  lr, shots = setup.eval_inner.lr, setup.tasks.shots
  # Step by step on a few episodes: the inner loop is SGD on mean((ŷ − y)²).
  ep = jax.device_get(setup.eval_tasks.sample(jax.random.key(3), None, 5))
  cfg = dataclasses.replace(setup.eval_inner, steps=7)
  adapt = jax.jit(jax.vmap(lambda e: inner_lib.adapt(
      zero, lambda p: setup.eval_learner.support_loss(p, e), cfg=cfg)[0]))
  adapted = adapt(ep)
  w, b = _gd(ep.support_x.astype(np.float64), ep.support_y[..., 0].astype(np.float64),
             7, lr, bias=True)
  np.testing.assert_allclose(adapted["Dense_0"]["kernel"][..., 0], w, rtol=1e-4,
                             atol=1e-5)
  np.testing.assert_allclose(adapted["Dense_0"]["bias"][:, 0], b, rtol=1e-4, atol=1e-5)
  # The evaluation path's query loss over test-time steps against the formula.
  ks = (0, 1, 5, 10)
  result = setup.evaluate(zero, None, eval_steps=ks, episodes=4000, batch=1000,
                          key=jax.random.key(4))
  curve = linreg.gd_mse(ks, lr, shots, D, A, SIGMA, jax.random.key(5), 20000, bias=True)
  loss = result.values["loss"]
  se = loss.std(0, ddof=1) / math.sqrt(loss.shape[0])
  for i, k in enumerate(ks):
    assert abs(loss[:, i].mean() - curve.mean[i]) < 4 * math.hypot(se[i], curve.se[i]), (
        k, loss.mean(0), curve)


@pytest.mark.parametrize("key,value,match", [
    ("dim", 0, "config.linreg.dim=0: must be an integer >= 1"),
    ("noise", -0.1, "config.linreg.noise=-0.1: must be >= 0"),
    ("weight_std", 0.0, "config.linreg.weight_std=0.0: must be > 0"),
])
def test_validate_rejects_bad_family_values(key, value, match):
  c = _config()
  c.linreg[key] = value
  with pytest.raises(ConfigError, match=match):
    config_lib.validate(c)


def test_validate_rejects_a_classifier():
  c = _config()
  c.model.name = "mlp_classifier"
  with pytest.raises(ConfigError, match="config.model.name: 'mlp_classifier' trains with"):
    config_lib.validate(c)


@pytest.mark.parametrize("arg", ["", "smoke", "shots=2", "fomaml,smoke"])
def test_experiment_config_validates(arg):
  c = importlib.import_module("experiments.linreg").get_config(arg)
  assert config_lib.validate(c).task.name == "linreg"
  assert config_lib.base_config().keys() == c.keys()
