"""ANIL against independent computations: MAML with the body frozen in the inner loop,
a hand-written unrolled head-only inner loop on the full model differentiated with
``jax.grad`` (float64), the full model's forward pass with the adapted head, and the
FLOPs of its inner step against MAML's."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments import omniglot_anil
from metalearn import algorithms
from metalearn import builder as build_lib
from metalearn import config as config_lib
from metalearn import flops
from metalearn import learner as learner_lib
from metalearn.algorithms import anil
from metalearn.errors import ConfigError
from metalearn.inner import InnerConfig
from metalearn.models import conv4
from metalearn.models import mlp
from metalearn.tasks.episode import Episode

BN_MODES = learner_lib.BN_MODES


def _episode(key, ways=3, shots=2, queries=2, shape=(8, 8, 1), dtype=jnp.float32):
  k1, k2 = jax.random.split(key)
  return Episode(
      support_x=jax.random.normal(k1, (ways * shots,) + shape, dtype),
      support_y=jnp.repeat(jnp.arange(ways), shots),
      query_x=jax.random.normal(k2, (ways * queries,) + shape, dtype),
      query_y=jnp.repeat(jnp.arange(ways), queries),
      class_ids=jnp.arange(ways))


def _conv_problem(bn_mode="transductive", dtype=jnp.float64, depth=1):
  net = conv4.Conv4(3, filters=2, depth=depth, conv_impl="im2col", param_dtype=dtype)
  learner = learner_lib.Learner(net, "xent", bn_mode)
  episode = _episode(jax.random.key(0), dtype=dtype)
  theta = learner.init(jax.random.key(1), episode.support_x)
  return learner, episode, theta, ("Conv", "BatchStatNorm")


def _mlp_problem(dtype=jnp.float64):
  learner = learner_lib.Learner(mlp.MLP((6, 5), out=3, param_dtype=dtype), "xent")
  episode = _episode(jax.random.key(2), shape=(4,), dtype=dtype)
  theta = learner.init(jax.random.key(3), episode.support_x)
  return learner, episode, theta, ("Dense_0", "Dense_1")


def _with_head(theta, head):
  return dict(theta, **{anil.head_name(theta): head})


def _unrolled_objective(learner, episode, steps, lr):
  """The query loss after ``steps`` SGD steps on the head alone, each step the
  gradient of the FULL model's support loss with respect to its head (a plain loop)."""
  def objective(theta):
    name = anil.head_name(theta)
    head = theta[name]
    for _ in range(steps):
      g = jax.grad(lambda h: learner.support_loss(_with_head(theta, h), episode)[0])(head)
      head = jax.tree.map(lambda p, d: p - lr * d, head, g)
    return learner.query_loss(dict(theta, **{name: head}), episode)[0]
  return objective


def _assert_trees_close(a, b, **tol):
  assert jax.tree.structure(a) == jax.tree.structure(b)
  jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, **tol), a, b)


def test_body_params_are_the_full_models_without_the_head():
  for net, x in ((conv4.Conv4(3, filters=4, depth=2), jnp.zeros((2, 8, 8, 1))),
                 (mlp.MLP((6, 5), out=3), jnp.zeros((2, 4)))):
    full = jax.eval_shape(net.init, jax.random.key(0), x)["params"]
    body = jax.eval_shape(anil.body_model(net).init, jax.random.key(0), x)["params"]
    expected = "Dense_0" if isinstance(net, conv4.Conv4) else "Dense_2"
    assert anil.head_name(full) == expected
    assert jax.tree.structure(body) == jax.tree.structure(anil.split(full)[0])


# The transductive mode's features are checked by the predictions' test below.
@pytest.mark.parametrize("steps,bn_mode", [(1, "non_transductive"),
                                           (3, "transductive_joint")])
def test_conv_meta_grad_is_the_unrolled_head_only_loops_gradient(steps, bn_mode):
  with jax.enable_x64(True):
    learner, episode, theta, body_modules = _conv_problem(bn_mode)
    lr, key = 0.3, jax.random.key(0)
    inner = InnerConfig(steps=steps, lr=lr)
    grads, aux = jax.jit(lambda t: anil.anil_meta_grad(
        t, episode, key, learner=learner, inner=inner))(theta)
    objective = _unrolled_objective(learner, episode, steps, lr)
    _assert_trees_close(grads, jax.grad(objective)(theta), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(aux["query_loss_post"], objective(theta), rtol=1e-12)
    if bn_mode == "transductive_joint":  # And MAML with the body frozen, once.
      frozen = InnerConfig(steps=steps, lr=lr, frozen=body_modules)
      maml_frozen, _ = jax.jit(lambda t: algorithms.maml.maml_meta_grad(
          t, episode, key, learner=learner, inner=frozen))(theta)
      _assert_trees_close(grads, maml_frozen, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("steps", [1, 3])
def test_mlp_meta_grad_matches_maml_with_the_body_frozen_and_the_unrolled_loop(steps):
  with jax.enable_x64(True):
    learner, episode, theta, body_modules = _mlp_problem()
    key, lr = jax.random.key(0), 0.5

    @jax.jit
    def all_grads(theta):
      out = {}
      for first_order in (False, True):
        inner = InnerConfig(steps=steps, lr=lr, first_order=first_order)
        frozen = InnerConfig(steps=steps, lr=lr, first_order=first_order,
                             frozen=body_modules)
        out[first_order] = (
            anil.anil_meta_grad(theta, episode, key, learner=learner, inner=inner)[0],
            algorithms.maml.maml_meta_grad(theta, episode, key, learner=learner,
                                           inner=frozen)[0])
      unrolled = jax.grad(_unrolled_objective(learner, episode, steps, lr))(theta)
      maml = algorithms.maml.maml_meta_grad(theta, episode, key, learner=learner,
                                            inner=InnerConfig(steps=steps, lr=lr))[0]
      return out, unrolled, maml

    out, unrolled, maml = all_grads(theta)
    for grads, maml_frozen in out.values():
      _assert_trees_close(grads, maml_frozen, rtol=1e-9, atol=1e-12)
    second_order, first_order = out[False][0], out[True][0]
    _assert_trees_close(second_order, unrolled, rtol=1e-9, atol=1e-12)
    # The comparisons can tell: first order drops the body's path through the head's
    # adaptation, and full MAML adapts the body too.
    assert not np.allclose(second_order["Dense_0"]["kernel"],
                           first_order["Dense_0"]["kernel"], rtol=1e-3)
    assert not np.allclose(maml["Dense_0"]["kernel"], second_order["Dense_0"]["kernel"],
                           rtol=1e-3)


@pytest.mark.parametrize("bn_mode", BN_MODES)
def test_predictions_are_the_full_models_with_the_adapted_head(bn_mode):
  learner, episode, theta, _ = _conv_problem(bn_mode, dtype=jnp.float32, depth=2)
  body, name, head = anil.split(theta)
  head = jax.tree.map(lambda h: h + 0.1, head)  # Any head, e.g. an adapted one.
  full = dict(theta, **{name: head})
  s = episode.support_x.shape[0]
  both = jnp.concatenate([episode.support_x, episode.query_x])

  @jax.jit
  def predictions(body, head, full):
    fs, fq = anil.features(learner, body, episode)
    expected_query = {
        "transductive": lambda: learner.apply(full, episode.query_x),
        "non_transductive": lambda: learner.apply(full, both, s)[s:],
        "transductive_joint": lambda: learner.apply(full, both)[s:]}[bn_mode]()
    return ((anil.apply_head(head, fq), expected_query),
            (anil.apply_head(head, fs), learner.apply(full, episode.support_x)))

  for ours, expected in predictions(body, head, full):
    np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-5)


def test_adapt_curve_scores_the_full_model_with_the_head_adapted_by_hand():
  with jax.enable_x64(True):
    learner, episode, theta, _ = _conv_problem("non_transductive")
    lr, steps = 0.3, (0, 1, 3)
    curve = anil.anil_adapt_curve(theta, episode, learner=learner,
                                  inner=InnerConfig(lr=lr), eval_steps=steps)
    assert set(curve) == {"loss", "accuracy", "support_loss"}
    for i, k in enumerate(steps):
      np.testing.assert_allclose(
          curve["loss"][i], _unrolled_objective(learner, episode, k, lr)(theta),
          rtol=1e-10)
    cost = anil.anil_adapted_query_loss(theta, episode, learner=learner,
                                        inner=InnerConfig(steps=3, lr=lr))
    np.testing.assert_allclose(cost, curve["loss"][-1], rtol=1e-10)


def test_inner_step_flops_are_the_heads_far_below_mamls():
  """Omniglot conv4 (64 filters, 28×28), 5-way 1-shot, 15 queries per class."""
  learner = learner_lib.Learner(conv4.omniglot_conv4(5), "xent")
  f32 = jnp.float32
  episode = Episode(support_x=jax.ShapeDtypeStruct((5, 28, 28, 1), f32),
                    support_y=jax.ShapeDtypeStruct((5,), jnp.int32),
                    query_x=jax.ShapeDtypeStruct((75, 28, 28, 1), f32),
                    query_y=jax.ShapeDtypeStruct((75,), jnp.int32),
                    class_ids=jax.ShapeDtypeStruct((5,), jnp.int32))
  inner = InnerConfig(lr=0.4)
  per_step = flops.inner_step_flops(learner, inner, episode, anil.ANIL)
  maml = flops.inner_step_flops(learner, inner, episode, "maml")
  head_matmul = 2 * 5 * 256 * 5  # Support features [5, 256] @ head [256, 5].
  # Forward, the kernel's gradient and the update: a few head matmuls, no conv.
  assert head_matmul <= per_step <= 10 * head_matmul, per_step
  assert per_step < 1e-3 * maml, (per_step, maml)
  # The body's passes are in the once-per-episode cost: MAML's query pass, plus the
  # body's pass over the 5 support images (next to the 75 queries).
  query = flops.query_flops(learner, inner, episode, anil.ANIL)
  maml_query = flops.query_flops(learner, inner, episode, "maml")
  assert maml_query < query < (1 + 5 / 75 + 0.01) * maml_query, (query, maml_query)


@pytest.mark.parametrize("arg", ["5way1shot", "20way1shot", "smoke", "20way1shot,smoke",
                                 "first_order"])
def test_configs_validate_and_bind_the_first_order_option(arg):
  c = omniglot_anil.get_config(arg)
  config_lib.validate(c)
  assert config_lib.base_config().keys() == c.keys()
  setup = build_lib.build(c)
  assert setup.algorithm.name == "anil"
  assert setup.inner.first_order == setup.algorithm.first_order == (arg == "first_order")


def test_bad_configs_name_the_key():
  c = omniglot_anil.get_config("smoke")
  c.inner.frozen = "BatchStatNorm"
  with pytest.raises(ConfigError, match="config.inner.frozen: 'BatchStatNorm': anil"):
    config_lib.validate(c)
  c = omniglot_anil.get_config("smoke")
  c.eval.ways = 20  # The head has config.ways outputs.
  with pytest.raises(ConfigError, match="config.eval.ways: 20"):
    config_lib.validate(c)
