"""atomic: a failed write leaves the previous file whole."""

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
  assert open(path).read() == "new\n" and not (tmp_path / "progress.json.tmp").exists()
