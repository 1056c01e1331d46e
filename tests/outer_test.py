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
  fn = algorithms.get(algorithm).meta_grad
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
    fn = lambda t: algorithms.maml.maml_meta_grad(
        t, episode, jax.random.key(0), learner=LEARNER,
        inner=InnerConfig(steps=steps, lr=0.01))
    # The step count appears only as the scan's length literal.
    return re.sub(r"[\d\s]+", "", str(jax.make_jaxpr(fn)(theta)))

  assert size(2) == size(50)


def _hand_adam_reptile(theta, episode, idx, v, count, lr, b2=0.999, eps=1e-8):
  """One task of Reptile with Adam (β1 = 0) written out, from second moment ``v`` after
  ``count`` earlier steps: the state the authors' code never resets."""
  p = theta
  for batch_idx in idx:
    batch = episode.replace(support_x=episode.support_x[batch_idx],
                            support_y=episode.support_y[batch_idx])
    g = jax.grad(lambda q: LEARNER.support_loss(q, batch)[0])(p)
    count += 1
    v = jax.tree.map(lambda v, g: b2 * v + (1 - b2) * g * g, v, g)
    p = jax.tree.map(lambda p, g, v: p - lr * g / (jnp.sqrt(v / (1 - b2 ** count)) + eps),
                     p, g, v)
  return p, v, count


def test_carried_inner_adam_runs_tasks_in_sequence_and_carries_over_meta_steps():
  inner = InnerConfig(steps=2, lr=0.01, optimizer="adam", adam_b1=0.0, batch_size=3,
                      carry_state=True)
  optimizer, meta_batch = optax.sgd(1.0), 3
  step = outer.make_meta_step(learner=LEARNER, algorithm="reptile", inner=inner,
                              optimizer=optimizer, task_family=FAMILY,
                              meta_batch=meta_batch, jit=False)
  theta = LEARNER.init(jax.random.key(0), jnp.zeros((5, 1)))
  state = outer.init_state(theta, optimizer, inner)
  key = jax.random.key(3)
  v, count = jax.tree.map(jnp.zeros_like, theta), 0
  for s in range(2):  # Two meta-steps: the state crosses the meta-step boundary too.
    new_state, _ = step(state, None, key, jnp.bool_(False))
    k_tasks, k_alg = jax.random.split(jax.random.fold_in(key, s))
    episodes = FAMILY.sample(k_tasks, None, meta_batch)
    task_keys = jax.random.split(k_alg, meta_batch)
    adapted = []
    for i in range(meta_batch):
      idx = np.asarray(algorithms.reptile.minibatch_indices(task_keys[i], 5, 3, 2))
      p, v, count = _hand_adam_reptile(theta, jax.tree.map(lambda x: x[i], episodes),
                                       idx, v, count, lr=0.01)
      adapted.append(p)
    theta = jax.tree.map(lambda *a: sum(a) / meta_batch, *adapted)  # ε = 1.
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=2e-4, atol=1e-6),
                 new_state.theta, theta)
    adam = new_state.inner_state[0]
    assert int(adam.count) == count == (s + 1) * meta_batch * 2
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-12),
                 adam.nu, v)
    state = new_state


def test_carried_state_is_refused_where_it_cannot_hold():
  inner = InnerConfig(steps=1, lr=0.01, optimizer="adam", carry_state=True)
  with pytest.raises(ValueError, match="carry_state"):
    outer.make_meta_step(learner=LEARNER, algorithm="maml", inner=inner,
                         optimizer=optax.sgd(1.0), task_family=FAMILY, meta_batch=2)
  with pytest.raises(ValueError, match="carry_state"):
    algorithms.reptile.reptile_meta_grad(
        LEARNER.init(jax.random.key(0), jnp.zeros((5, 1))),
        jax.tree.map(lambda x: x[0], FAMILY.sample(jax.random.key(0), None, 1)),
        jax.random.key(0), learner=LEARNER, inner=inner)


@pytest.mark.parametrize("algorithm", ["maml", "reptile"])
def test_metrics_that_cost_forward_passes_are_skipped_unless_logging(algorithm):
  optimizer = optax.sgd(0.1)
  step = outer.make_meta_step(learner=LEARNER, algorithm=algorithm,
                              inner=InnerConfig(steps=2, lr=0.05), optimizer=optimizer,
                              task_family=FAMILY, meta_batch=3)
  state = _state(optimizer)
  quiet, m_quiet = step(state, None, jax.random.key(1), jnp.bool_(False))
  state = _state(optimizer)
  loud, m_loud = step(state, None, jax.random.key(1), jnp.bool_(True))
  jax.tree.map(np.testing.assert_array_equal, quiet.theta, loud.theta)
  skipped = ["support_loss_post", "query_loss_pre"] + (
      ["query_loss_post"] if algorithm == "reptile" else [])
  for name in skipped:
    assert float(m_quiet[name]) == 0.0 and float(m_loud[name]) > 0.0, name
  assert float(m_quiet["grad_norm"]) == float(m_loud["grad_norm"]) > 0
  if algorithm == "maml":  # The objective itself is always reported.
    assert float(m_quiet["query_loss_post"]) == float(m_loud["query_loss_post"]) > 0


def test_pre_adaptation_metrics_are_the_mean_of_each_tasks_query_loss():
  """With the tasks mapped as on CPU (the vmapped step is checked against the mapped one
  above)."""
  optimizer = optax.sgd(0.1)
  step = outer.make_meta_step(learner=LEARNER, algorithm="maml",
                              inner=InnerConfig(steps=1, lr=0.05), optimizer=optimizer,
                              task_family=FAMILY, meta_batch=3, task_map="map")
  state = _state(optimizer)
  _, metrics = step(state, None, jax.random.key(1), jnp.bool_(True))
  # The step's own episodes, drawn again, scored one by one with the unadapted theta.
  k_tasks, _ = jax.random.split(jax.random.fold_in(jax.random.key(1), 0))
  episodes = FAMILY.sample(k_tasks, None, 3)
  theta = _state(optimizer).theta  # The step donated its state: the same one again.
  losses = [float(LEARNER.query_loss(theta, jax.tree.map(lambda x: x[i], episodes))[0])
            for i in range(3)]
  np.testing.assert_allclose(float(metrics["query_loss_pre"]), np.mean(losses), rtol=1e-5)
