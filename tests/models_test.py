"""Models: both convolution formulations agree (values, first and second derivatives);
batch statistics behave as each batch-norm mode says; MAML's architecture shapes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metalearn import learner as learner_lib
from metalearn.models import conv4
from metalearn.models import layers
from metalearn.tasks.episode import Episode


@pytest.mark.parametrize("impl", [i for i in layers.CONV_IMPLS if i not in ("auto", "xla")])
@pytest.mark.parametrize("stride,size", [(1, 7), (2, 28), (2, 7), (2, 4)])
def test_convolution_formulations_match_xla(stride, size, impl):
  kx, kk = jax.random.split(jax.random.key(0))
  x = jax.random.normal(kx, (2, size, size, 3))
  kernel = jax.random.normal(kk, (3, 3, 3, 5))
  ref = layers.conv2d(x, kernel, stride=stride, impl="xla")
  out = layers.conv2d(x, kernel, stride=stride, impl=impl)
  assert out.shape == (2, -(-size // stride), -(-size // stride), 5)
  np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4)


def test_conv_formulations_agree_on_second_order_maml_gradients():
  from metalearn import algorithms
  from metalearn.inner import InnerConfig
  key = jax.random.key(1)
  # 10 -> 5 -> 3 -> 2: even and odd sizes under stride 2, small enough to compile fast.
  ep = Episode(jax.random.normal(key, (6, 10, 10, 1)), jnp.arange(6) % 3,
               jax.random.normal(jax.random.key(2), (6, 10, 10, 1)), jnp.arange(6) % 3)
  grads = {}
  impls = [i for i in layers.CONV_IMPLS if i != "auto"]
  for impl in impls:
    learner = learner_lib.Learner(conv4.Conv4(3, filters=4, depth=3, conv_impl=impl),
                                  "xent")
    theta = learner.init(jax.random.key(3), ep.support_x)
    grads[impl], _ = jax.jit(lambda t, e, l=learner: algorithms.maml.maml_meta_grad(
        t, e, key, learner=l, inner=InnerConfig(steps=2, lr=0.4)))(theta, ep)
  for impl in impls:
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=2e-3, atol=1e-5),
                 grads["xla"], grads[impl])


def test_maml_architectures_parameter_shapes():
  omni = conv4.omniglot_conv4(5)
  params = jax.eval_shape(omni.init, jax.random.key(0), jnp.zeros((2, 28, 28, 1)))["params"]
  assert params["Dense_0"]["kernel"].shape == (256, 5)  # 28→14→7→4→2, 2·2·64.
  assert params["Conv_0"]["kernel"].shape == (3, 3, 1, 64)
  mini = conv4.miniimagenet_conv4(5)
  params = jax.eval_shape(mini.init, jax.random.key(0), jnp.zeros((2, 84, 84, 3)))["params"]
  assert params["Dense_0"]["kernel"].shape == (800, 5)  # 84→42→21→10→5, 5·5·32.
  assert params["Conv_3"]["kernel"].shape == (3, 3, 32, 32)


def test_batch_stat_norm_uses_only_the_given_examples():
  x = jax.random.normal(jax.random.key(0), (10, 4, 4, 3)) * 3 + 2
  norm = layers.BatchStatNorm(epsilon=1e-8)
  params = norm.init(jax.random.key(0), x)
  y = norm.apply(params, x)
  np.testing.assert_allclose(y.mean((0, 1, 2)), 0, atol=1e-5)
  np.testing.assert_allclose(y.std((0, 1, 2)), 1, atol=1e-4)
  y4 = norm.apply(params, x, 4)
  np.testing.assert_allclose(y4[:4].mean((0, 1, 2)), 0, atol=1e-5)
  assert np.abs(y4[4:].mean((0, 1, 2))).max() > 1e-3


def test_batch_norm_modes_decide_whether_queries_interact():
  key = jax.random.key(0)
  ep = Episode(jax.random.normal(key, (5, 28, 28, 1)), jnp.arange(5),
               jax.random.normal(jax.random.key(1), (10, 28, 28, 1)), jnp.arange(10) % 5)
  changed = ep.replace(query_x=ep.query_x.at[9].multiply(5.0))
  for mode, interacts in (("transductive", True), ("non_transductive", False)):
    learner = learner_lib.Learner(conv4.omniglot_conv4(5), "xent", bn_mode=mode)
    theta = learner.init(key, ep.support_x)
    logits = lambda e: (learner.apply(theta, e.query_x) if mode == "transductive" else
                        learner.apply(theta, jnp.concatenate([e.support_x, e.query_x]), 5)[5:])
    logits = jax.jit(logits)
    diff = np.abs(logits(ep)[:9] - logits(changed)[:9]).max()
    assert (diff > 1e-4) == interacts, (mode, diff)


def test_max_pool_matches_reduce_window():
  x = jax.random.normal(jax.random.key(0), (2, 21, 21, 3))
  ref = jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")
  np.testing.assert_array_equal(layers.max_pool_2x2(x), ref)


def test_each_batch_norm_mode_normalises_queries_with_its_own_set():
  # transductive: the queries' statistics; non_transductive: the support's; joint: both.
  key = jax.random.key(0)
  ep = Episode(jax.random.normal(key, (5, 28, 28, 1)), jnp.arange(5),
               jax.random.normal(jax.random.key(1), (10, 28, 28, 1)), jnp.arange(10) % 5)
  twin = ep.replace(query_x=jnp.concatenate([ep.support_x, ep.support_x]))  # Same stats.
  losses, twin_losses = {}, {}
  for mode in learner_lib.BN_MODES:
    learner = learner_lib.Learner(conv4.omniglot_conv4(5), "xent", bn_mode=mode)
    theta = learner.init(key, ep.support_x)
    loss = jax.jit(lambda e: learner.query_loss(theta, e)[0])
    d_support = jax.grad(lambda x: loss(ep.replace(support_x=x)))(ep.support_x)
    assert (np.abs(d_support).max() > 0) == (mode != "transductive"), mode
    losses[mode], twin_losses[mode] = float(loss(ep)), float(loss(twin))
  # Queries = support twice: the three sets have the same mean and variance.
  np.testing.assert_allclose(list(twin_losses.values()), twin_losses["transductive"],
                             rtol=1e-4)
  assert len({round(v, 4) for v in losses.values()}) == 3, losses


def test_reference_head_and_batch_norm_match_a_forward_pass_by_hand():
  # MAML's reference network: spatial mean into the head, no batch-norm scale.
  net = conv4.Conv4(5, filters=8, depth=2, head="mean", head_init="normal", bn_scale=False)
  x = jax.random.normal(jax.random.key(0), (4, 8, 8, 1))
  params = net.init(jax.random.key(1), x)["params"]
  assert all("scale" not in params[f"BatchStatNorm_{i}"] for i in range(2))
  assert params["Dense_0"]["kernel"].shape == (8, 5)
  # Give the offsets and biases values, so that each term of the forward pass shows.
  params = jax.tree.map(
      lambda p: p + 0.1 * jax.random.normal(jax.random.key(p.size), p.shape), params)
  h = np.asarray(x, np.float64)
  for i in range(2):
    conv = params[f"Conv_{i}"]
    h = np.asarray(jax.lax.conv_general_dilated(
        h, np.asarray(conv["kernel"], np.float64), (2, 2), "SAME",
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
        precision=jax.lax.Precision.HIGHEST)) + np.asarray(conv["bias"])
    mean, var = h.mean((0, 1, 2)), h.var((0, 1, 2))
    h = np.maximum((h - mean) / np.sqrt(var + 1e-3)
                   + np.asarray(params[f"BatchStatNorm_{i}"]["bias"]), 0)
  logits = h.mean((1, 2)) @ np.asarray(params["Dense_0"]["kernel"]) + np.asarray(
      params["Dense_0"]["bias"])
  np.testing.assert_allclose(net.apply({"params": params}, x), logits, rtol=1e-4, atol=1e-5)


def test_head_init_normal_has_unit_scale_and_the_default_is_lecun():
  x = jnp.zeros((2, 4, 4, 1))
  kernels = {init: conv4.Conv4(20, filters=64, depth=1, head="mean", head_init=init).init(
      jax.random.key(0), x)["params"]["Dense_0"]["kernel"] for init in conv4.HEAD_INITS}
  assert 0.93 < float(kernels["normal"].std()) < 1.07  # 1,280 draws of N(0, 1).
  assert 0.10 < float(kernels["lecun_normal"].std()) < 0.15  # 1/sqrt(64) = 0.125.
  with pytest.raises(ValueError, match="head='pool'"):
    conv4.Conv4(5, head="pool")
