"""Sinusoid regression tasks (Finn et al. 2017, Section 5.1), sampled on the device.

A task is ``y = a·sin(x − φ)`` with amplitude ``a ~ U[0.1, 5]``, phase ``φ ~ U[0, π]``
and inputs ``x ~ U[-5, 5]``; support and query points are drawn independently.

``pool_size > 0`` restricts meta-training to a finite set of tasks (fixed by
``pool_seed``), the regression analogue of the number of meta-training classes: the
"data for meta-training" axis of the scaling experiments. Inputs are still fresh.

``noise > 0`` adds Gaussian noise of that standard deviation to every target, support
and query, so the family has a Bayes floor of ``noise²`` on the query MSE
(``metalearn.tasks.bayes_sinusoid`` computes the Bayes-optimal curve). The noise is drawn
from its own key, so noise-free episodes are bit for bit what they were before the
option existed, and a noisy episode has the same inputs and noise-free targets as the
noise-free one of the same key.
"""

import dataclasses
import math

import jax
import jax.numpy as jnp

from metalearn.errors import ConfigError
from metalearn.tasks import base
from metalearn.tasks.episode import Episode

# ``fold_in(key, i)`` is ``split(key, n)[i]`` under jax's partitionable threefry (the
# default), so 0, 1 and 2 would redraw the amplitude, phase or input bits: 3 is the
# first stream that ``sample`` does not already use.
_NOISE_STREAM = 3


@dataclasses.dataclass(frozen=True)
class SinusoidTasks:
  """The sinusoid task family: ``sample(key, data, num_tasks)`` gives a meta-batch."""

  shots: int = 10
  queries: int = 10
  amplitude: tuple[float, float] = (0.1, 5.0)
  phase: tuple[float, float] = (0.0, math.pi)
  x_range: tuple[float, float] = (-5.0, 5.0)
  pool_size: int = 0
  pool_seed: int = 12345
  noise: float = 0.0

  def input_shape(self) -> tuple[int]:
    return (1,)

  def load(self, split: str) -> None:
    """No data: every split draws fresh tasks on the device."""
    del split

  def sample(self, key: jax.Array, data=None, num_tasks: int = 1) -> Episode:
    """Samples ``num_tasks`` episodes; ``data`` is unused (no dataset to read).

    Returns:
      An Episode with ``support_x/y [T, shots, 1]`` and ``query_x/y [T, queries, 1]``.
    """
    del data
    k_amp, k_phase, k_x = jax.random.split(key, 3)
    if self.pool_size:
      # Draw the pool from its own seed, then pick tasks from it by index.
      k_amp, k_phase = jax.random.split(jax.random.key(self.pool_seed))
      picked = jax.random.randint(jax.random.fold_in(key, 1), (num_tasks,), 0,
                                  self.pool_size)
      shape = (self.pool_size, 1, 1)
    else:
      shape = (num_tasks, 1, 1)
    amp_T1 = jax.random.uniform(k_amp, shape, minval=self.amplitude[0],
                                maxval=self.amplitude[1])
    phase_T1 = jax.random.uniform(k_phase, shape, minval=self.phase[0],
                                  maxval=self.phase[1])
    if self.pool_size:
      amp_T1, phase_T1 = amp_T1[picked], phase_T1[picked]
    n = self.shots + self.queries
    x_TxNx1 = jax.random.uniform(k_x, (num_tasks, n, 1), minval=self.x_range[0],
                                 maxval=self.x_range[1])
    y_TxNx1 = amp_T1 * jnp.sin(x_TxNx1 - phase_T1)
    if self.noise > 0:  # A Python branch: without noise, no key is split or drawn.
      y_TxNx1 = y_TxNx1 + self.noise * jax.random.normal(
          jax.random.fold_in(key, _NOISE_STREAM), y_TxNx1.shape, y_TxNx1.dtype)
    return Episode(support_x=x_TxNx1[:, : self.shots], support_y=y_TxNx1[:, : self.shots],
                   query_x=x_TxNx1[:, self.shots:], query_y=y_TxNx1[:, self.shots:])


def make(config, evaluation: bool) -> SinusoidTasks:
  """Training tasks (from ``config.sinusoid_pool`` if set) or, with ``evaluation``,
  fresh tasks with ``config.eval``'s shots and queries; both with targets noised by
  ``config.sinusoid_noise``."""
  noise = float(config.sinusoid_noise)
  if not evaluation:
    return SinusoidTasks(shots=config.shots, queries=config.queries,
                         pool_size=config.sinusoid_pool, noise=noise)
  return SinusoidTasks(shots=config.eval.shots or config.shots,
                       queries=config.eval.queries or config.queries, pool_size=0,
                       noise=noise)


def _check(config) -> None:
  for key in ("rotate", "eval.rotate"):
    if (config.eval.rotate if key == "eval.rotate" else config.rotate):
      raise ConfigError(f"config.{key}: turns image classes; the sinusoid task has none")
  if config.sinusoid_pool < 0:
    raise ConfigError(f"config.sinusoid_pool={config.sinusoid_pool}: must be >= 0 "
                      "(0: fresh tasks)")
  if not config.sinusoid_noise >= 0:  # Also rejects nan.
    raise ConfigError(f"config.sinusoid_noise={config.sinusoid_noise}: the standard "
                      "deviation of the target noise must be >= 0")


KIND = base.TaskKind(name="sinusoid", make=make, loss="mse",
                     data_name=lambda c: "sinusoid", size_keys=("sinusoid_pool",),
                     check=_check)
