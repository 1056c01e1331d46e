"""Few-shot evaluation with 95% confidence intervals, the whole curve in one pass.

Each episode is adapted once for ``max(eval_steps)`` inner steps by the algorithm's
test-time adaptation and its query set is scored after every step in ``eval_steps``
(``Algorithm.adapt_curve``; by default ``inner.adapt_curve``), so the whole
accuracy-vs-steps curve costs about as much as its longest point. Episodes are drawn
from a key, in batches vmapped inside one compiled function. Per-episode values are
kept so that fits can bootstrap over episodes.
"""

import dataclasses
from typing import Any, Sequence

import jax
import numpy as np

from metalearn import algorithms
from metalearn import compiler
from metalearn import outer
from metalearn import stats
from metalearn.algorithms import Algorithm
from metalearn.inner import InnerConfig
from metalearn.learner import Learner

Params = Any


@dataclasses.dataclass(frozen=True)
class EvalResult:
  """Per-episode metrics at each evaluated inner step.

  Attributes:
    eval_steps: the inner steps k at which the query set was scored.
    values: metric name -> ``[episodes, len(eval_steps)]`` float64 array.
  """

  eval_steps: tuple[int, ...]
  values: dict[str, np.ndarray]

  @property
  def episodes(self) -> int:
    return next(iter(self.values.values())).shape[0]

  def mean(self, metric: str) -> np.ndarray:
    return self.values[metric].mean(0)

  def ci95(self, metric: str) -> np.ndarray:
    """Half-width of the normal 95% interval of the mean (``stats.half_width``)."""
    return stats.half_width(self.values[metric], 0)


def make_eval_batch(learner: Learner, inner: InnerConfig, task_family,
                    eval_steps: Sequence[int], batch: int, task_map: str = "auto",
                    fast_compile: bool = False, algorithm: Algorithm | str = "maml"):
  """A compiled ``(theta, data, key, inner_state) -> metrics [batch, P]`` over fresh
  episodes; every episode's inner optimiser starts from ``inner_state`` (None: fresh)."""
  eval_steps = tuple(eval_steps)
  task_map = outer.resolve_task_map(task_map)
  adapt_curve = algorithms.get(algorithm).adapt_curve

  def one(theta, episode, inner_state):
    return adapt_curve(theta, episode, learner=learner, inner=inner,
                       eval_steps=eval_steps, inner_state=inner_state)

  def run(theta, data, key, inner_state):
    episodes = task_family.sample(key, data, batch)
    return outer.map_over_tasks(lambda ep: one(theta, ep, inner_state), task_map)(
        episodes)

  return compiler.jit(run, fast_compile=fast_compile)


def evaluate(theta: Params, *, learner: Learner, inner: InnerConfig, task_family,
             data: Any, eval_steps: Sequence[int], episodes: int, batch: int,
             key: jax.Array, log_fn=None, task_map: str = "auto",
             inner_state: Any = None, fast_compile: bool = False,
             algorithm: Algorithm | str = "maml") -> EvalResult:
  """Adapts on ``episodes`` fresh episodes and scores each at every ``eval_steps``.

  Args:
    theta: meta-parameters.
    learner: model, loss and batch-norm mode.
    inner: inner-loop configuration (its ``steps`` is ignored).
    task_family: evaluation episodes (``sample(key, data, n)``).
    data: the split's device data (``None`` for synthetic tasks).
    eval_steps: increasing inner steps at which to score.
    episodes: number of episodes n.
    batch: episodes per compiled call.
    key: PRNG key; batch ``i`` uses ``fold_in(key, i)``.
    log_fn: optional ``f(done, total)`` progress callback.
    task_map: how episodes are mapped ('auto', 'vmap', 'map'; see ``outer``).
    inner_state: the carried inner-optimiser state every episode starts from
      (``InnerConfig.carry_state``; ``MetaState.inner_state``), or None.
    fast_compile: compile faster for slightly slower batches (``metalearn.compiler``).
    algorithm: whose test-time adaptation runs (a record or a registered name).

  Returns:
    The per-episode results.
  """
  batch = min(batch, episodes)
  run = make_eval_batch(learner, inner, task_family, eval_steps, batch, task_map,
                        fast_compile, algorithm)
  chunks = []
  n_batches = -(-episodes // batch)
  for i in range(n_batches):
    chunks.append(run(theta, data, jax.random.fold_in(key, i), inner_state))
    if log_fn is not None and (i + 1) % max(1, n_batches // 5) == 0:
      jax.block_until_ready(chunks[-1])  # Report finished episodes, not dispatched ones.
      log_fn(min((i + 1) * batch, episodes), episodes)
  chunks = jax.device_get(chunks)
  values = {name: np.concatenate([c[name] for c in chunks])[:episodes].astype(np.float64)
            for name in chunks[0]}
  return EvalResult(tuple(int(k) for k in eval_steps), values)


def rows(result: EvalResult, *, settings: dict, flops: Sequence[float]) -> list[dict]:
  """One JSON-ready row per (metric, inner step), each carrying its settings."""
  out = []
  for metric in sorted(result.values):
    mean, ci = result.mean(metric), result.ci95(metric)
    for i, k in enumerate(result.eval_steps):
      out.append(dict(settings, metric=metric, k=k, mean=float(mean[i]),
                      ci95=float(ci[i]), episodes=result.episodes,
                      adaptation_flops=float(flops[i])))
  return out
