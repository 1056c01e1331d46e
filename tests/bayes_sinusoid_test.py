"""The sinusoid's target noise and its Bayes-optimal predictor (``bayes_sinusoid``).

The predictor is checked against computations that share none of its code: a float64
2-D grid over (a, φ), importance sampling from the prior, adaptive quadrature (scipy) of
the noiseless one-shot posterior over φ, and the closed-form prior; the floor against
simple baselines on the same episodes and against its known limits.
"""

import dataclasses
import functools
import importlib
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate

from metalearn import compiler
from metalearn import config as config_lib
from metalearn.errors import ConfigError
from metalearn.tasks import bayes_sinusoid as bs
from metalearn.tasks import sinusoid
from metalearn.tasks.sinusoid import SinusoidTasks

QUERY_X = np.linspace(-5.0, 5.0, 11)


@functools.partial(compiler.jit, fast_compile=True, static_argnums=(3, 4))
def _predict(support_x_TxK, support_y_TxK, query_x_Q, family, grid=bs.DEFAULT_GRID):
  """Posterior mean and variance ``[T, Q]`` of T episodes at shared queries."""
  return jax.vmap(lambda sx, sy: bs.predictive(sx, sy, query_x_Q, family, grid))(
      support_x_TxK, support_y_TxK)


EDGE_TASKS = [(5.0, 0.0), (5.0, math.pi), (0.1, 0.0), (0.1, 1.5)]


def _episodes(noise, shots, edge_tasks=EDGE_TASKS, num_random=12):
  """Support sets ``[T, K]`` (float32-exact float64) of fixed (a, φ) tasks: by default
  posterior peaks at the ends of the prior's ranges (slowest to converge), then random
  ones. The same arguments give the same arrays, so tests share one compile."""
  rng = np.random.default_rng(100 * shots + int(10 * noise))
  tasks = list(edge_tasks) + list(zip(rng.uniform(0.1, 5.0, num_random),
                                      rng.uniform(0.0, math.pi, num_random)))
  x = rng.uniform(-5, 5, (len(tasks), shots)).astype(np.float32)
  a, phase = (np.array(v)[:, None] for v in zip(*tasks))
  y = (a * np.sin(x - phase) + noise * rng.normal(size=x.shape)).astype(np.float32)
  return x.astype(np.float64), y.astype(np.float64)


# --- Sampling with noise -------------------------------------------------------------


@pytest.mark.parametrize("pool_size", [0, 4])
def test_noise_free_sampling_is_the_original_sampler_bit_for_bit(pool_size):
  family = SinusoidTasks(shots=5, queries=7, pool_size=pool_size)
  key = jax.random.key(3)
  got = family.sample(key, None, 16)
  # The sampler as it was before ``noise`` existed, written out.
  k_amp, k_phase, k_x = jax.random.split(key, 3)
  shape = (16, 1, 1)
  if pool_size:
    k_amp, k_phase = jax.random.split(jax.random.key(12345))
    picked = jax.random.randint(jax.random.fold_in(key, 1), (16,), 0, pool_size)
    shape = (pool_size, 1, 1)
  amp = jax.random.uniform(k_amp, shape, minval=0.1, maxval=5.0)
  phase = jax.random.uniform(k_phase, shape, minval=0.0, maxval=math.pi)
  if pool_size:
    amp, phase = amp[picked], phase[picked]
  x = jax.random.uniform(k_x, (16, 12, 1), minval=-5.0, maxval=5.0)
  y = amp * jnp.sin(x - phase)
  for name, want in (("support_x", x[:, :5]), ("support_y", y[:, :5]),
                     ("query_x", x[:, 5:]), ("query_y", y[:, 5:])):
    np.testing.assert_array_equal(getattr(got, name), want, err_msg=name)


def test_noise_is_gaussian_independent_and_leaves_inputs_alone():
  key, noise, n_tasks = jax.random.key(7), 0.3, 1000
  noisy = SinusoidTasks(shots=10, queries=10, noise=noise).sample(key, None, n_tasks)
  clean = SinusoidTasks(shots=10, queries=10).sample(key, None, n_tasks)
  np.testing.assert_array_equal(noisy.support_x, clean.support_x)
  np.testing.assert_array_equal(noisy.query_x, clean.query_x)
  for part in ("support", "query"):
    eps = np.asarray(getattr(noisy, part + "_y") - getattr(clean, part + "_y"), np.float64)
    x = np.asarray(getattr(clean, part + "_x"), np.float64).ravel()
    f = np.asarray(getattr(clean, part + "_y"), np.float64).ravel()
    eps = eps.ravel()
    n = eps.size  # 10,000 residuals.
    assert abs(eps.mean()) < 4 * noise / math.sqrt(n), part
    assert abs(eps.var() / noise ** 2 - 1) < 4 * math.sqrt(2 / n), part
    kurtosis = np.mean((eps - eps.mean()) ** 4) / eps.var() ** 2
    assert abs(kurtosis - 3) < 4 * math.sqrt(24 / n), part
    # Drawn from a key of its own: not a function of the inputs or the task. (With
    # fold_in(key, 2), which is the inputs' key, the correlation with x is ~0.98.)
    for other in (x, f, np.sin(x)):
      assert abs(np.corrcoef(eps, other)[0, 1]) < 4 / math.sqrt(n), part


def test_config_noise_reaches_both_families_and_is_checked():
  c = importlib.import_module("experiments.sinusoid").get_config("noise=0.25,smoke")
  assert c.sinusoid_noise == 0.25
  config_lib.validate(c)
  assert sinusoid.make(c, evaluation=False).noise == 0.25
  assert sinusoid.make(c, evaluation=True).noise == 0.25
  assert sinusoid.make(config_lib.base_config(), evaluation=False) == SinusoidTasks(
      shots=config_lib.base_config().shots, queries=config_lib.base_config().queries)
  for bad in (-0.1, float("nan")):
    c.sinusoid_noise = bad
    with pytest.raises(ConfigError, match="config.sinusoid_noise"):
      config_lib.validate(c)


# --- The predictor against independent computations --------------------------------


def _brute_force_grid(x_K, y_K, sigma, n=2000):
  """Posterior mean and variance of a·sin(x − φ) at QUERY_X, float64 midpoint grid."""
  a = 0.1 + 4.9 * (np.arange(n) + 0.5) / n
  phase = math.pi * (np.arange(n) + 0.5) / n
  log_lik = np.zeros((n, n))
  for x, y in zip(x_K, y_K):
    log_lik -= (y - a[:, None] * np.sin(x - phase)[None, :]) ** 2 / (2 * sigma ** 2)
  w = np.exp(log_lik - log_lik.max())
  w /= w.sum()
  s_QxP = np.sin(QUERY_X[:, None] - phase[None, :])
  mean = s_QxP @ (a @ w)
  return mean, s_QxP ** 2 @ (a ** 2 @ w) - mean ** 2


@pytest.mark.parametrize("noise,shots", [(0.3, 3), (0.1, 10)])
def test_matches_a_brute_force_two_dimensional_grid(noise, shots):
  x, y = _episodes(noise, shots)
  mean, var = _predict(x, y, QUERY_X, SinusoidTasks(noise=noise))
  for i in (0, 3, 4, 5, 6):  # A peak at a = 5, φ = 0; at a = 0.1; three random tasks.
    want_mean, want_var = _brute_force_grid(x[i], y[i], noise)
    np.testing.assert_allclose(mean[i], want_mean, atol=2e-5, err_msg=str(i))
    np.testing.assert_allclose(var[i], want_var, atol=2e-5, err_msg=str(i))


def test_matches_importance_sampling_from_the_prior():
  noise, n = 0.3, 1_000_000
  rng = np.random.default_rng(0)
  x, y = _episodes(noise, 3)
  mean = _predict(x, y, QUERY_X, SinusoidTasks(noise=noise))[0]
  a, phase = rng.uniform(0.1, 5.0, n), rng.uniform(0.0, math.pi, n)
  for i in (4, 5):
    log_w = -np.sum((y[i] - a[:, None] * np.sin(x[i] - phase[:, None])) ** 2, 1) / (
        2 * noise ** 2)
    w = np.exp(log_w - log_w.max())
    w /= w.sum()
    f_NxQ = a[:, None] * np.sin(QUERY_X - phase[:, None])
    want = w @ f_NxQ
    se = np.sqrt(w ** 2 @ (f_NxQ - want) ** 2)  # Self-normalised IS (delta method).
    assert 1 / np.sum(w ** 2) > 10_000  # Effective sample size.
    assert np.all(np.abs(np.asarray(mean[i]) - want) < 4 * se + 1e-4)


def _noiseless_one_shot_by_quadrature(x1, y1):
  """Mean and variance at QUERY_X of the σ = 0, K = 1 posterior, by quadrature in φ.

  Given y1 = a·sin(x1 − φ), a = y1/sin(x1 − φ), and the posterior density of φ is
  ``∝ 1/|sin(x1 − φ)|`` where that a lies in [0.1, 5] (the Jacobian of a ↦ y1).
  """
  cuts = {0.0, math.pi}
  for c in (y1 / 5.0, y1 / 0.1):
    if abs(c) <= 1:
      for theta in (math.asin(c), math.pi - math.asin(c)):
        for turn in range(-3, 4):
          phase = x1 - theta - 2 * math.pi * turn
          if 0 < phase < math.pi:
            cuts.add(phase)
  cuts = sorted(cuts)
  amp = lambda p: y1 / math.sin(x1 - p)
  moments = np.zeros((3, QUERY_X.size))
  for lo, hi in zip(cuts[:-1], cuts[1:]):
    if 0.1 <= amp(0.5 * (lo + hi)) <= 5.0:
      for k in range(3):
        moments[k] += integrate.quad_vec(
            lambda p, k=k: (amp(p) * np.sin(QUERY_X - p)) ** k / abs(math.sin(x1 - p)),
            lo, hi, epsabs=0, epsrel=1e-11)[0]
  mean = moments[1] / moments[0]
  return mean, moments[2] / moments[0] - mean ** 2


def test_noiseless_one_shot_matches_quadrature_over_the_phase():
  # Not at the prior's ends: noiseless data there can allow a single point (a null set).
  x, y = _episodes(0.0, 1, [(4.99, 1.0), (0.11, 2.0), (3.0, 0.02), (1.0, 1.0)],
                   num_random=8)
  y[3] = 0.02  # Small |y1|: the posterior's structure is at scale |y1|/5 in φ.
  mean, var = _predict(x, y, QUERY_X, SinusoidTasks(noise=0.0))
  for i in range(len(x)):
    want_mean, want_var = _noiseless_one_shot_by_quadrature(x[i, 0], y[i, 0])
    np.testing.assert_allclose(mean[i], want_mean, atol=2e-5)
    np.testing.assert_allclose(var[i], want_var, atol=5e-5)


def test_doubling_the_phase_grid_changes_little():
  # The sharpest posteriors of the curve (σ = 0.1, K = 10), peaks at the prior's ends.
  x, y = _episodes(0.1, 10)
  family = SinusoidTasks(noise=0.1)
  mean, var = _predict(x, y, QUERY_X, family, bs.DEFAULT_GRID)
  fine_mean, fine_var = _predict(x, y, QUERY_X, family, 2 * bs.DEFAULT_GRID)
  np.testing.assert_allclose(mean, fine_mean, atol=2e-4)
  np.testing.assert_allclose(var, fine_var, atol=2e-4)


@pytest.mark.parametrize("family", [SinusoidTasks(noise=0.0),
                                    SinusoidTasks(amplitude=(1.0, 2.0), phase=(0.3, 2.0),
                                                  noise=0.3)])
def test_zero_shots_give_the_prior_in_closed_form(family):
  (a0, a1), (p0, p1) = family.amplitude, family.phase
  x = QUERY_X
  mean_a, mean_a2 = (a0 + a1) / 2, (a0 ** 2 + a0 * a1 + a1 ** 2) / 3
  mean_sin = (np.cos(x - p1) - np.cos(x - p0)) / (p1 - p0)
  mean_sin2 = 0.5 - (np.sin(2 * (x - p0)) - np.sin(2 * (x - p1))) / (4 * (p1 - p0))
  mean, var = _predict(np.zeros((1, 0)), np.zeros((1, 0)), x, family)
  np.testing.assert_allclose(mean[0], mean_a * mean_sin, atol=1e-5)
  np.testing.assert_allclose(var[0], mean_a2 * mean_sin2 - (mean_a * mean_sin) ** 2,
                             atol=1e-5)


@pytest.mark.parametrize("noise,shots", [(0.3, 3), (0.0, 1), (0.0, 3)])
def test_vmapped_and_jitted_equals_one_episode_at_a_time(noise, shots):
  x, y = _episodes(noise, shots)
  family = SinusoidTasks(noise=noise)
  batched = _predict(x, y, QUERY_X, family)[0]
  one_episode = jax.jit(lambda sx, sy: bs.posterior_mean_predict(sx, sy, QUERY_X, family))
  for i in (0, 4, 5):
    one = one_episode(x[i, :, None], y[i, :, None])  # Episode layout: [K, 1].
    assert one.shape == QUERY_X.shape
    np.testing.assert_allclose(batched[i], one, rtol=1e-5, atol=1e-5)


# --- The floor -----------------------------------------------------------------------

CURVE_SHOTS = (1, 3, 10)
CURVE_EPISODES = 400


@pytest.fixture(scope="module")
def noisy_curve():
  family = SinusoidTasks(noise=0.3)
  key = jax.random.key(5)
  # Half the default grid runs twice as fast; its error (< 1e-3) is far below these SEs.
  return family, key, {k: bs.bayes_mse(family, k, key, CURVE_EPISODES,
                                       batch=CURVE_EPISODES, grid=1024)
                       for k in CURVE_SHOTS}


def test_direct_and_rao_blackwellised_floors_agree(noisy_curve):
  for r in noisy_curve[2].values():
    assert abs(r.mse - r.mse_rb) < 4 * math.hypot(r.mse_se, r.mse_rb_se), r
    assert abs(r.excess - r.excess_rb) < 4 * math.hypot(r.excess_se, r.excess_rb_se), r
    assert r.mse_rb == pytest.approx(0.3 ** 2 + r.excess_rb)
    assert r.mse_rb_se < r.mse_se  # The point of Rao–Blackwellising.


def test_floor_falls_with_shots_and_beats_baselines_on_the_same_episodes(noisy_curve):
  family, key, results = noisy_curve
  floors = [results[k].mse_rb for k in CURVE_SHOTS]
  ses = [results[k].mse_rb_se for k in CURVE_SHOTS]
  for i in range(len(floors) - 1):
    assert floors[i] - floors[i + 1] > 3 * math.hypot(ses[i], ses[i + 1]), floors
  for k in CURVE_SHOTS[1:]:
    # ``bayes_mse`` draws its single batch from fold_in(key, 0).
    ep = dataclasses.replace(family, shots=k).sample(jax.random.fold_in(key, 0), None,
                                                     CURVE_EPISODES)
    sx, sy, qx, qy = (np.asarray(v, np.float64)[..., 0]
                      for v in (ep.support_x, ep.support_y, ep.query_x, ep.query_y))
    prior_mean = 2.55 * (np.cos(qx - math.pi) - np.cos(qx)) / math.pi
    # Least squares in the basis (sin x, cos x), float64 normal equations.
    basis_s, basis_q = (np.stack([np.sin(v), np.cos(v)], -1) for v in (sx, qx))
    coef = np.linalg.solve(np.einsum("tkb,tkc->tbc", basis_s, basis_s),
                           np.einsum("tkb,tk->tb", basis_s, sy)[..., None])
    fit = np.einsum("tqb,tb->tq", basis_q, coef[..., 0])
    baselines = {"prior mean": np.mean((prior_mean - qy) ** 2),
                 "least squares": np.mean((fit - qy) ** 2)}
    for name, mse in baselines.items():
      assert results[k].mse < mse, (k, name, results[k].mse, mse)


def test_floor_limits():
  # σ = 0.1, many shots: the floor tends to σ², the excess like the rate of a fit of
  # 2 parameters, 2σ²/K (2.05σ²/K measured at 2,000 episodes).
  r = bs.bayes_mse(SinusoidTasks(noise=0.1), 50, jax.random.key(6), 100, batch=100)
  assert 1.8 < r.excess_rb * 50 / 0.1 ** 2 < 2.3, r
  assert abs(r.mse - 0.1 ** 2) < 4 * r.mse_se + r.excess_rb, r
  # σ = 0, K = 2 (the worst conditioned): identified, floor 0 up to float32 rounding of
  # the fit, heavy-tailed where x_1 ≈ x_2 mod π (measured: 1e-10 over 20,000 episodes
  # of key 6; 4e-8 over 10,000 of key 0, from one episode).
  r = bs.bayes_mse(SinusoidTasks(noise=0.0), 2, jax.random.key(6), 200, batch=200)
  assert r.mse < 1e-6 and r.mse_rb == 0.0, r
