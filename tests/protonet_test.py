"""Prototypical Networks against independent computations: prototypes and distances by
a NumPy loop over classes, the meta-gradient by central finite differences (float64),
evaluation with more ways than meta-training, and FLOPs with no inner-loop cost."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments import mixture
from experiments import omniglot_protonet
from metalearn import builder as build_lib
from metalearn import config as config_lib
from metalearn import flops
from metalearn import learner as learner_lib
from metalearn.algorithms import protonet
from metalearn.errors import ConfigError
from metalearn.inner import InnerConfig
from metalearn.models import mlp
from metalearn.tasks.episode import Episode


def _episode(key, ways=4, shots=3, queries=2, dim=5, dtype=jnp.float32):
  """Classes in a shuffled order, so that a prototype cannot be a slice by position."""
  k1, k2, k3 = jax.random.split(key, 3)
  support_y = jax.random.permutation(k3, jnp.repeat(jnp.arange(ways), shots))
  return Episode(
      support_x=jax.random.normal(k1, (ways * shots, dim), dtype),
      support_y=support_y,
      query_x=jax.random.normal(k2, (ways * queries, dim), dtype),
      query_y=jnp.repeat(jnp.arange(ways), queries),
      class_ids=jnp.arange(ways) + 100)


def _problem(dtype=jnp.float32, bn_mode="transductive"):
  learner = learner_lib.Learner(mlp.MLP((7, 6), out=4, param_dtype=dtype), "xent",
                                bn_mode)
  episode = _episode(jax.random.key(0), dtype=dtype)
  theta = protonet.PROTONET.init(learner, jax.random.key(1), episode.support_x,
                                 InnerConfig(steps=0))
  return learner, episode, theta


def _reference_loss(theta, episode):
  """The query cross-entropy, written with NumPy from the MLP's definition."""
  def embed(x):
    for name in ("Dense_0", "Dense_1"):
      x = np.maximum(x @ np.asarray(theta[name]["kernel"]) + np.asarray(
          theta[name]["bias"]), 0.0)
    return x
  fs, fq = embed(np.asarray(episode.support_x)), embed(np.asarray(episode.query_x))
  ys = np.asarray(episode.support_y)
  ways = int(ys.max()) + 1
  logits = np.zeros((fq.shape[0], ways))
  for n in range(ways):
    prototype = fs[ys == n].mean(0)
    for i in range(fq.shape[0]):
      logits[i, n] = -np.sum((fq[i] - prototype) ** 2)
  logp = logits - logits.max(1, keepdims=True)
  logp = logp - np.log(np.exp(logp).sum(1, keepdims=True))
  return logits, -logp[np.arange(fq.shape[0]), np.asarray(episode.query_y)].mean()


def test_theta_is_the_embedding_without_the_head():
  _, _, theta = _problem()
  assert set(theta) == {"Dense_0", "Dense_1"}  # The model's head Dense_2 is dropped.


def test_logits_are_minus_squared_distances_to_class_mean_embeddings():
  learner, episode, theta = _problem()
  fs, fq = protonet.anil.features(learner, theta, episode)
  protos = protonet.prototypes(fs, episode.support_y, protonet.num_ways(episode))
  expected_logits, expected_loss = _reference_loss(theta, episode)
  np.testing.assert_allclose(protonet.logits(fq, protos), expected_logits, rtol=1e-5,
                             atol=1e-5)
  loss = protonet.protonet_adapted_query_loss(theta, episode, learner=learner,
                                              inner=InnerConfig(steps=0))
  np.testing.assert_allclose(loss, expected_loss, rtol=1e-5)


def test_meta_grad_matches_central_finite_differences():
  with jax.enable_x64(True):
    learner, episode, theta = _problem(jnp.float64)
    grads, aux = protonet.protonet_meta_grad(theta, episode, jax.random.key(0),
                                             learner=learner, inner=InnerConfig(steps=0))
    objective = lambda t: _reference_loss(t, episode)[1]
    np.testing.assert_allclose(aux["query_loss_post"], objective(theta), rtol=1e-10)
    leaves, treedef = jax.tree.flatten(theta)
    rng = np.random.default_rng(0)
    eps = 1e-6
    for _ in range(4):  # Directional derivatives along random directions.
      v = treedef.unflatten([rng.standard_normal(leaf.shape) for leaf in leaves])
      plus = objective(jax.tree.map(lambda t, d: t + eps * d, theta, v))
      minus = objective(jax.tree.map(lambda t, d: t - eps * d, theta, v))
      analytic = sum(float(jnp.vdot(g, d)) for g, d in zip(jax.tree.leaves(grads),
                                                           jax.tree.leaves(v)))
      np.testing.assert_allclose(analytic, (plus - minus) / (2 * eps), rtol=1e-6,
                                 atol=1e-9)


def _mixture_config(algorithm="protonet"):
  c = mixture.get_config("smoke")
  c.algorithm = algorithm
  c.model.hidden = (16,)
  c.ways, c.shots, c.queries = 3, 2, 3
  c.inner.steps = 0
  c.eval.ways, c.eval.shots, c.eval.queries = 7, 1, 4
  c.eval.steps, c.eval.eval_steps = 3, (0, 1, 3)
  c.meta_batch = 2
  return c


def test_trains_and_evaluates_with_more_ways_than_meta_training():
  c = _mixture_config()
  setup = build_lib.build(c)
  state = setup.init_state()
  step = setup.meta_step()
  state, metrics = step(state, None, jax.random.key(0), jnp.bool_(True))
  assert {"query_loss_post", "query_accuracy_post", "support_loss_post"} <= set(metrics)
  assert "query_loss_pre" not in metrics  # No head: nothing to score before adapting.
  result = setup.evaluate(state.theta, None, eval_steps=(0, 1, 3), episodes=6, batch=3,
                          key=jax.random.key(1))
  assert set(result.values) == {"loss", "accuracy", "support_loss"}
  for values in result.values.values():
    assert values.shape == (6, 3)
    np.testing.assert_array_equal(values, values[:, :1].repeat(3, 1))  # Constant in k.
  # 7-way episodes: the loss of a 7-way classifier near chance is near log 7.
  assert 0.5 * np.log(7) < result.mean("loss")[0] < 3 * np.log(7)
  c.algorithm = "maml"  # A head of config.ways outputs cannot score 7 ways.
  c.inner.steps = 1
  with pytest.raises(ConfigError, match="config.eval.ways: 7"):
    config_lib.validate(c)


def test_flops_have_no_inner_loop_cost():
  c = _mixture_config()
  setup = build_lib.build(c)
  episode = setup.abstract_episodes(None, evaluation=True)
  assert flops.inner_step_flops(setup.eval_learner, setup.eval_inner, episode,
                                setup.algorithm) == 0.0
  assert flops.adaptation_flops(setup.eval_learner, setup.eval_inner, episode, [0, 1, 3],
                                setup.algorithm) == [0.0, 0.0, 0.0]
  # Scoring: the embedding of 7 + 28 examples, one 16 × 16 layer, is most of it.
  query = flops.query_flops(setup.eval_learner, setup.eval_inner, episode, setup.algorithm)
  assert 2 * 35 * 16 * 16 < query < 10 * 35 * 16 * 16, query


@pytest.mark.parametrize("arg", ["5way1shot", "20way1shot", "20way1shot,smoke"])
def test_configs_validate(arg):
  c = omniglot_protonet.get_config(arg)
  config_lib.validate(c)
  assert config_lib.base_config().keys() == c.keys()
  assert (c.ways, c.eval.ways) == (60, 20 if "20way" in arg else 5)


def test_bad_configs_name_the_key():
  c = omniglot_protonet.get_config("smoke")
  c.inner.steps = 1
  with pytest.raises(ConfigError, match="config.inner.steps: 1: protonet has no inner"):
    config_lib.validate(c)
  c = mixture.get_config("smoke")
  c.algorithm, c.inner.steps = "protonet", 0
  c.task, c.model.name = "sinusoid", "mlp"
  with pytest.raises(ConfigError, match="config.task: 'sinusoid' is not classification"):
    config_lib.validate(c)
