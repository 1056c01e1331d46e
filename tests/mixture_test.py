"""Gaussian-mixture tasks: the sampler, the Bayes classifier against independent
computations, and the registry wiring from config to meta-steps."""

import importlib
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate
from scipy import special
from scipy import stats

from metalearn import builder as build_lib
from metalearn import config as config_lib
from metalearn.errors import ConfigError
from metalearn.tasks import mixture
from metalearn.tasks import sampling
from metalearn.tasks.episode import Episode


def _log_predictive_1d(x, support, mean_std, noise):
  """log p(x | support) of one coordinate, integrating the class mean on a grid."""
  mu = np.linspace(-12 * mean_std, 12 * mean_std, 20001)
  log_prior = stats.norm.logpdf(mu, 0, mean_std)
  log_lik = stats.norm.logpdf(np.asarray(support)[:, None], mu, noise).sum(0)
  log_joint = log_prior + log_lik
  with_query = log_joint + stats.norm.logpdf(x, mu, noise)
  # The grid spacing cancels in the ratio of the two integrals.
  return special.logsumexp(with_query) - special.logsumexp(log_joint)


@pytest.mark.parametrize("dim", [1, 3])
def test_bayes_logits_match_numerical_integration_over_the_mean(dim):
  # Unequal counts, one class without support: its predictive is the prior's.
  rng = np.random.default_rng(dim)
  mean_std, noise, ways = 1.5, 0.7, 4
  support_y = np.array([0, 0, 0, 1, 2, 2, 0], np.int32)
  support_x = rng.normal(size=(support_y.size, dim)) * 2
  query_x = rng.normal(size=(5, dim)) * 2
  episode = Episode(support_x=jnp.asarray(support_x, jnp.float32),
                    support_y=jnp.asarray(support_y),
                    query_x=jnp.asarray(query_x, jnp.float32),
                    query_y=jnp.zeros(5, jnp.int32))
  got = np.asarray(mixture.bayes_logits(episode, mean_std, noise, ways=ways))
  want = np.zeros((5, ways))
  for q in range(5):
    for c in range(ways):
      # Isotropic prior and noise: the coordinates are independent given the class.
      want[q, c] = sum(_log_predictive_1d(query_x[q, j], support_x[support_y == c, j],
                                          mean_std, noise) for j in range(dim))
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)
  empty = stats.multivariate_normal.logpdf(query_x, np.zeros(dim),
                                           (mean_std ** 2 + noise ** 2) * np.eye(dim))
  np.testing.assert_allclose(got[:, 3], empty, rtol=1e-5)


def test_bayes_logits_vmap_equals_a_loop_and_class_ids_give_ways():
  episodes = mixture.sample_episodes(jax.random.key(0), 3, ways=4, shots=2, queries=3,
                                     dim=5, mean_std=1.0, noise=0.5)
  batched = jax.jit(jax.vmap(lambda e: mixture.bayes_logits(e, 1.0, 0.5)))(episodes)
  assert batched.shape == (3, 12, 4)
  one_logits = jax.jit(lambda e: mixture.bayes_logits(e, 1.0, 0.5, ways=4))
  for t in range(3):
    one = jax.tree.map(lambda x: x[t], episodes)
    np.testing.assert_allclose(batched[t], one_logits(one), rtol=1e-6)


def test_episode_layout_matches_the_image_sampler_and_prior_statistics():
  ways, shots, queries, dim, tasks = 5, 3, 4, 4, 4000
  mean_std, noise = 2.0, 0.5
  ep = jax.device_get(mixture.MixtureTasks(ways, shots, queries, dim, mean_std, noise)
                      .sample(jax.random.key(1), None, tasks))
  images = jnp.zeros((ways, shots + queries, 1, 1, 1), jnp.uint8)
  ref = jax.device_get(sampling.sample_episodes(jax.random.key(0), images, 2, ways=ways,
                                                shots=shots, queries=queries))
  for name in ("support_y", "query_y", "class_ids"):
    a, b = getattr(ep, name)[:2], getattr(ref, name)
    assert a.shape == b.shape and a.dtype == b.dtype == np.int32, name
  np.testing.assert_array_equal(ep.support_y[:2], ref.support_y)
  np.testing.assert_array_equal(ep.query_y[:2], ref.query_y)
  assert (ep.support_y == ep.support_y[0]).all() and (ep.query_y == ep.query_y[0]).all()
  np.testing.assert_array_equal(ep.class_ids[0], np.arange(ways))
  assert ep.support_x.shape == (tasks, ways * shots, dim)
  assert ep.query_x.shape == (tasks, ways * queries, dim)
  assert ep.support_x.dtype == np.float32
  # Per class: examples [T, N, K+Q, d], support then query of the same class mean.
  x = np.concatenate([ep.support_x.reshape(tasks, ways, shots, dim),
                      ep.query_x.reshape(tasks, ways, queries, dim)], 2)
  within = x.var(2, ddof=1).mean()
  np.testing.assert_allclose(within, noise ** 2, rtol=0.03)
  class_mean = x.mean(2)  # Var = mean_std² + noise²/(K+Q).
  np.testing.assert_allclose(class_mean.var(), mean_std ** 2 + noise ** 2 / 7, rtol=0.03)
  assert abs(x.mean()) < 0.03
  # Support and query of one class share its mean (covariance mean_std²); classes and
  # tasks are independent.
  s, q = x[:, :, 0], x[:, :, -1]
  np.testing.assert_allclose(np.mean(s * q), mean_std ** 2, rtol=0.05)
  assert abs(np.mean(s[:, 0] * q[:, 1])) < 0.1


def test_bayes_accuracy_tends_to_the_known_means_accuracy_for_many_shots():
  # Known means: Phi(|mu1 - mu2| / (2 noise)), mu1 - mu2 ~ N(0, 2 mean_std²) in d = 1.
  mean_std, noise = 1.0, 1.0
  c = math.sqrt(2) * mean_std / (2 * noise)
  known, _ = integrate.quad(lambda z: stats.norm.cdf(c * abs(z)) * stats.norm.pdf(z),
                            -np.inf, np.inf)
  assert abs(known - (0.5 + math.atan(c) / math.pi)) < 1e-8  # The closed form.
  floor = mixture.bayes_accuracy(2, 400, 1, mean_std, noise, jax.random.key(2), 8000,
                                 queries=20, batch=4000)
  assert abs(floor.accuracy - known) < 4 * floor.accuracy_se + 2e-3, (floor, known)
  # One shot is far from the limit: the test can tell.
  one = mixture.bayes_accuracy(2, 1, 1, mean_std, noise, jax.random.key(2), 8000,
                               queries=20, batch=4000)
  assert known - one.accuracy > 0.03


def test_bayes_accuracy_at_one_shot_matches_its_exact_accuracy_per_task():
  # N = 2, d = 1, K = 1: the rule is the nearer shrunk support point a·x_c; given
  # the means and the support it is right with a normal probability, averaged here.
  mean_std, noise, shots, n = 1.0, 1.0, 1, 400_000
  rng = np.random.default_rng(3)
  mu = rng.normal(0, mean_std, (n, 2))
  xbar = mu + rng.normal(0, noise / math.sqrt(shots), (n, 2))
  a = shots * mean_std ** 2 / (noise ** 2 + shots * mean_std ** 2)
  m = a * xbar
  boundary = m.mean(1)
  below = stats.norm.cdf((boundary[:, None] - mu) / noise)  # P(x < boundary).
  first_lower = m[:, 0] < m[:, 1]
  acc = 0.5 * (np.where(first_lower, below[:, 0], 1 - below[:, 0]) +
               np.where(first_lower, 1 - below[:, 1], below[:, 1]))
  exact, exact_se = acc.mean(), acc.std(ddof=1) / math.sqrt(n)
  floor = mixture.bayes_accuracy(2, shots, 1, mean_std, noise, jax.random.key(4), 24000,
                                 queries=20, batch=4000)
  tol = 4 * math.hypot(floor.accuracy_se, exact_se)
  assert abs(floor.accuracy - exact) < tol, (floor, exact, exact_se)


def test_bayes_classifier_beats_nearest_centroid_and_wrong_shrinkage():
  ways, shots, dim, mean_std, noise = 5, 1, 16, 1.0, 1.0
  episodes = mixture.sample_episodes(jax.random.key(5), 1000, ways=ways, shots=shots,
                                     queries=15, dim=dim, mean_std=mean_std, noise=noise)

  def centroid(e):
    means = jax.nn.one_hot(e.support_y, ways).T @ e.support_x / shots
    return -jnp.sum(jnp.square(e.query_x[:, None] - means[None]), -1)

  rules = {
      "bayes": lambda e: mixture.bayes_logits(e, mean_std, noise),
      "nearest centroid": centroid,
      "no shrinkage": lambda e: mixture.bayes_logits(e, 100.0, noise),
      "too much shrinkage": lambda e: mixture.bayes_logits(e, 0.3, noise),
      "wrong noise": lambda e: mixture.bayes_logits(e, mean_std, 2.0),
  }

  @jax.jit
  def per_episode(episodes):
    out = {}
    for name, rule in rules.items():
      logits = jax.vmap(rule)(episodes)
      acc = jnp.mean(jnp.argmax(logits, -1) == episodes.query_y, -1)
      log_p = jax.nn.log_softmax(logits, -1)
      xent = -jnp.take_along_axis(log_p, episodes.query_y[..., None], -1).mean((-2, -1))
      out[name] = (acc, xent)
    return out

  scores = jax.tree.map(lambda v: np.asarray(v, np.float64), per_episode(episodes))
  bayes_acc, bayes_xent = scores.pop("bayes")
  for name, (acc, xent) in scores.items():
    for what, gain in (("accuracy", bayes_acc - acc), ("xent", xent - bayes_xent)):
      if name == "nearest centroid" and what == "xent":
        continue  # Its scores are not probabilities.
      se = gain.std(ddof=1) / math.sqrt(gain.size)
      # Each rival shrinks the support means by another factor than the posterior's
      # (nearest centroid: none), so its decisions differ: strictly worse.
      assert gain.mean() > 4 * se, (name, what, gain.mean(), se)


def _config():
  c = config_lib.base_config()
  c.task, c.model.name, c.model.hidden = "mixture", "mlp_classifier", (16,)
  c.ways, c.shots, c.queries, c.mixture.dim = 3, 2, 4, 4
  c.meta_batch, c.inner.steps, c.inner.lr, c.fast_compile = 4, 1, 0.1, True
  return c


def test_a_config_builds_and_takes_meta_steps():
  setup = build_lib.build(_config())
  assert isinstance(setup.tasks, mixture.MixtureTasks) and setup.tasks.dim == 4
  state = setup.init_state()
  assert jax.tree.map(jnp.shape, state.theta) == {
      "Dense_0": {"kernel": (4, 16), "bias": (16,)},
      "Dense_1": {"kernel": (16, 3), "bias": (3,)}}
  step = setup.meta_step()
  for i in range(2):
    state, metrics = step(state, setup.tasks.load("train"), jax.random.key(i),
                          jnp.bool_(True))
  assert int(state.step) == 2
  assert all(np.isfinite(float(v)) for v in metrics.values())
  assert 0 <= float(metrics["query_accuracy_post"]) <= 1


@pytest.mark.parametrize("key,value,match", [
    ("dim", 0, "config.mixture.dim=0: must be an integer >= 1"),
    ("noise", -0.1, "config.mixture.noise=-0.1: must be >= 0"),
    ("mean_std", 0.0, "config.mixture.mean_std=0.0: must be > 0"),
])
def test_validate_rejects_bad_family_values(key, value, match):
  c = _config()
  c.mixture[key] = value
  with pytest.raises(ConfigError, match=match):
    config_lib.validate(c)


def test_validate_rejects_a_regression_model_and_rotation():
  c = _config()
  c.model.name = "mlp"
  with pytest.raises(ConfigError, match="config.model.name: 'mlp' trains with the mse"):
    config_lib.validate(c)
  c = _config()
  c.eval.rotate = True
  with pytest.raises(ConfigError, match="config.eval.rotate"):
    config_lib.validate(c)


@pytest.mark.parametrize("arg", ["", "smoke", "shots=5", "shots=5,smoke"])
def test_experiment_config_validates(arg):
  c = importlib.import_module("experiments.mixture").get_config(arg)
  assert config_lib.validate(c).task.name == "mixture"
  assert config_lib.base_config().keys() == c.keys()
