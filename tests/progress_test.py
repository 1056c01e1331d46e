"""progress: training seconds and machines per checkpoint survive resumption and moves."""

import json

import pytest

from metalearn.run import progress

_INTEL = dict(cpu="Intel CPU", cpu_count=2, backend="cpu")
_AMD = dict(cpu="AMD CPU", cpu_count=2, backend="cpu")


class _Clock:
  def __init__(self):
    self.now = 1000.0

  def __call__(self):
    return self.now


@pytest.fixture
def clock(monkeypatch):
  c = _Clock()
  monkeypatch.setattr(progress.time, "time", c)
  return c


def _train(workdir, clock, start, stop, every, seconds_per_step, machine):
  """One invocation from checkpoint ``start``, killed after checkpoint ``stop``."""
  p = progress.Progress(str(workdir), start, machine=machine)
  for step in range(start + every, stop + 1, every):
    clock.now += every * seconds_per_step
    p.write(step)


def test_a_run_moved_between_machines_reports_each_machines_share(tmp_path, clock):
  _train(tmp_path, clock, 0, 300, 100, 2.0, _INTEL)     # 600 s on Intel.
  clock.now += 50.0                                      # Killed 25 steps past 300.
  _train(tmp_path, clock, 300, 500, 100, 1.0, _AMD)     # 200 s on AMD.
  _train(tmp_path, clock, 500, 600, 100, 0.5, _AMD)     # 50 s, resumed on AMD.
  assert progress.train_seconds_at(str(tmp_path), 600) == 850.0
  segments = progress.segments_at(str(tmp_path), 600)
  assert [(s.start, s.end, s.seconds, s.machine["cpu"]) for s in segments] == [
      (0, 300, 600.0, "Intel CPU"), (300, 500, 200.0, "AMD CPU"),
      (500, 600, 50.0, "AMD CPU")]
  # An earlier checkpoint's training stops at that checkpoint.
  assert [(s.start, s.end, s.seconds) for s in progress.segments_at(str(tmp_path), 400)] == [
      (0, 300, 600.0), (300, 400, 100.0)]


def test_resuming_from_an_earlier_checkpoint_drops_the_redone_record(tmp_path, clock):
  _train(tmp_path, clock, 0, 200, 100, 1.0, _INTEL)
  _train(tmp_path, clock, 200, 400, 100, 1.0, _INTEL)
  # The checkpoint at 400 was lost; training resumes at 200 on another machine.
  _train(tmp_path, clock, 200, 300, 100, 3.0, _AMD)
  info = json.loads((tmp_path / "progress.json").read_text())
  assert info["history"] == [[100, 100.0], [200, 200.0], [300, 500.0]]
  assert [s["start_step"] for s in info["segments"]] == [0, 200]
  assert [(s.seconds, s.machine["cpu"]) for s in progress.segments_at(str(tmp_path), 300)
          ] == [(200.0, "Intel CPU"), (300.0, "AMD CPU")]


def test_steps_before_segments_were_recorded_have_no_machine(tmp_path, clock):
  # A file written before segments existed, then resumed by the current code.
  (tmp_path / "progress.json").write_text(json.dumps(dict(
      step=200, train_seconds=400.0, history=[[100, 150.0], [200, 400.0]])))
  _train(tmp_path, clock, 200, 300, 100, 1.0, _AMD)
  segments = progress.segments_at(str(tmp_path), 300)
  assert [(s.start, s.end, s.seconds, s.machine) for s in segments] == [
      (0, 200, 400.0, None), (200, 300, 100.0, _AMD)]
  # A segment starting at a step the history lacks has no time.
  info = json.loads((tmp_path / "progress.json").read_text())
  info["history"] = [[100, 150.0], [300, 500.0]]
  (tmp_path / "progress.json").write_text(json.dumps(info))
  assert [s.seconds for s in progress.segments_at(str(tmp_path), 300)] == [None, None]
  assert progress.segments_at(str(tmp_path / "absent"), 5) == [
      progress.Segment(0, 5, None, None)]
