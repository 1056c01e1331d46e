"""FLOPs of adaptation and of meta-training, read from XLA's cost analysis.

XLA's cost analysis counts a loop body once whatever its trip count, so a program
with a ``lax.scan`` over K inner steps reports the FLOPs of one step. We therefore
lower the program with the scan unrolled at two step counts, k1 < k2, and use that
every inner step costs the same: ``F(K) = F(k1) + (K − k1)·(F(k2) − F(k1))/(k2 − k1)``.
Lowering (no compilation) takes milliseconds, so this is cheap for any model.
"""

import dataclasses
import functools
from typing import Any, Callable

import jax

from metalearn import algorithms
from metalearn import inner as inner_lib
from metalearn.inner import InnerConfig
from metalearn.learner import Learner


def lowered_flops(fn: Callable, *args) -> float:
  """FLOPs of ``jax.jit(fn)(*args)`` from the cost analysis of its lowered program."""
  analysis = jax.jit(fn).lower(*args).cost_analysis()
  if isinstance(analysis, (list, tuple)):
    analysis = analysis[0] if analysis else {}
  if not analysis or "flops" not in analysis:
    return float("nan")
  return float(analysis["flops"])


def linear_in_steps(flops_at: Callable[[int], float], k1: int = 1, k2: int = 2
                    ) -> tuple[float, float]:
  """``(intercept, per_step)`` of a FLOP count that is affine in the step count."""
  f1, f2 = flops_at(k1), flops_at(k2)
  per_step = (f2 - f1) / (k2 - k1)
  return f1 - k1 * per_step, per_step


def adaptation_flops(learner: Learner, inner: InnerConfig, episode: Any,
                     steps: list[int]) -> list[float]:
  """FLOPs to adapt on one episode for k steps and score its query set, for each k.

  Args:
    learner: the learner.
    inner: the inner-loop configuration (steps field ignored).
    episode: one unbatched episode (arrays or ShapeDtypeStructs).
    steps: step counts k.

  Returns:
    FLOPs per episode at each k.
  """
  theta = jax.eval_shape(learner.init, jax.random.key(0), episode.support_x)

  def at(k):
    cfg = dataclasses.replace(inner, steps=k, unroll=True, remat=False)

    def fn(theta, episode):
      adapted, _ = inner_lib.adapt(theta, lambda p: learner.support_loss(p, episode),
                                   cfg=cfg)
      return learner.query_loss(adapted, episode)[0]

    return lowered_flops(fn, theta, episode)

  base, per_step = linear_in_steps(at)
  return [base + k * per_step for k in steps]


def meta_step_flops(learner: Learner, algorithm: str, inner: InnerConfig, episodes: Any,
                    ) -> float:
  """FLOPs of one meta-gradient over a meta-batch of episodes (leading task axis).

  The outer optimiser's update (a few FLOPs per parameter) is not included.
  """
  x = episodes.support_x
  theta = jax.eval_shape(learner.init, jax.random.key(0),
                         jax.ShapeDtypeStruct(x.shape[1:], x.dtype))
  meta_grad = algorithms.get(algorithm)

  def at(k):
    cfg = dataclasses.replace(inner, steps=k, unroll=True)
    fn = functools.partial(meta_grad, learner=learner, inner=cfg)
    batched = lambda t, eps: jax.vmap(fn, in_axes=(None, 0, None))(
        t, eps, jax.random.key(0))
    return lowered_flops(batched, theta, episodes)

  if inner.steps <= 2:
    return at(inner.steps)
  base, per_step = linear_in_steps(at)
  return base + inner.steps * per_step
