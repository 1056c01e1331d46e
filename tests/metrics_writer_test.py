"""metrics_writer: the TensorBoard events read back with the steps and times written."""

import glob
import struct
import time

import pytest

from metalearn.run import metrics_writer
from metalearn.run import workdir


def test_tensorboard_wall_times_reads_back_each_logged_step(tmp_path):
  start = time.time()
  writer = metrics_writer.MetricWriter(str(tmp_path))
  for step in (100, 200, 300):
    writer.write(step, dict(loss=1.0 / step, accuracy=0.5))
  writer.close()
  end = time.time()
  (path,) = glob.glob(str(tmp_path / "tensorboard" / "events.out.tfevents.*"))
  events = metrics_writer.tensorboard_wall_times(path)
  assert [s for s, _ in events] == [100, 100, 200, 200, 300, 300]
  times = [t for _, t in events]
  assert times == sorted(times) and start - 1 <= times[0] and times[-1] <= end + 1
  with open(path, "rb") as f:
    data = f.read()
  with open(path, "wb") as f:
    f.write(data[:-6])  # A torn last record is an error, not a silent short read.
  with pytest.raises(ValueError, match="truncated"):
    metrics_writer.tensorboard_wall_times(path)
  (n,) = struct.unpack("<Q", data[:8])  # The first frame's length.
  for at, what in ((3, "corrupt record length"), (12 + n // 2, "corrupt record at")):
    flipped = bytearray(data)
    flipped[at] ^= 0x10  # One bit, in a length header and then in a record's data.
    with open(path, "wb") as f:
      f.write(bytes(flipped))
    with pytest.raises(ValueError, match=what):
      metrics_writer.tensorboard_wall_times(path)


def test_frames_are_checked_with_tfrecords_masked_crc32c():
  """The CRC that TFRecord frames carry is CRC-32C (Castagnoli), rotated right by 15
  bits plus 0xa282ead8; CRC-32C's published check value for b"123456789" is
  0xE3069283 (RFC 3720, B.4)."""
  from tensorboardX.record_writer import masked_crc32c
  crc = 0xE3069283
  assert masked_crc32c(b"123456789") == (((crc >> 15) | (crc << 17)) + 0xA282EAD8) % 2**32


def test_read_metrics_leaves_out_a_row_being_written_and_names_a_corrupt_line(tmp_path):
  writer = metrics_writer.MetricWriter(str(tmp_path), tensorboard=False)
  for step in (100, 200):
    writer.write(step, dict(loss=1.0 / step))
  path = tmp_path / "metrics.jsonl"
  with open(path, "a") as f:
    f.write('{"step": 300, "lo')  # A live run's append, caught half-way.
  assert [r["step"] for r in workdir.read_metrics(str(tmp_path))] == [100, 200]
  lines = path.read_text().splitlines(keepends=True)
  path.write_text(lines[0] + "{not json\n" + lines[1])
  with pytest.raises(ValueError, match=r"metrics.jsonl:2: not a JSON row"):
    workdir.read_metrics(str(tmp_path))
