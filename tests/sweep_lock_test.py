"""Several sweep processes sharing one workdir: each point is scored once, a process
skips the homes another holds, and a lock never outlives its holder. Scoring is
replaced by a recorder, so these tests check the scheduling, not the training."""

import fcntl
import os

import pytest

from experiments import compute_scaling
from metalearn.run import workdir as workdir_lib
from metalearn.scaling import sweep


@pytest.fixture
def recorded(monkeypatch):
  """A sweep whose scoring only records the point; a point is done once recorded."""
  scored: list[str] = []
  monkeypatch.setattr(sweep, "_point_info", lambda c, p, cache=None: dict(point=p.name))
  monkeypatch.setattr(sweep, "_cost", lambda info, p: 1.0)
  monkeypatch.setattr(sweep, "is_done", lambda p, workdir: p.name in scored)

  def score(p, workdir, log_fn):
    scored.append(p.name)
    return True

  monkeypatch.setattr(sweep, "_score", score)
  return compute_scaling.get_config("smoke"), scored


def _hold(workdir: str, home: str) -> int:
  """Takes ``home``'s lock the way another process would (its own open file)."""
  path = workdir_lib.point_dir(workdir, home)
  os.makedirs(path, exist_ok=True)
  fd = os.open(os.path.join(path, sweep.LOCK), os.O_RDWR | os.O_CREAT)
  fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
  return fd


def test_a_held_home_is_skipped_and_scored_once_released(recorded, tmp_path):
  c, scored = recorded
  names = {p.name: p.home for p in sweep.grid(c)}
  base = [n for n, h in names.items() if h == "base_s0"]
  assert len(base) > 1  # The base run is the home of its evaluated points too.
  fd = _hold(str(tmp_path), "base_s0")
  logs: list[str] = []
  sweep.run(c, str(tmp_path), log_fn=logs.append)
  assert not set(base) & set(scored)
  assert sorted(scored) == sorted(n for n in names if n not in base)
  assert any("skipped, another process" in m and "base_s0" in m for m in logs)
  fcntl.flock(fd, fcntl.LOCK_UN)
  os.close(fd)
  sweep.run(c, str(tmp_path), log_fn=logs.append)
  assert sorted(scored) == sorted(names)  # Every point once, none twice.


def test_a_point_finished_by_another_process_meanwhile_is_not_rescored(
    recorded, tmp_path, monkeypatch):
  c, scored = recorded
  points = sweep.grid(c)
  first, later = points[0], next(p for p in points[1:] if p.home != points[0].home)
  real_score = sweep._score

  def score_and_finish_another(p, workdir, log_fn):  # The other process's work.
    if p.name == first.name:
      scored.append(later.name)
    return real_score(p, workdir, log_fn)

  monkeypatch.setattr(sweep, "_score", score_and_finish_another)
  sweep.run(c, str(tmp_path), log_fn=lambda m: None)
  assert scored.count(later.name) == 1


def test_the_lock_is_released_when_the_sweep_ends_or_fails(recorded, tmp_path,
                                                           monkeypatch):
  c, _ = recorded
  sweep.run(c, str(tmp_path), log_fn=lambda m: None)
  os.close(_hold(str(tmp_path), sweep.grid(c)[-1].home))

  def fail(p, workdir, log_fn):
    raise RuntimeError("training failed")

  monkeypatch.setattr(sweep, "is_done", lambda p, workdir: False)
  monkeypatch.setattr(sweep, "_score", fail)
  with pytest.raises(RuntimeError):
    sweep.run(c, str(tmp_path), log_fn=lambda m: None)
  os.close(_hold(str(tmp_path), sweep.grid(c)[0].home))
