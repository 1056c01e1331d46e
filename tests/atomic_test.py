"""atomic: a failed write leaves the previous file whole."""

import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from metalearn import atomic


def test_a_write_that_fails_midway_leaves_the_previous_file(tmp_path):
  path = str(tmp_path / "progress.json")
  atomic.write_text(path, "old\n")

  # Fails after the file was opened for writing: a direct write would have emptied it.
  with pytest.raises(TypeError):
    atomic.write_text(path, 123)
  assert open(path).read() == "old\n"
  atomic.write_text(path, "new\n")
  assert open(path).read() == "new\n" and os.listdir(tmp_path) == ["progress.json"]


def test_a_failed_npz_or_stream_write_leaves_nothing_behind(tmp_path):
  path = str(tmp_path / "sub" / "rows.npz")
  atomic.write_npz(path, a=np.arange(3))
  with pytest.raises(RuntimeError):
    with atomic.open_for_write(path, "wb") as f:
      f.write(b"half")
      raise RuntimeError("killed mid-write")
  np.testing.assert_array_equal(np.load(path)["a"], np.arange(3))
  assert os.listdir(tmp_path / "sub") == ["rows.npz"]  # No temporary file left.


def test_a_killed_writer_leaves_the_previous_file_whole(tmp_path):
  """A process killed mid-write (SIGKILL: no cleanup runs) leaves the old file."""
  path = tmp_path / "progress.json"
  atomic.write_text(str(path), "old\n")
  script = ("import os, signal\nfrom metalearn import atomic\n"
            f"with atomic.open_for_write({str(path)!r}) as f:\n"
            "  f.write('half'); f.flush(); os.kill(os.getpid(), signal.SIGKILL)\n")
  out = subprocess.run([sys.executable, "-c", script], capture_output=True)
  assert out.returncode == -signal.SIGKILL
  assert path.read_text() == "old\n"
  leftovers = [p for p in os.listdir(tmp_path) if p != "progress.json"]
  assert len(leftovers) == 1 and leftovers[0].startswith(".tmp-progress.json-")
