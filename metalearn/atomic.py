"""Files written whole or not at all: a reader never sees half of one."""

import os


def write_text(path: str, text: str) -> None:
  """Writes ``text`` to ``path`` through ``path.tmp`` and ``os.replace``, so an
  interrupted write leaves the previous file (or none), never a truncated one."""
  with open(path + ".tmp", "w") as f:
    f.write(text)
  os.replace(path + ".tmp", path)
