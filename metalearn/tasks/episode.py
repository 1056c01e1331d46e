"""The episode: a support set to adapt on and a query set to score the adaptation.

An episode is a pytree, so a meta-batch of T episodes is the same dataclass with a
leading task axis on every leaf (``support_x_TxSx...``), produced by ``jax.vmap`` of a
sampler or by sampling functions that take a task count.
"""

from typing import Optional

from flax import struct
import jax


@struct.dataclass
class Episode:
  """One few-shot task (or a batch of them, with a leading task axis).

  Attributes:
    support_x: inputs to adapt on, ``[S, ...]`` (images ``[S, H, W, C]`` float32).
    support_y: targets, ``[S]`` int32 labels in ``[0, ways)`` or ``[S, 1]`` float32.
    query_x: inputs to score on, ``[Q, ...]``.
    query_y: targets for the query inputs.
    class_ids: ``[ways]`` int32 global class ids for inspection (label ``i`` is global
      class ``class_ids[i]``); ``None`` for regression tasks.
  """

  support_x: jax.Array
  support_y: jax.Array
  query_x: jax.Array
  query_y: jax.Array
  class_ids: Optional[jax.Array] = None
