"""The meta-test protocol against a hand-written loop, and the FLOPs of an online step
against their closed form."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax

from metalearn.continual import baselines
from metalearn.continual import costs
from metalearn.continual import evaluate
from metalearn.continual import nets as nets_lib
from metalearn.continual import stream as stream_lib
from metalearn.tasks import sampling


def _sgd_head(net, params, x, y, lr, loss):
  def f(h):
    out = net.apply({**params, "head": h}, x)
    if loss == "mse":
      return jnp.mean(jnp.square(out - y))
    return optax.softmax_cross_entropy_with_integer_labels(out, y).mean()
  g = jax.grad(f)(params["head"])
  return {**params, "head": jax.tree.map(lambda a, d: a - lr * d, params["head"], g)}


def test_online_learning_with_replay_matches_a_python_loop():
  family = stream_lib.SineStreams(functions=4, steps_per_function=3, batch=2,
                                  heldout_per_function=3, pool=0)
  net = nets_lib.sine_mlp(rln=(5,), pln=(4,))
  theta = net.init(jax.random.key(0), jnp.zeros((2, 5)))
  p = evaluate.Protocol(split="test", classes=(2, 4), streams=2, seed=3,
                        online=("head",), lr=0.05, optimizer="sgd", reset_head=True,
                        steps_per_example=2, replay_passes=1, batch=2)
  values = evaluate.run_streams(theta, family, None, net, p)
  sgd = jax.jit(lambda q, x, y: _sgd_head(net, q, x, y, p.lr, "mse"))
  for s in range(p.streams):
    k_stream, k_reset, k_learn = jax.random.split(jax.random.fold_in(
        jax.random.key(p.seed), s), 3)
    st = family.stream(k_stream, None, 4)
    params = evaluate.reset_head(theta, k_reset)
    xs, ys = st.x.reshape(12, 2, 5), st.y.reshape(12, 2, 1)
    for c in range(4):
      for j in range(3 * c, 3 * c + 3):
        for _ in range(2):
          params = sgd(params, xs[j], ys[j])
      stop = 3 * c + 3
      u = jax.random.uniform(jax.random.fold_in(jax.random.fold_in(k_learn, c), 0), (12,))
      perm = np.asarray(jnp.argsort(jnp.where(jnp.arange(12) < stop, u, jnp.inf)))
      for i in range(stop // 2):
        idx = perm[2 * i:2 * i + 2]
        params = sgd(params, xs[idx].reshape(4, 5), ys[idx].reshape(4, 1))
      if c + 1 in p.classes:
        mse = [float(jnp.mean(jnp.square(net.apply(params, st.heldout_x[k])
                                         - st.heldout_y[k]))) for k in range(c + 1)]
        np.testing.assert_allclose(values["mse"][s, p.classes.index(c + 1), :c + 1], mse,
                                   rtol=1e-4, atol=1e-6)
        assert np.isnan(values["mse"][s, p.classes.index(c + 1), c + 1:]).all()
  curves = evaluate.curves(values, p.classes)
  assert curves["mse"].shape == (2, 2)
  np.testing.assert_allclose(curves["mse"][:, 0], np.mean(values["mse"][:, 0, :2], 1))


def test_the_oracle_learns_the_same_examples_shuffled():
  rng = np.random.default_rng(0)
  data = sampling.ImageData(
      images=jnp.asarray(rng.integers(0, 256, (7, 6, 3, 3, 1)), jnp.uint8),
      class_ids=jnp.arange(7, dtype=jnp.int32))
  family = stream_lib.OmniglotStreams(train_per_class=3, heldout_per_class=2)
  net = nets_lib.Net(rln=nets_lib.DenseStack((6,)), head=nets_lib.DenseStack((), 8))
  theta = net.init(jax.random.key(1), jnp.zeros((2, 3, 3, 1)))
  p = evaluate.Protocol(split="test", classes=(3, 5), streams=1, seed=0,
                        online=("head",), lr=0.5, optimizer="sgd", reset_head=True,
                        shuffle=True, epochs=2, batch=2)
  values = evaluate.run_streams(theta, family, data, net, p)
  sgd = jax.jit(lambda q, x, y: _sgd_head(net, q, x, y, p.lr, "xent"))
  k_stream, k_reset, k_learn = jax.random.split(jax.random.fold_in(jax.random.key(0), 0),
                                                3)
  st = family.stream(k_stream, data, 5)
  xs, ys = st.x.reshape(15, 3, 3, 1), st.y.reshape(15)
  for i, n in enumerate(p.classes):
    params = evaluate.reset_head(theta, k_reset)
    order = np.asarray(baselines.oracle_order(jax.random.fold_in(k_learn, n), 3 * n, 2))
    assert sorted(order.tolist()) == sorted(list(range(3 * n)) * 2)  # Each twice.
    for b in range(len(order) // 2):
      idx = order[2 * b:2 * b + 2]
      params = sgd(params, xs[idx], ys[idx])
    held = [float(jnp.mean(jnp.argmax(net.apply(params, st.heldout_x[k]), -1) == k))
            for k in range(n)]
    np.testing.assert_allclose(values["accuracy"][0, i, :n], held)


def test_online_step_flops_match_the_closed_form():
  f, o = 64, 50
  net = nets_lib.Net(rln=nets_lib.DenseStack((f,)), head=nets_lib.DenseStack((), o))
  theta = net.init(jax.random.key(0), jnp.zeros((1, 10)))
  cost = costs.stream_cost(net, theta, ("head",),
                           example_x=jax.ShapeDtypeStruct((1, 10), jnp.float32),
                           example_y=jax.ShapeDtypeStruct((1,), jnp.int32),
                           steps_per_class=15, loss="xent", batch=4)
  # On m examples: forward 2mFO, kernel gradient 2mFO, update 2FO (multiply and
  # subtract); the rest is O(mO) (softmax, bias) and small.
  for m, flops in ((1, cost.step), (4, cost.batch_step)):
    closed = (4 * m + 2) * f * o
    assert closed <= flops <= closed + 40 * m * o, (m, flops)
  assert 2 * 10 * f <= cost.features <= 2 * 10 * f + 4 * f, cost.features  # Dense+ReLU.
  n, k, r = 7, 3, 2
  replay = r * sum((i * 15) // 4 for i in range(1, n + 1))
  assert cost.online(n, k, r) == (cost.features * n * 15 + cost.step * n * 15 * k
                                  + cost.batch_step * replay)
  assert cost.oracle(n, 5) == cost.features * n * 15 + cost.batch_step * 5 * (n * 15 // 4)
  # A whole-network online learner pays no fixed features but a costlier step.
  full = dataclasses.replace(cost, **dataclasses.asdict(costs.stream_cost(
      net, theta, ("rln", "head"), example_x=jax.ShapeDtypeStruct((1, 10), jnp.float32),
      example_y=jax.ShapeDtypeStruct((1,), jnp.int32), steps_per_class=15, loss="xent")))
  assert full.features == 0 and full.step > cost.step + 2 * 10 * f
