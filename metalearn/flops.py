"""FLOPs of a program, of adaptation and of meta-training, from XLA's cost analysis.

Counts are XLA's: a matmul ``[m, k] @ [k, n]`` counts ``2·m·n·k``, elementwise ops one
per output element, a ``lax.cond`` its costliest branch — and, the trap, a ``while``
loop's body ONCE whatever its trip count (checked on XLA:CPU, jax 0.10.2: a 5-step
``lax.scan`` of a matmul counts one matmul). The inner loop is a ``lax.scan``, so a
K-step adaptation would be counted as one step. We therefore build the program with
the scan unrolled (``InnerConfig.unroll``) at two step counts, k1 < k2, and use that
every inner step costs the same: ``F(K) = F(k1) + (K − k1)·(F(k2) − F(k1))/(k2 − k1)``.
This keeps the cost of counting flat in K.

``program_flops`` counts the lowered program (milliseconds, what the experiments use)
or the compiled one (after XLA's simplifications and fusion, what the benchmarks turn
into achieved GFLOP/s).
"""

import dataclasses
import functools
from typing import Any, Callable, Mapping
import warnings

import jax

from metalearn import algorithms
from metalearn.algorithms import Algorithm
from metalearn.inner import InnerConfig
from metalearn.learner import Learner


def _cost_dict(cost: Any) -> Mapping[str, float]:
  """Normalises ``cost_analysis()``: jax versions return a dict or a list of dicts."""
  if cost is None:
    return {}
  if isinstance(cost, Mapping):
    return cost
  if isinstance(cost, (list, tuple)):
    merged: dict[str, float] = {}
    for part in cost:  # One dict per computation/device; sum what is summable.
      for k, v in (part or {}).items():
        if isinstance(v, (int, float)):
          merged[k] = merged.get(k, 0.0) + float(v)
    return merged
  raise TypeError(f"unexpected cost_analysis() result of type {type(cost).__name__}")


def program_flops(fn: Callable, *args, compiled: bool = False) -> float:
  """XLA's FLOPs of one call of ``jax.jit(fn)(*args)``; loop bodies count once.

  Args:
    fn: a function, jitted or not.
    *args: example arguments (arrays or ``jax.ShapeDtypeStruct``).
    compiled: count the compiled program instead of the lowered one (costs a compile).

  Returns:
    The flop count, or NaN (with a warning) when the backend reports none.
  """
  lowered = jax.jit(fn).lower(*args)
  cost = _cost_dict((lowered.compile() if compiled else lowered).cost_analysis())
  if "flops" not in cost:
    warnings.warn("XLA cost analysis has no 'flops' entry on backend "
                  f"{jax.default_backend()!r}; returning NaN", RuntimeWarning,
                  stacklevel=2)
    return float("nan")
  return float(cost["flops"])


def linear_in_steps(flops_at: Callable[[int], float], k1: int = 1, k2: int = 2
                    ) -> tuple[float, float]:
  """``(intercept, per_step)`` of a FLOP count that is affine in the step count."""
  f1, f2 = flops_at(k1), flops_at(k2)
  per_step = (f2 - f1) / (k2 - k1)
  return f1 - k1 * per_step, per_step


def at_steps(flops_at: Callable[[int], float], steps: int) -> float:
  """``flops_at(steps)``, counted directly up to 2 steps and extrapolated beyond."""
  if steps <= 2:
    return flops_at(steps)
  base, per_step = linear_in_steps(flops_at)
  return base + steps * per_step


def adaptation_flops(learner: Learner, inner: InnerConfig, episode: Any,
                     steps: list[int], algorithm: Algorithm | str = "maml"
                     ) -> list[float]:
  """FLOPs to adapt on one episode for k steps and score its query set, for each k.

  Args:
    learner: the learner.
    inner: the inner-loop configuration (steps field ignored).
    episode: one unbatched episode (arrays or ShapeDtypeStructs).
    steps: step counts k.
    algorithm: whose test-time adaptation (``Algorithm.adapted_query_loss``).

  Returns:
    FLOPs per episode at each k.
  """
  theta = jax.eval_shape(learner.init, jax.random.key(0), episode.support_x)
  test_loss = algorithms.get(algorithm).adapted_query_loss

  def at(k):
    cfg = dataclasses.replace(inner, steps=k, unroll=True, remat=False)
    fn = lambda theta, episode: test_loss(theta, episode, learner=learner, inner=cfg)
    return program_flops(fn, theta, episode)

  base, per_step = linear_in_steps(at)
  return [base + k * per_step for k in steps]


def meta_step_flops(learner: Learner, algorithm: Algorithm | str, inner: InnerConfig,
                    episodes: Any) -> float:
  """FLOPs of one meta-gradient over a meta-batch of episodes (leading task axis), as
  a training step that does not log runs it (no metric-only forward passes).

  The outer optimiser's update (a few FLOPs per parameter) is not included. With
  ``inner.carry_state`` (Reptile's carried inner Adam) the tasks run in sequence, each
  from the previous task's optimiser state; a task does the same arithmetic from a
  fresh state, so the tasks are counted side by side.
  """
  x = episodes.support_x
  theta = jax.eval_shape(learner.init, jax.random.key(0),
                         jax.ShapeDtypeStruct(x.shape[1:], x.dtype))
  meta_grad = algorithms.get(algorithm).meta_grad

  def at(k):
    cfg = dataclasses.replace(inner, steps=k, unroll=True, carry_state=False)
    fn = functools.partial(meta_grad, learner=learner, inner=cfg, log=False)
    batched = lambda t, eps: jax.vmap(fn, in_axes=(None, 0, None))(
        t, eps, jax.random.key(0))
    return program_flops(batched, theta, episodes)

  return at_steps(at, inner.steps)
