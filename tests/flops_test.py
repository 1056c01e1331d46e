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
from metalearn.models import conv4
from metalearn.models import layers
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


def _adapt_program(learner, cfg, k):
  """k unrolled inner steps on the support set, nothing else: ``(theta, episode) ->
  adapted``."""
  c = dataclasses.replace(cfg, steps=k, unroll=True)
  return lambda theta, episode: inner_lib.adapt(
      theta, lambda p: learner.support_loss(p, episode), cfg=c)[0]


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_adaptation_flops_are_k_times_a_directly_counted_inner_step(optimizer):
  learner, episode = _mlp_problem()
  cfg = InnerConfig(steps=1, lr=0.01, optimizer=optimizer)
  theta = jax.eval_shape(learner.init, jax.random.key(0), episode.support_x)
  direct = lambda k: flops.program_flops(_adapt_program(learner, cfg, k), theta, episode)

  ks = [0, 1, 2, 3, 5, 8]
  counted = flops.adaptation_flops(learner, cfg, episode, ks)
  assert counted[0] == 0.0  # No step, no adaptation cost: exactly.
  per_step = counted[1]
  assert per_step > 0
  assert counted == [k * per_step for k in ks]  # Linear, zero intercept, exactly.
  # Against programs of k unrolled steps counted as they are, each whole (counts well
  # under 2**24, so XLA's float32 totals are exact integers).
  assert [direct(k) for k in (2, 3, 5, 8)] == [counted[ks.index(k)] for k in (2, 3, 5, 8)]
  # A 1-step "unrolled" scan is a one-trip while loop: its counter's 2 scalar FLOPs.
  assert direct(1) - counted[1] in (0.0, 2.0)


def test_query_flops_are_a_directly_counted_forward_pass_and_loss():
  learner, episode = _mlp_problem()
  cfg = InnerConfig(steps=3, lr=0.01)
  theta = jax.eval_shape(learner.init, jax.random.key(0), episode.support_x)
  query = flops.query_flops(learner, cfg, episode)
  direct = flops.program_flops(lambda t, e: learner.query_loss(t, e)[0], theta, episode)
  assert query == direct > 0
  # The same at the tiny conv net, in every batch-norm mode (non-transductive modes
  # forward the support set with the query), on native convolutions.
  conv_learner, conv_episode = _conv_problem()
  for bn_mode in learner_lib.BN_MODES:
    lrn = dataclasses.replace(conv_learner, bn_mode=bn_mode)
    native = dataclasses.replace(lrn, model=lrn.model.clone(conv_impl="xla"))
    theta = jax.eval_shape(lrn.init, jax.random.key(0), conv_episode.support_x)
    direct = flops.program_flops(lambda t, e, lrn=native: lrn.query_loss(t, e)[0], theta,
                                 conv_episode)
    assert flops.query_flops(lrn, cfg, conv_episode) == direct > 0, bn_mode


def test_an_episode_costs_its_adaptation_plus_its_query():
  learner, episode = _mlp_problem()
  cfg = InnerConfig(steps=1, lr=0.01)
  theta = jax.eval_shape(learner.init, jax.random.key(0), episode.support_x)

  def direct(k):  # One program with k unrolled steps and the query loss.
    adapt = _adapt_program(learner, cfg, k)
    return flops.program_flops(lambda t, e: learner.query_loss(adapt(t, e), e)[0],
                               theta, episode)

  counted = flops.adaptation_flops(learner, cfg, episode, [0, 2, 5])
  query = flops.query_flops(learner, cfg, episode)
  assert [query + c for c in counted] == [direct(0), direct(2), direct(5)]


def _conv_problem(ways=3, size=8):
  """A tiny conv4 (2 blocks of 4 filters) on ``size``² images, 1 shot, 2 queries."""
  learner = learner_lib.Learner(conv4.Conv4(ways, filters=4, depth=2), "xent")
  img = lambda n: jax.ShapeDtypeStruct((n, size, size, 1), jnp.float32)
  lab = lambda n: jax.ShapeDtypeStruct((n,), jnp.int32)
  return learner, Episode(img(ways), lab(ways), img(2 * ways), lab(2 * ways), None)


def _raw_meta_step(learner, cfg, episodes, algorithm="maml"):
  """The meta-step's FLOPs counted as the run would execute it: not canonicalised."""
  x = episodes.support_x
  theta = jax.eval_shape(learner.init, jax.random.key(0),
                         jax.ShapeDtypeStruct(x.shape[1:], x.dtype))
  c = dataclasses.replace(cfg, unroll=True)
  grad = lambda t, e: algorithms.get(algorithm).meta_grad(
      t, e, jax.random.key(0), learner=learner, inner=c, log=False)
  return flops.program_flops(lambda t, eps: jax.vmap(grad, (None, 0))(t, eps), theta,
                             episodes)


def _batched(episode, tasks=2):
  return jax.tree.map(lambda x: jax.ShapeDtypeStruct((tasks,) + x.shape, x.dtype),
                      episode)


def test_meta_step_flops_ignore_remat_and_the_convolution_formulation():
  learner, episode = _conv_problem()
  episodes = _batched(episode)
  cfg = InnerConfig(steps=2, lr=0.1)
  im2col = dataclasses.replace(learner, model=learner.model.clone(conv_impl="im2col"))
  native = dataclasses.replace(learner, model=learner.model.clone(conv_impl="xla"))
  remat = dataclasses.replace(cfg, remat=True)
  # As executed, they differ: remat recomputes each step's forward pass, and im2col's
  # matmuls count the padding's zeros and its gradient the sums of overlapping taps.
  raw = {(impl, r): _raw_meta_step(lrn, c, episodes)
         for impl, lrn in (("im2col", im2col), ("xla", native))
         for r, c in ((False, cfg), (True, remat))}
  assert raw["xla", True] > raw["xla", False]
  assert raw["im2col", False] != raw["xla", False]
  # Counted, they are one canonical program: native convolutions, no remat.
  counted = {flops.meta_step_flops(lrn, "maml", c, episodes)
             for lrn in (im2col, native) for c in (cfg, remat)}
  assert counted == {raw["xla", False]}
  # And so is the test-time program.
  assert (flops.adaptation_flops(im2col, remat, episode, [1, 4])
          == flops.adaptation_flops(native, cfg, episode, [1, 4]))
  assert flops.query_flops(im2col, cfg, episode) == flops.query_flops(native, cfg, episode)


def test_counts_do_not_depend_on_the_backend_auto_picks_for(monkeypatch):
  learner, episode = _conv_problem()  # conv_impl='auto'.
  episodes = _batched(episode)
  cfg = InnerConfig(steps=3, lr=0.1)

  def counts():
    return (flops.meta_step_flops(learner, "maml", cfg, episodes),
            flops.adaptation_flops(learner, cfg, episode, [0, 1, 5]),
            flops.query_flops(learner, cfg, episode),
            _raw_meta_step(learner, cfg, episodes))

  *here, raw_here = counts()
  assert layers.resolve_conv_impl("auto") == "im2col"  # This test runs on XLA:CPU.
  monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
  assert layers.resolve_conv_impl("auto") == "xla"
  *there, raw_there = counts()
  assert raw_here != raw_there  # 'auto' did change the program...
  assert here == there  # ...and the counts did not follow.


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
