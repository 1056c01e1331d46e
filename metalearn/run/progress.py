"""``<workdir>/progress.json``: how long training took to reach each checkpoint, and where.

A long run is resumed many times, and may move from one machine to another between
invocations. Killed invocations never reach ``run.json`` (it is written when an
invocation ends), so this file, rewritten at every checkpoint, is the record of
training. It holds:

- ``step`` and ``train_seconds``: the last checkpoint and the training seconds spent to
  reach it, summed over every invocation, including killed ones (whose time after their
  last checkpoint is redone, so not counted);
- ``history``: ``[step, train_seconds]`` at every checkpoint, so that a result evaluated
  at an earlier checkpoint can state its own training time;
- ``segments``: one ``{"start_step", "started", "machine"}`` per invocation whose work
  was kept, so a result can say which machines trained it and for how long each. Files
  written before segments were recorded have none for their first steps; those steps'
  machine is unrecorded (``Segment.machine`` is None).
"""

import dataclasses
import json
import os
import time
from typing import Optional

import jax

from metalearn import atomic
from metalearn.run import provenance
from metalearn.run import workdir as workdir_lib


class Progress:
  """Writes ``progress.json`` at each checkpoint of one training invocation."""

  def __init__(self, workdir: str, start_step: int, machine: Optional[dict] = None):
    """Continues the record of ``workdir`` from checkpoint ``start_step``.

    Args:
      workdir: the run's workdir.
      start_step: the checkpoint this invocation resumed from (0 for a new run). What
        was recorded after it (steps redone now) is dropped.
      machine: where this invocation runs (default: ``provenance.machine()``).
    """
    self.path = os.path.join(workdir, workdir_lib.PROGRESS)
    self.before, self.history, self.segments = 0.0, [], []
    if start_step and os.path.exists(self.path):
      with open(self.path) as f:
        info = json.load(f)
      self.history = [h for h in info.get("history", [[info["step"],
                                                        info["train_seconds"]]])
                      if h[0] <= start_step]
      self.before = self.history[-1][1] if self.history else float(info["train_seconds"])
      self.segments = [s for s in info.get("segments", []) if s["start_step"] < start_step]
    self.segments.append(dict(start_step=start_step, started=provenance.now(),
                              machine=machine or provenance.machine()))
    self.start = time.time()

  def write(self, step: int) -> None:
    """Records checkpoint ``step`` (atomically; process 0 only)."""
    if jax.process_index() != 0:
      return
    seconds = round(self.before + time.time() - self.start, 1)
    self.history.append([step, seconds])
    info = dict(step=step, train_seconds=seconds,
                updated=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                history=self.history, segments=self.segments)
    atomic.write_text(self.path, json.dumps(info) + "\n")


def _read(workdir: str) -> Optional[dict]:
  return workdir_lib.read_json(workdir, workdir_lib.PROGRESS)


def _history(info: dict) -> dict[int, float]:
  return dict(map(tuple, info.get("history", []))) | {info["step"]: info["train_seconds"]}


def train_seconds_at(workdir: str, step: int) -> Optional[float]:
  """Training seconds recorded when checkpoint ``step`` was saved, or None."""
  info = _read(workdir)
  return None if info is None else _history(info).get(step)


@dataclasses.dataclass(frozen=True)
class Segment:
  """Steps ``[start, end)`` of training, run on ``machine`` (None: not recorded) in
  ``seconds`` (None: the history lacks a checkpoint at one of the ends)."""
  start: int
  end: int
  seconds: Optional[float]
  machine: Optional[dict]
  started: Optional[str] = None


def segments_at(workdir: str, step: int) -> list[Segment]:
  """The training that produced checkpoint ``step``, one segment per invocation (or per
  unrecorded stretch before the first recorded one), in order of steps."""
  info = _read(workdir)
  if info is None:
    return [Segment(0, step, None, None)]
  seconds = {0: 0.0} | _history(info)
  marks = [s for s in info.get("segments", []) if s["start_step"] < step]
  if not marks or marks[0]["start_step"] > 0:
    marks = [dict(start_step=0, machine=None, started=None)] + marks
  ends = [m["start_step"] for m in marks[1:]] + [step]
  out = []
  for mark, end in zip(marks, ends):
    start = mark["start_step"]
    took = (None if start not in seconds or end not in seconds
            else round(seconds[end] - seconds[start], 1))
    out.append(Segment(start, end, took, mark["machine"], mark["started"]))
  return out
