"""Orbax checkpoints of the meta-training state, restored automatically from a workdir.

Orbax writes each step to a temporary directory and renames it when complete, so an
interrupted save is never read back as a checkpoint. A dataclass state (``MetaState``)
is stored as a dict of its fields that are not None, so a field added later with a
None default (``inner_state``) leaves the earlier checkpoints readable.
"""

import dataclasses
import os
from typing import Any, Optional

import jax
import orbax.checkpoint as ocp

from metalearn.errors import CheckpointError


def manager(workdir: str, max_to_keep: int = 2) -> ocp.CheckpointManager:
  directory = os.path.abspath(os.path.join(workdir, "checkpoints"))
  options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True)
  return ocp.CheckpointManager(directory, options=options)


def restore_latest(mngr: ocp.CheckpointManager, template: Any,
                   step: Optional[int] = None) -> tuple[Any, Optional[int]]:
  """Restores checkpoint ``step`` (default: latest) into the structure of ``template``.

  Returns:
    ``(state, step)``, or ``(template, None)`` when there is no checkpoint.

  Raises:
    CheckpointError: the checkpoint does not fit ``template`` (another model/config).
  """
  step = mngr.latest_step() if step is None else step
  if step is None:
    return template, None
  abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, _fields(template))
  try:
    state = mngr.restore(step, args=ocp.args.StandardRestore(abstract))
    if dataclasses.is_dataclass(template):
      state = dataclasses.replace(template, **state)
  except Exception as e:  # Orbax raises several types for structure/shape mismatches.
    first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    raise CheckpointError(
        f"{mngr.directory}/{step}: checkpoint does not match this config's model or "
        f"optimizer ({first[:200]})") from e
  _check_shapes(template, state, f"{mngr.directory}/{step}")
  return state, step


def _check_shapes(template, state, where):
  t_leaves, t_def = jax.tree.flatten(template)
  s_leaves, s_def = jax.tree.flatten(state)
  if t_def != s_def:
    raise CheckpointError(f"{where}: checkpoint has another parameter structure")
  for a, b in zip(t_leaves, s_leaves):
    if a.shape != b.shape or a.dtype != b.dtype:
      raise CheckpointError(f"{where}: checkpoint leaf {b.shape} {b.dtype} does not "
                            f"match the model's {a.shape} {a.dtype}")


def save(mngr: ocp.CheckpointManager, step: int, state: Any) -> None:
  mngr.save(step, args=ocp.args.StandardSave(_fields(state)))


def _fields(state: Any) -> Any:
  """A dataclass as the dict of its fields that are not None; anything else as is."""
  if not dataclasses.is_dataclass(state):
    return state
  return {f.name: getattr(state, f.name) for f in dataclasses.fields(state)
          if getattr(state, f.name) is not None}
