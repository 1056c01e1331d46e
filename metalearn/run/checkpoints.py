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
from metalearn.run import workdir as workdir_lib


def manager(workdir: str, max_to_keep: int = 2) -> ocp.CheckpointManager:
  directory = os.path.abspath(os.path.join(workdir, workdir_lib.CHECKPOINTS))
  options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True)
  # Naming the handler lets a fresh manager read a checkpoint's metadata before restoring.
  return ocp.CheckpointManager(directory, options=options,
                               item_handlers=ocp.StandardCheckpointHandler())


def restore_latest(mngr: ocp.CheckpointManager, template: Any,
                   step: Optional[int] = None) -> tuple[Any, Optional[int]]:
  """Restores checkpoint ``step`` (default: latest) into the structure of ``template``.

  Returns:
    ``(state, step)``, or ``(template, None)`` when there is no checkpoint.

  Raises:
    CheckpointError: the checkpoint does not fit ``template`` (another model/config)
      or cannot be read.
  """
  step = mngr.latest_step() if step is None else step
  if step is None:
    return template, None
  abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, _fields(template))
  where = f"{mngr.directory}/{step}"
  try:
    # Compared from the metadata first: a restore that fails part-way leaves orbax's
    # reads of the other arrays pending, and the message names one leaf at fault.
    _check_leaves(_leaves(mngr.item_metadata(step).tree), _leaves(abstract), where)
    state = mngr.restore(step, args=ocp.args.StandardRestore(abstract))
  except CheckpointError:
    raise
  except Exception as e:  # Unreadable files: orbax and tensorstore raise several types.
    first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    raise CheckpointError(f"{where}: checkpoint cannot be read ({first[:200]})") from e
  if dataclasses.is_dataclass(template):
    state = dataclasses.replace(template, **state)
  return state, step


def _leaves(tree: Any) -> dict[str, tuple[tuple[int, ...], Any]]:
  """``{'theta/Conv_0/kernel': (shape, dtype)}``: paths by name or index, so a saved
  namedtuple (read back as a list of dicts) and the state's own agree."""
  def name(k):
    return str(getattr(k, "key", getattr(k, "name", getattr(k, "idx", k))))
  return {"/".join(map(name, path)): (tuple(x.shape), x.dtype)
          for path, x in jax.tree_util.tree_flatten_with_path(tree)[0]}


def _check_leaves(saved: dict, expected: dict, where: str) -> None:
  for path in sorted(set(saved) | set(expected)):
    if path not in saved:
      what = f"it has no leaf {path}"
    elif path not in expected:
      what = f"it has a leaf {path} that this config lacks"
    elif saved[path] != expected[path]:
      what = (f"leaf {path} is {saved[path][0]} {saved[path][1]} there, "
              f"{expected[path][0]} {expected[path][1]} here")
    else:
      continue
    raise CheckpointError(
        f"{where}: checkpoint does not match this config's model or optimizer ({what})")


def save(mngr: ocp.CheckpointManager, step: int, state: Any) -> None:
  mngr.save(step, args=ocp.args.StandardSave(_fields(state)))


def _fields(state: Any) -> Any:
  """A dataclass as the dict of its fields that are not None; anything else as is."""
  if not dataclasses.is_dataclass(state):
    return state
  return {f.name: getattr(state, f.name) for f in dataclasses.fields(state)
          if getattr(state, f.name) is not None}
