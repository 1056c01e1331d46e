"""FLOPs of a program, of adaptation and of meta-training, from XLA's cost analysis.

Counts are XLA's: a matmul ``[m, k] @ [k, n]`` counts ``2·m·n·k``, elementwise ops one
per output element, a convolution the multiply-adds of its window positions that fall
inside the input (padding is not counted), a ``lax.cond`` its costliest branch — and,
the trap, a ``while`` loop's body ONCE whatever its trip count (checked on XLA:CPU, jax
0.10.2: a 5-step ``lax.scan`` of a matmul counts one matmul). The inner loop is a
``lax.scan``, so a K-step adaptation would be counted as one step. We therefore build
the program with the scan unrolled (``InnerConfig.unroll``) at two step counts, k1 < k2,
and use that every inner step costs the same: ``F(K) = F(k1) + (K − k1)·(F(k2) −
F(k1))/(k2 − k1)``. This keeps the cost of counting flat in K. (An "unrolled" 1-step
scan is still a one-trip ``while`` loop, whose counter adds 2 scalar FLOPs; from 2 steps
on the unrolled scan is straight-line code.)

What an evaluation episode costs is split in two (``adaptation_flops``,
``query_flops``):

- adaptation: ``k`` inner steps on the support set, ``k · c`` with ``c`` one inner
  step's FLOPs, so k = 0 costs exactly 0. ``c`` is ``F(3) − F(2)`` of the algorithm's
  test-time program (``Algorithm.adapted_query_loss``), both unrolled straight-line
  programs, so the query scoring they share cancels exactly.
- query scoring: one forward pass and the loss on the query set at the adapted
  parameters, ``F(0)`` of that program, once per episode whatever k. (Under a
  non-transductive batch-norm mode the pass includes the support examples whose
  statistics normalise the query.)

The test-time compute axis of a scaling fit is the adaptation alone: with the query's
cost folded in, the fitted exponent would depend on how many queries were scored.

The canonical program. Meta-training and adaptation are counted on one program per
config, whatever the run's settings that change how the maths is executed but not the
maths: the inner loop unrolled and NOT rematerialised (``InnerConfig.remat`` would
count each step's forward pass twice, +11% at K = 4), the model's convolutions
``conv_impl='xla'`` (``lax.conv_general_dilated``, the native convolution, rather than
im2col or patches, whose matmuls count the padding's zeros and whose gradients count
the sums of overlapping taps; 'auto' would pick by ``jax.default_backend()``), on the
lowered program (before XLA's simplification and fusion, which are the backend's), with
the CPU backend's cost analysis wherever a CPU device exists (``program_flops``). So a
count does not depend on ``inner.remat``, ``model.conv_impl`` or the machine. A model
is canonicalised by ``model.clone(conv_impl=...)`` when it has a ``conv_impl``
attribute (``canonical_learner``); a model with another per-backend switch would need
the same.

``program_flops`` counts the lowered program (milliseconds, what the experiments use)
or the compiled one (after XLA's simplifications and fusion, on the default backend,
what the benchmarks turn into achieved GFLOP/s).
"""

import dataclasses
from typing import Any, Callable, Mapping
import warnings

import jax

from metalearn import algorithms
from metalearn.algorithms import Algorithm
from metalearn.inner import InnerConfig
from metalearn.learner import Learner

# The native convolution of ``models.layers.CONV_IMPLS``: what FLOPs are counted with.
CANONICAL_CONV_IMPL = "xla"
# The two step counts one inner step's FLOPs are the difference of (see above).
_STEP_COUNTS = (2, 3)


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


def _counting_device() -> Any:
  """The CPU device lowered programs are counted on, or None where there is none."""
  try:
    return jax.devices("cpu")[0]
  except RuntimeError:  # JAX_PLATFORMS leaves out the CPU.
    return None


def _abstract(x: Any) -> Any:
  """An array's shape and dtype, without its device or sharding."""
  if hasattr(x, "shape") and hasattr(x, "dtype"):
    return jax.ShapeDtypeStruct(x.shape, x.dtype)
  return x


def program_flops(fn: Callable, *args, compiled: bool = False) -> float:
  """XLA's FLOPs of one call of ``jax.jit(fn)(*args)``; loop bodies count once.

  The lowered program is lowered for, and counted by, the CPU backend (when there is a
  CPU device), so its count is the same on every machine: other backends' cost
  analyses count differently or, on PJRT plugins, not at all before compilation.

  Args:
    fn: a function, jitted or not.
    *args: example arguments (arrays or ``jax.ShapeDtypeStruct``).
    compiled: count the compiled program instead of the lowered one (costs a compile;
      on the default backend, with that backend's fusion).

  Returns:
    The flop count, or NaN (with a warning) when the backend reports none.
  """
  device = None if compiled else _counting_device()
  if device is None:
    lowered = jax.jit(fn).lower(*args)
  else:
    with jax.default_device(device):
      lowered = jax.jit(fn).lower(*jax.tree.map(_abstract, args))
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


def canonical_learner(learner: Learner) -> Learner:
  """``learner`` with its model's convolutions native (``CANONICAL_CONV_IMPL``)."""
  model = learner.model
  if not hasattr(model, "conv_impl") or model.conv_impl == CANONICAL_CONV_IMPL:
    return learner
  return dataclasses.replace(learner, model=model.clone(conv_impl=CANONICAL_CONV_IMPL))


def canonical_inner(inner: InnerConfig, steps: int) -> InnerConfig:
  """``inner`` at ``steps`` steps, unrolled (counted per step), not rematerialised."""
  return dataclasses.replace(inner, steps=steps, unroll=True, remat=False)


def _test_time_flops(learner: Learner, inner: InnerConfig, episode: Any,
                     algorithm: Algorithm | str) -> Callable[[int], float]:
  """``at(k)``: FLOPs of the canonical test-time program, k inner steps then the query."""
  learner = canonical_learner(learner)
  algorithm = algorithms.get(algorithm)
  test_loss = algorithm.adapted_query_loss

  def at(k):
    cfg = canonical_inner(inner, k)
    theta = jax.eval_shape(
        lambda x: algorithm.init(learner, jax.random.key(0), x, cfg), episode.support_x)
    fn = lambda theta, episode: test_loss(theta, episode, learner=learner, inner=cfg)
    return program_flops(fn, theta, episode)
  return at


def inner_step_flops(learner: Learner, inner: InnerConfig, episode: Any,
                     algorithm: Algorithm | str = "maml") -> float:
  """FLOPs of one test-time inner step on the support set of one episode.

  Args:
    learner: the learner.
    inner: the test-time inner-loop configuration (steps field ignored).
    episode: one unbatched episode (arrays or ShapeDtypeStructs).
    algorithm: whose test-time adaptation (``Algorithm.adapted_query_loss``).

  Returns:
    ``F(3) − F(2)`` of the canonical test-time program (see the module docstring).
  """
  at = _test_time_flops(learner, inner, episode, algorithm)
  k1, k2 = _STEP_COUNTS
  return (at(k2) - at(k1)) / (k2 - k1)


def adaptation_flops(learner: Learner, inner: InnerConfig, episode: Any,
                     steps: list[int], algorithm: Algorithm | str = "maml"
                     ) -> list[float]:
  """FLOPs to adapt on one episode's support set for k inner steps, for each k.

  The query set's scoring is not included (``query_flops``): this is the test-time
  compute of k steps, ``k · inner_step_flops``, exactly 0 at k = 0.

  Args:
    learner: the learner.
    inner: the inner-loop configuration (steps field ignored).
    episode: one unbatched episode (arrays or ShapeDtypeStructs).
    steps: step counts k.
    algorithm: whose test-time adaptation (``Algorithm.adapted_query_loss``).

  Returns:
    FLOPs per episode at each k.
  """
  if not any(steps):
    return [0.0 for _ in steps]
  per_step = inner_step_flops(learner, inner, episode, algorithm)
  return [0.0 if k == 0 else k * per_step for k in steps]


def query_flops(learner: Learner, inner: InnerConfig, episode: Any,
                algorithm: Algorithm | str = "maml") -> float:
  """FLOPs to score one episode's query set (forward pass and loss), once per episode.

  Args:
    learner: the learner (its batch-norm mode says what the pass includes).
    inner: the inner-loop configuration (steps field ignored).
    episode: one unbatched episode (arrays or ShapeDtypeStructs).
    algorithm: whose test-time program (``Algorithm.adapted_query_loss``).

  Returns:
    The canonical test-time program's FLOPs at 0 inner steps.
  """
  return _test_time_flops(learner, inner, episode, algorithm)(0)


def meta_step_flops(learner: Learner, algorithm: Algorithm | str, inner: InnerConfig,
                    episodes: Any) -> float:
  """FLOPs of one meta-gradient over a meta-batch of episodes (leading task axis), as
  a training step that does not log runs it (no metric-only forward passes), on the
  canonical program (no remat, native convolutions; see the module docstring).

  The outer optimiser's update (a few FLOPs per parameter) is not included. With
  ``inner.carry_state`` (Reptile's carried inner Adam) the tasks run in sequence, each
  from the previous task's optimiser state; a task does the same arithmetic from a
  fresh state, so the tasks are counted side by side.
  """
  learner = canonical_learner(learner)
  x = episodes.support_x
  algorithm = algorithms.get(algorithm)

  def at(k):
    cfg = dataclasses.replace(canonical_inner(inner, k), carry_state=False)
    theta = jax.eval_shape(lambda x: algorithm.init(learner, jax.random.key(0), x, cfg),
                           jax.ShapeDtypeStruct(x.shape[1:], x.dtype))
    fn = algorithm.bind(algorithm.meta_grad, learner=learner, inner=cfg, log=False)
    batched = lambda t, eps: jax.vmap(fn, in_axes=(None, 0, None))(
        t, eps, jax.random.key(0))
    return program_flops(batched, theta, episodes)

  return at_steps(at, inner.steps)
