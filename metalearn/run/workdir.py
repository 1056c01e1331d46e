"""Every file name in a run's workdir (and a sweep's), and every reader of them.

A run's workdir holds ``config.json`` (the config, written once its checks pass),
``checkpoints/<step>/`` (orbax), ``metrics.jsonl`` and ``tensorboard/`` (training and
validation metrics), ``progress.json`` (training time per checkpoint), ``run.json``
(one entry per invocation: command, date, machine), ``published.json`` (results
directories: the paper's number) and ``eval/`` with one pair of files per evaluation:
``<stem>.npz`` (per-episode values) and ``<stem>.jsonl`` (one row per metric and
test-time step, each row carrying every setting of its protocol).

An evaluation's stem names its checkpoint, seed, split, episode shape and largest step,
and ends with the digest of its whole ``EvalProtocol``, so two evaluations that differ
in any setting that changes their numbers never share a file. Readers select
evaluations by the protocol read from the rows, never by file names or their order;
files written before the digest was added are read the same way.

A sweep's workdir holds ``points/<name>/`` (one run workdir per point, plus
``point.json``: the point's axis, value and FLOPs) beside the sweep's outputs.
"""

import dataclasses
import glob
import json
import os
from typing import Any, Optional

import numpy as np

from metalearn import atomic
from metalearn import config as config_lib
from metalearn.config import EvalProtocol
from metalearn.errors import CheckpointError
from metalearn.errors import ConfigError

CONFIG = "config.json"
CHECKPOINTS = "checkpoints"
METRICS = "metrics.jsonl"
TENSORBOARD = "tensorboard"
PROGRESS = "progress.json"
RUN = "run.json"
PUBLISHED = "published.json"
EVAL = "eval"
POINTS = "points"
POINT = "point.json"


def path(workdir: str, name: str) -> str:
  """``<workdir>/<name>`` for one of the names above."""
  return os.path.join(workdir, name)


def has_checkpoints(workdir: str) -> bool:
  d = path(workdir, CHECKPOINTS)
  return os.path.isdir(d) and any(n.isdigit() for n in os.listdir(d))


def read_json(workdir: str, name: str) -> Any:
  """A JSON file of the workdir; None when it does not exist."""
  p = path(workdir, name)
  if not os.path.exists(p):
    return None
  with open(p) as f:
    return json.load(f)


def write_json(workdir: str, name: str, obj: Any) -> None:
  """Writes a JSON file of the workdir whole (``atomic``), keys sorted."""
  atomic.write_text(path(workdir, name), json.dumps(obj, indent=2, sort_keys=True))


def prepare(config, workdir: str) -> None:
  """Creates the workdir, refuses a config that does not match its checkpoints, and
  writes ``config.json`` (only after every check has passed)."""
  try:
    os.makedirs(workdir, exist_ok=True)
  except OSError as e:
    raise ConfigError(f"--workdir={workdir}: cannot create it ({e.strerror})") from e
  if not os.access(workdir, os.W_OK | os.R_OK):
    raise ConfigError(f"--workdir={workdir}: not readable and writable")
  new = json.loads(config.to_json_best_effort())
  old = read_json(workdir, CONFIG)
  if old is not None and has_checkpoints(workdir):
    changed = config_lib.changed_keys(old, new)
    why = (f" (the {old['outer'].get('schedule', 'constant')} outer schedule of these "
           f"checkpoints ends at num_steps={old['num_steps']})"
           if "num_steps" in changed else "")
    if changed:
      raise CheckpointError(
          f"--workdir={workdir} holds checkpoints of another config (differs in "
          f"{', '.join('config.' + k for k in changed[:5])}){why}; use a new workdir")
  write_json(workdir, CONFIG, new)


def read_metrics(workdir: str) -> list[dict]:
  """The rows of ``metrics.jsonl``, also while its run is still appending to it.

  A last line without its newline is a row being written and is left out; any other
  line that is not JSON is an error.

  Raises:
    ValueError: a complete line is not JSON (names the line).
  """
  p = path(workdir, METRICS)
  rows = []
  with open(p) as f:
    for i, line in enumerate(f, 1):
      if not line.endswith("\n"):
        break  # Torn: the writer is mid-append (or was killed there).
      if not line.strip():
        continue
      try:
        rows.append(json.loads(line))
      except json.JSONDecodeError as e:
        raise ValueError(f"{p}:{i}: not a JSON row ({e.msg})") from None
  return rows


@dataclasses.dataclass(frozen=True)
class Evaluation:
  """One evaluation file pair: its stem (path without extension), checkpoint step and
  protocol."""

  stem: str
  step: Optional[int]
  protocol: EvalProtocol

  def rows(self) -> list[dict]:
    return _read_rows(self.stem + ".jsonl")

  def values(self) -> dict[str, np.ndarray]:
    """Per-episode values: metric -> ``[episodes, len(protocol.steps)]`` float64."""
    with np.load(self.stem + ".npz") as npz:
      return {k: np.asarray(npz[k], np.float64) for k in npz.files if k != "eval_steps"}


def eval_stem(workdir: str, step: Optional[int], protocol: EvalProtocol) -> str:
  p = protocol
  return os.path.join(
      workdir, EVAL, f"rows_step{step}_seed{p.seed}_{p.split}_{p.ways}w{p.shots}s"
      f"{p.queries}q_k{p.steps[-1]}_{p.digest()}")


def write_evaluation(workdir: str, step: Optional[int], protocol: EvalProtocol,
                     rows: list[dict], values: dict[str, np.ndarray]) -> Evaluation:
  """Writes an evaluation's values, then its rows (what readers list), each whole."""
  stem = eval_stem(workdir, step, protocol)
  atomic.write_npz(stem + ".npz", eval_steps=np.asarray(protocol.steps), **values)
  atomic.write_text(stem + ".jsonl", "".join(json.dumps(r) + "\n" for r in rows))
  return Evaluation(stem, step, protocol)


def protocol_of_rows(rows: list[dict], run_config: Optional[dict]) -> EvalProtocol:
  """The protocol an evaluation's rows record. Rows written before ``eval_batch``,
  ``eval_bn_mode``, ``eval_rotate`` or ``eval_within_alphabet`` were recorded took the
  run's ``eval.batch``, the meta-training batch-norm mode, no rotation and classes from
  the whole split.

  Raises:
    ValueError: the rows lack ``eval_batch`` and there is no run config to read it from.
  """
  r = rows[0]
  batch = r.get("eval_batch")
  if batch is None:
    if run_config is None:
      raise ValueError(f"evaluation rows without eval_batch and no {CONFIG} to read the "
                       "run's eval.batch from")
    batch = run_config["eval"]["batch"]
  return EvalProtocol(
      split=r["eval_split"], ways=int(r["eval_ways"]), shots=int(r["eval_shots"]),
      queries=int(r["eval_queries"]), steps=tuple(sorted({int(x["k"]) for x in rows})),
      inner_lr=float(r["eval_inner_lr"]), bn_mode=r.get("eval_bn_mode") or r["bn_mode"],
      seed=int(r["eval_seed"]), batch=int(min(batch, r["episodes"])),
      episodes=int(r["episodes"]), rotate=bool(r.get("eval_rotate", False)),
      within_alphabet=bool(r.get("eval_within_alphabet", False)))


# Row settings that fix which episodes an evaluation drew.
EPISODE_KEYS = ("data", "eval_split", "eval_seed", "eval_batch", "eval_ways",
                "eval_shots", "eval_queries", "eval_within_alphabet")


def episode_settings(rows_path: str) -> dict:
  """The settings in ``EPISODE_KEYS`` of the evaluation whose rows are ``rows_path``.
  Rows written before ``eval_batch`` was recorded take the run's ``eval.batch`` from
  its ``config.json`` (``<run>/eval/<file>`` -> ``<run>/config.json``); rows written
  before ``eval_within_alphabet`` drew classes from the whole split.

  Raises:
    ValueError: an old rows file and no ``config.json`` to read its batch from.
  """
  row = _read_rows(rows_path)[0]
  row.setdefault("eval_within_alphabet", False)
  if "eval_batch" not in row:
    run_dir = os.path.dirname(os.path.dirname(os.path.abspath(rows_path)))
    config = read_json(run_dir, CONFIG)
    if config is None:
      raise ValueError(f"{rows_path}: has no eval_batch and there is no "
                       f"{path(run_dir, CONFIG)} to read the run's eval.batch from")
    row["eval_batch"] = config["eval"]["batch"]
  return {k: row.get(k) for k in EPISODE_KEYS}


def evaluation_of(rows_path: str) -> Evaluation:
  """The evaluation whose rows are ``<stem>.jsonl`` (in ``<run>/eval/``)."""
  rows = _read_rows(rows_path)
  if not rows:
    raise ValueError(f"{rows_path}: no rows")
  run_dir = os.path.dirname(os.path.dirname(os.path.abspath(rows_path)))
  protocol = protocol_of_rows(rows, read_json(run_dir, CONFIG))
  step = rows[0].get("checkpoint_step")
  return Evaluation(rows_path[:-len(".jsonl")], None if step is None else int(step),
                    protocol)


def evaluations(workdir: str) -> list[Evaluation]:
  """Every evaluation in ``<workdir>/eval`` whose rows and values are both there."""
  out = []
  for p in sorted(glob.glob(os.path.join(workdir, EVAL, "rows_step*.jsonl"))):
    if os.path.exists(p[:-len(".jsonl")] + ".npz"):
      out.append(evaluation_of(p))
  return out


def find_evaluation(workdir: str, step: Optional[int], protocol: EvalProtocol
                    ) -> Optional[Evaluation]:
  """The evaluation of checkpoint ``step`` under exactly ``protocol``, or None."""
  for e in evaluations(workdir):
    if e.step == step and e.protocol == protocol:
      return e
  return None


def point_dir(sweep_workdir: str, name: str) -> str:
  return os.path.join(sweep_workdir, POINTS, name)


def point_names(sweep_workdir: str) -> list[str]:
  """Names of the sweep's points that have finished (their ``point.json`` exists)."""
  root = os.path.join(sweep_workdir, POINTS)
  if not os.path.isdir(root):
    return []
  return [n for n in sorted(os.listdir(root))
          if os.path.exists(os.path.join(root, n, POINT))]


def _read_rows(p: str) -> list[dict]:
  with open(p) as f:
    return [json.loads(line) for line in f if line.strip()]
