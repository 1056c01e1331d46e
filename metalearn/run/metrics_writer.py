"""One writer for training metrics: JSON lines and TensorBoard events, process 0 only.

Rows are appended to ``<workdir>/metrics.jsonl``; a resumed run first drops the rows
logged after the checkpoint it resumes from, so the file reads as one uninterrupted
run.
"""

import json
import os
import struct
from typing import Optional

import jax
import numpy as np

from metalearn import atomic
from metalearn.run import workdir as workdir_lib


class MetricWriter:
  """Writes ``{'step': s, **scalars}`` rows; a no-op on processes other than 0."""

  def __init__(self, workdir: str, resume_step: Optional[int] = None,
               tensorboard: bool = True):
    self.active = jax.process_index() == 0
    self.path = os.path.join(workdir, workdir_lib.METRICS)
    self._tb = None
    if not self.active:
      return
    if resume_step is not None and os.path.exists(self.path):
      _truncate_after(self.path, resume_step)
    if tensorboard:
      try:
        from tensorboardX import SummaryWriter  # pylint: disable=g-import-not-at-top
        self._tb = SummaryWriter(os.path.join(workdir, workdir_lib.TENSORBOARD))
      except ImportError:
        self._tb = None

  def write(self, step: int, scalars: dict) -> None:
    if not self.active:
      return
    row = {"step": int(step)}
    row.update({k: float(np.asarray(v)) for k, v in scalars.items()})
    with open(self.path, "a") as f:
      f.write(json.dumps(row) + "\n")
    if self._tb is not None:
      for k, v in row.items():
        if k != "step":
          self._tb.add_scalar(k, v, step)

  def close(self) -> None:
    if self._tb is not None:
      self._tb.close()


def _truncate_after(path: str, step: int) -> None:
  """Keeps rows with ``step <= step``; drops a torn last line. Atomic replace."""
  kept = []
  with open(path) as f:
    for line in f:
      try:
        row = json.loads(line)
      except json.JSONDecodeError:
        continue
      if row.get("step", 0) <= step:
        kept.append(line if line.endswith("\n") else line + "\n")
  atomic.write_text(path, "".join(kept))


def tensorboard_wall_times(path: str) -> list[tuple[int, float]]:
  """``(step, wall time in s since the epoch)`` of each scalar event in a TensorBoard
  event file, in file order: when a run logged each step, for runs whose training time
  predates ``progress.json``. Records are TFRecord frames (length, its masked CRC-32C,
  data, its masked CRC-32C); a torn or corrupt frame is an error."""
  from tensorboardX.proto import event_pb2  # pylint: disable=g-import-not-at-top
  from tensorboardX.record_writer import masked_crc32c  # pylint: disable=g-import-not-at-top
  with open(path, "rb") as f:
    data = f.read()
  out, i = [], 0
  while i < len(data):
    if i + 12 > len(data):
      raise ValueError(f"{path}: truncated record at byte {i}")
    header, (header_crc,) = data[i:i + 8], struct.unpack("<I", data[i + 8:i + 12])
    if masked_crc32c(header) != header_crc:
      raise ValueError(f"{path}: corrupt record length at byte {i} (CRC mismatch)")
    (n,) = struct.unpack("<Q", header)
    if i + 12 + n + 4 > len(data):
      raise ValueError(f"{path}: truncated record at byte {i}")
    body = data[i + 12:i + 12 + n]
    if masked_crc32c(body) != struct.unpack("<I", data[i + 12 + n:i + 16 + n])[0]:
      raise ValueError(f"{path}: corrupt record at byte {i} (CRC mismatch)")
    event = event_pb2.Event.FromString(body)
    i += 16 + n
    if event.summary.value:
      out.append((int(event.step), float(event.wall_time)))
  return out
