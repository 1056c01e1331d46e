"""The meta-step: vmap equals a per-task loop, one compilation, bitwise determinism."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from metalearn import algorithms
from metalearn import learner as learner_lib
from metalearn import outer
from metalearn.inner import InnerConfig
from metalearn.models import mlp
from metalearn.tasks.sinusoid import SinusoidTasks

FAMILY = SinusoidTasks(shots=5, queries=5)
LEARNER = learner_lib.Learner(mlp.MLP((16, 16)), "mse")


def _state(optimizer, seed=0):
  theta = LEARNER.init(jax.random.key(seed), jnp.zeros((5, 1)))
  return outer.init_state(theta, optimizer)


@pytest.mark.parametrize("algorithm,task_map", [
    ("maml", "vmap"), ("maml", "map"), ("fomaml", "vmap"), ("reptile", "map")])
def test_vmapped_meta_step_equals_average_of_per_task_loop(algorithm, task_map):
  optimizer = optax.sgd(0.1)
  inner = InnerConfig(steps=2, lr=0.05)
  meta_batch = 6
  step = outer.make_meta_step(learner=LEARNER, algorithm=algorithm, inner=inner,
                              optimizer=optimizer, task_family=FAMILY,
                              meta_batch=meta_batch, task_map=task_map, jit=False)
  state = _state(optimizer)
  key = jax.random.key(3)
  new_state, metrics = step(state, None, key, jnp.bool_(True))

  # The same tasks, one at a time in Python.
  k_tasks, k_alg = jax.random.split(jax.random.fold_in(key, 0))
  episodes = FAMILY.sample(k_tasks, None, meta_batch)
  task_keys = jax.random.split(k_alg, meta_batch)
  fn = algorithms.get(algorithm)
  per_task = [fn(state.theta, jax.tree.map(lambda x: x[i], episodes), task_keys[i],
                 learner=LEARNER, inner=inner) for i in range(meta_batch)]
  mean_grad = jax.tree.map(lambda *g: sum(g) / meta_batch, *[g for g, _ in per_task])
  expected = jax.tree.map(lambda t, g: t - 0.1 * g, state.theta, mean_grad)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
               new_state.theta, expected)
  loss_post = np.mean([a["query_loss_post"] for _, a in per_task])
  np.testing.assert_allclose(metrics["query_loss_post"], loss_post, rtol=1e-5)
  loss_pre = np.mean([LEARNER.query_loss(state.theta, jax.tree.map(lambda x: x[i], episodes))[0]
                      for i in range(meta_batch)])
  np.testing.assert_allclose(metrics["query_loss_pre"], loss_pre, rtol=1e-5)
  assert int(new_state.step) == 1


def test_meta_step_compiles_once_and_is_bitwise_deterministic():
  optimizer = optax.adam(1e-3)
  inner = InnerConfig(steps=1, lr=0.01)

  def run(seed):
    step = outer.make_meta_step(learner=LEARNER, algorithm="maml", inner=inner,
                                optimizer=optimizer, task_family=FAMILY, meta_batch=4)
    state = _state(optimizer)
    key = jax.random.key(seed)
    for i in range(6):
      state, metrics = step(state, None, key, jnp.bool_(i % 3 == 0))
    assert step._cache_size() == 1  # pylint: disable=protected-access
    return jax.device_get(state.theta), jax.device_get(metrics)

  theta_a, metrics_a = run(7)
  theta_b, _ = run(7)
  theta_c, _ = run(8)
  for a, b in zip(jax.tree.leaves(theta_a), jax.tree.leaves(theta_b)):
    assert np.array_equal(a, b)
  assert not all(np.array_equal(a, c) for a, c in
                 zip(jax.tree.leaves(theta_a), jax.tree.leaves(theta_c)))
  assert metrics_a["query_loss_pre"] == 0.0  # Step 5 does not log: the branch is skipped.


def test_inner_scan_program_size_does_not_grow_with_steps():
  theta = LEARNER.init(jax.random.key(0), jnp.zeros((5, 1)))
  episode = jax.tree.map(lambda x: x[0], FAMILY.sample(jax.random.key(0), None, 1))

  def size(steps):
    fn = lambda t: algorithms.maml_meta_grad(
        t, episode, jax.random.key(0), learner=LEARNER,
        inner=InnerConfig(steps=steps, lr=0.01))
    # The step count appears only as the scan's length literal.
    return re.sub(r"[\d\s]+", "", str(jax.make_jaxpr(fn)(theta)))

  assert size(2) == size(50)
