"""metrics_writer: the TensorBoard events read back with the steps and times written."""

import glob
import time

import pytest

from metalearn import metrics_writer


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
