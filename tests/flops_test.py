"""flops: XLA's count of known programs, and the extrapolation over inner steps."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metalearn import algorithms
from metalearn import flops
from metalearn import inner as inner_lib
from metalearn import learner as learner_lib
from metalearn.inner import InnerConfig
from metalearn.models import mlp
from metalearn.tasks.episode import Episode


@pytest.mark.parametrize("compiled", [False, True])
def test_matmul_flops_are_two_m_n_k(compiled):
  m, k, n = 64, 48, 32
  args = (jax.ShapeDtypeStruct((m, k), jnp.float32),
          jax.ShapeDtypeStruct((k, n), jnp.float32))
  np.testing.assert_allclose(flops.program_flops(lambda a, b: a @ b, *args,
                                                 compiled=compiled),
                             2 * m * n * k, rtol=0.01)


@pytest.mark.parametrize("compiled", [False, True])
def test_scan_body_is_counted_once_unless_unrolled(compiled):
  m = 32
  arg = jax.ShapeDtypeStruct((m, m), jnp.float32)

  def f(a, unroll):
    return jax.lax.scan(lambda c, _: (c @ a, None), a, None, length=5, unroll=unroll)[0]

  # XLA counts a while body once: the reason the counters unroll the inner loop.
  np.testing.assert_allclose(flops.program_flops(lambda a: f(a, False), arg,
                                                 compiled=compiled),
                             2 * m ** 3, rtol=0.05)
  np.testing.assert_allclose(flops.program_flops(lambda a: f(a, True), arg,
                                                 compiled=compiled),
                             5 * 2 * m ** 3, rtol=0.05)


def test_at_steps_extrapolates_an_affine_count_and_counts_small_k_directly():
  calls = []

  def count(k):
    calls.append(k)
    return 7.0 + 3.0 * k

  assert flops.at_steps(count, 2) == 13.0 and calls == [2]
  assert flops.at_steps(count, 50) == 157.0 and calls == [2, 1, 2]


def _mlp_problem():
  learner = learner_lib.Learner(mlp.MLP((16, 16)), "mse")
  f32 = lambda *s: jax.ShapeDtypeStruct(s, jnp.float32)
  episode = Episode(f32(5, 1), f32(5, 1), f32(10, 1), f32(10, 1), None)
  return learner, episode


def test_adaptation_flops_match_a_directly_counted_unrolled_adaptation():
  learner, episode = _mlp_problem()
  cfg = InnerConfig(steps=1, lr=0.01)
  theta = jax.eval_shape(learner.init, jax.random.key(0), episode.support_x)

  def direct(k):  # One program with k unrolled steps, counted without extrapolation.
    c = dataclasses.replace(cfg, steps=k, unroll=True)

    def fn(theta, episode):
      adapted, _ = inner_lib.adapt(theta, lambda p: learner.support_loss(p, episode),
                                   cfg=c)
      return learner.query_loss(adapted, episode)[0]
    return flops.program_flops(fn, theta, episode)

  counted = flops.adaptation_flops(learner, cfg, episode, [0, 1, 5])
  # Affine up to a few scalar ops (6 of 56,010 at k = 5, measured): not exact to 1e-6.
  np.testing.assert_allclose(counted, [direct(0), direct(1), direct(5)], rtol=2e-3)
  assert counted[0] < counted[1] < counted[2]


def test_meta_step_flops_of_carried_reptile_match_a_directly_counted_task_sequence():
  learner, episode = _mlp_problem()
  tasks = 3
  episodes = jax.tree.map(lambda x: jax.ShapeDtypeStruct((tasks,) + x.shape, x.dtype),
                          episode)
  # 3 steps, as the Reptile config: counted at 1 and 2 and extrapolated, vs directly.
  cfg = InnerConfig(steps=3, lr=0.01, optimizer="adam", carry_state=True, unroll=True)
  theta = jax.eval_shape(learner.init, jax.random.key(0), episode.support_x)

  def sequence(theta, episodes):  # The tasks one after another, the state carried.
    state = cfg.make_optimizer().init(theta)
    grads = []
    for t in range(tasks):
      g, _, state = algorithms.reptile.reptile_meta_grad_carried(
          theta, state, jax.tree.map(lambda x: x[t], episodes), jax.random.key(0),
          learner=learner, inner=cfg, log=False)
      grads.append(g)
    return grads

  counted = flops.meta_step_flops(learner, "reptile", cfg, episodes)
  np.testing.assert_allclose(counted, flops.program_flops(sequence, theta, episodes),
                             rtol=2e-3)
  assert counted > 0


def test_cost_results_as_list_are_merged_and_missing_flops_is_nan(monkeypatch):
  assert flops._cost_dict([{"flops": 2.0}, {"flops": 3.0, "x": 1}]) == {
      "flops": 5.0, "x": 1.0}
  assert flops._cost_dict(None) == {}
  monkeypatch.setattr(flops, "_cost_dict", lambda cost: {})
  with pytest.warns(RuntimeWarning, match="flops"):
    assert np.isnan(flops.program_flops(lambda x: x, 1.0))
