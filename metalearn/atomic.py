"""Files written whole or not at all: a reader never sees half of one."""

import contextlib
import os
import tempfile
from typing import IO, Iterator

import numpy as np


@contextlib.contextmanager
def open_for_write(path: str, mode: str = "w", **kwargs) -> Iterator[IO]:
  """Opens a temporary file beside ``path`` (making the directory) for writing. When
  the block ends without an exception, the file is flushed to disk (fsync) and moved
  onto ``path`` with ``os.replace``. If the block raises, ``path`` keeps its previous
  content (or stays absent) and the temporary file is removed; if the process is
  killed, the temporary file stays behind as ``.tmp-<name>-*``, which no reader opens.

    with atomic.open_for_write("table.csv", newline="") as f:
      csv.writer(f).writerows(rows)
  """
  directory = os.path.dirname(path) or "."
  os.makedirs(directory, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".tmp-{os.path.basename(path)}-")
  try:
    with os.fdopen(fd, mode, **kwargs) as f:
      yield f
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise


def write_text(path: str, text: str) -> None:
  """Writes ``text`` to ``path`` whole or not at all (``open_for_write``)."""
  with open_for_write(path) as f:
    f.write(text)


def write_npz(path: str, **arrays: np.ndarray) -> None:
  """Writes an uncompressed ``.npz`` to ``path`` whole or not at all."""
  with open_for_write(path, "wb") as f:
    np.savez(f, **arrays)
