"""A sweep around a base run: grid points, their FLOPs, their rows.

A sweep config (see ``experiments/compute_scaling.py``) holds ``run`` (an ordinary run
config, the base point), ``sweep`` (the values of each axis) and ``analysis``. Each axis
is varied alone with the others held at the base values (a star, not a Cartesian
product); every trained model is evaluated once over all test-time inner steps
``run.eval.eval_steps``, the test-time compute axis. The axes (``AXES``):

* trained ones: ``k_train`` (train-time inner steps), ``shots`` (shots per class at
  meta-training and at test, together), ``train_shots`` (meta-training shots; the
  evaluation keeps the base point's shots and queries), ``tasks`` (distinct
  meta-training tasks or classes, ``sweep.tasks_key``) and ``width`` (the model's
  width, ``models.set_width``);
* evaluated ones, nothing retrained: ``test_shots`` (the base model scored with more or
  fewer support shots per class), ``tuned`` (the base model with the test-time inner
  rate chosen per k on validation episodes among ``sweep.tune_inner_lrs``,
  ``run.tuning``) and ``steps`` (the base model's checkpoints along its
  own run, a meta-training-length axis; with ``sweep.steps_for`` also along the runs
  of those trained axes, axes ``<axis>_steps``: e.g. ``tasks_steps``, the number of
  tasks jointly with meta-training length, or ``width_steps``).

Each point trains in its own sub-workdir through ``run.loop.train`` (so it resumes from
its checkpoints) and is skipped once its evaluation under its own protocol exists, so a
killed sweep continues where it stopped; several processes can share a workdir (each
holds a lock on the home run it works on and skips the homes others hold). An
evaluated point reads the checkpoints of its ``home`` point; a ``steps`` point is
scored on the way, by training its home to that step, scoring, and training on (the
outer schedule must be constant, so that stopping does not change the run).
``collect`` reads the rows back, adds each point's settings and its meta-training
FLOPs, and is all that analysis and plots read.
"""

import copy
import dataclasses
import fcntl
import os
import time
from typing import Any, Callable, Optional

from absl import logging
import ml_collections
import numpy as np

from metalearn import builder as build_lib
from metalearn import config as config_lib
from metalearn import flops as flops_lib
from metalearn import tasks
from metalearn.run import checkpoints
from metalearn.run import loop
from metalearn.run import scoring
from metalearn.run import tuning
from metalearn.run import workdir as workdir_lib

from metalearn import models

# The lock file in a home run's directory held while a process trains or scores it.
LOCK = ".sweep.lock"
TRAINED_AXES = ("k_train", "shots", "train_shots", "tasks", "width")
# A trained axis's runs scored along their meta-training steps (``sweep.steps_for``):
# ``tasks_steps`` is the number of tasks jointly with meta-training length.
TRAJECTORY_AXES = tuple(f"{a}_steps" for a in TRAINED_AXES)
EVALUATED_AXES = ("test_shots", "steps", "tuned") + TRAJECTORY_AXES
AXES = TRAINED_AXES + EVALUATED_AXES
# Config keys that count distinct meta-training tasks or classes, per task kind.
TASK_KEYS = tuple(k for name in tasks.names() for k in tasks.get(name).size_keys)


@dataclasses.dataclass(frozen=True)
class Point:
  """One evaluated model of the sweep.

  Attributes:
    name: directory name, e.g. ``base_s0`` or ``k_train=4_s0``.
    axis: 'base' or the axis varied (one of ``AXES``).
    value: the axis value (the base values for 'base').
    seed: the run's seed.
    config: the full run config of this point (``num_steps``: the checkpoint scored).
    home: the point whose run dir holds the checkpoints (itself for a trained point).
  """
  name: str
  axis: str
  value: Any
  seed: int
  config: ml_collections.ConfigDict
  home: str = ""

  @property
  def trained(self) -> bool:
    return self.home == self.name


def _get(c: ml_collections.ConfigDict, path: str) -> Any:
  for part in path.split("."):
    c = c[part]
  return c


def _set(c: ml_collections.ConfigDict, path: str, value: Any) -> None:
  *parents, leaf = path.split(".")
  for part in parents:
    c = c[part]
  c[leaf] = value


def base_values(sweep_config: ml_collections.ConfigDict) -> dict[str, Any]:
  """The base point's value on every axis, read from the run config."""
  run = sweep_config.run
  shots = run.eval.shots or run.shots
  key = sweep_config.sweep.tasks_key
  out = dict(k_train=run.inner.steps, shots=run.shots, train_shots=run.shots,
             tasks=_get(run, key) if key else 0, test_shots=shots,
             steps=run.num_steps, **{a: run.num_steps for a in TRAJECTORY_AXES})
  if sweep_config.sweep.get("width"):
    out["width"] = models.width(run)
  return out


def point_config(sweep_config: ml_collections.ConfigDict, axis: str, value: Any,
                 seed: int) -> ml_collections.ConfigDict:
  """The run config of the point that sets ``axis`` to ``value`` (base elsewhere)."""
  s = sweep_config.sweep
  c = copy.deepcopy(sweep_config.run)
  c.seed = seed
  base = axis == "base"
  own_seeds = axis in ("base", "test_shots", "steps", "tuned")
  c.eval.episodes = s.base_episodes if own_seeds else s.episodes
  if axis == "k_train":
    c.inner.steps = int(value)
  elif axis in ("shots", "train_shots"):
    if axis == "train_shots":  # The evaluation keeps the base point's episodes.
      c.eval.queries = c.eval.queries or c.queries
      c.eval.shots = c.eval.shots or c.shots
    if c.queries == c.shots:  # Configs that score as many queries as shots keep that.
      c.queries = int(value)
    c.shots = int(value)
  elif axis == "tasks":
    _set(c, s.tasks_key, type(_get(c, s.tasks_key))(value))
  elif axis == "width":
    models.set_width(c, int(value))
  elif axis == "test_shots":
    c.eval.queries = c.eval.queries or c.queries
    c.eval.shots = int(value)
  elif axis == "steps":
    c.num_steps = int(value)
  elif axis == "tuned":  # The base model; the rate per k is chosen on validation.
    pass
  elif axis in TRAJECTORY_AXES:  # value = (the trained axis's value, steps)
    c = point_config(sweep_config, axis[:-len("_steps")], value[0], seed)
    c.num_steps = int(value[1])
  elif not base:
    raise ValueError(f"unknown sweep axis {axis!r}; choose from {AXES}")
  return c


def _name(axis: str, value: Any, seed: int) -> str:
  if axis == "base":
    return f"base_s{seed}"
  if axis in TRAJECTORY_AXES:
    return f"{axis[:-len('_steps')]}={value[0]:g}@steps={value[1]:g}_s{seed}"
  if axis == "tuned":
    return f"tuned_s{seed}"
  return f"{axis}={value:g}_s{seed}"


def _check_steps(sweep_config: ml_collections.ConfigDict) -> None:
  run, steps = sweep_config.run, tuple(sweep_config.sweep.get("steps") or ())
  if not steps:
    return
  if run.outer.schedule != "constant":
    raise ValueError(f"sweep.steps scores checkpoints along the base run, which needs a "
                     f"constant outer schedule, not {run.outer.schedule!r}")
  bad = [v for v in steps if not 0 < v <= run.num_steps]
  if bad:
    raise ValueError(f"sweep.steps={steps}: {bad} not in 1..run.num_steps="
                     f"{run.num_steps}")


def grid(sweep_config: ml_collections.ConfigDict) -> list[Point]:
  """The points of the sweep, in the order they run: the base point (every seed in
  ``sweep.base_seeds``), then each axis's other values, cheapest axes first; each
  evaluated point comes after its home."""
  s = sweep_config.sweep
  if s.tasks_key not in TASK_KEYS + ("",):
    raise ValueError(f"sweep.tasks_key={s.tasks_key!r} not in {TASK_KEYS} (or '': "
                     "no tasks axis)")
  if not s.tasks_key and s.tasks:
    raise ValueError(f"sweep.tasks={tuple(s.tasks)} needs a sweep.tasks_key")
  _check_steps(sweep_config)
  unknown = [a for a in s.order if a not in TRAINED_AXES]
  if unknown:
    raise ValueError(f"sweep.order={tuple(s.order)}: {unknown} not in {TRAINED_AXES}")
  unknown = [a for a in (s.get("steps_for") or ()) if a not in s.order]
  if unknown:
    raise ValueError(f"sweep.steps_for={tuple(s.steps_for)}: {unknown} not among the "
                     f"trained axes of sweep.order={tuple(s.order)}")
  base = base_values(sweep_config)
  steps = sorted(v for v in (s.get("steps") or ()) if v != base["steps"])

  def point(axis, value, seed, home=None):
    name = _name(axis, value, seed)
    return Point(name, axis, base if axis == "base" else value, seed,
                 point_config(sweep_config, axis, value, seed), home or name)

  points = []
  for seed in s.base_seeds:
    home = point("base", None, seed)
    points += [point("steps", v, seed, home.name) for v in steps]
    points.append(home)
    points += [point("test_shots", v, seed, home.name)
               for v in (s.get("test_shots") or ()) if v != base["test_shots"]]
    if s.get("tune_inner_lrs"):
      points.append(point("tuned", tuple(s.tune_inner_lrs), seed, home.name))
  for axis in s.order:
    for value in s[axis]:
      if value == base[axis]:
        continue
      for seed in s.seeds:
        home = point(axis, value, seed)
        if axis in (s.get("steps_for") or ()):
          points += [point(f"{axis}_steps", (value, v), seed, home.name) for v in steps]
        points.append(home)
  return points


def point_flops(c: ml_collections.ConfigDict) -> dict[str, Any]:
  """Meta-training and evaluation FLOPs of a run config, from XLA's cost analysis.

  Lowers programs on abstract shapes (no data, no compilation), so it is cheap. The
  counts are of the canonical program (``metalearn.flops``): they do not depend on
  ``inner.remat``, ``model.conv_impl`` or the backend.

  Returns:
    ``meta_step_flops`` (one meta-gradient over a meta-batch),
    ``meta_training_flops`` (that times ``num_steps``), ``adaptation_flops`` (per
    evaluation episode, the inner steps on the support set at each test-time step in
    ``eval_steps``; 0 at k = 0) and ``query_flops`` (per evaluation episode, scoring
    its query set once).
  """
  setup = build_lib.build(c)
  meta_step = flops_lib.meta_step_flops(setup.learner, setup.algorithm, setup.inner,
                                        setup.abstract_episodes(c.meta_batch))
  episode = setup.abstract_episodes(None, evaluation=True)
  steps = list(config_lib.eval_steps(c))
  adapt = flops_lib.adaptation_flops(setup.eval_learner, setup.eval_inner, episode, steps,
                                     setup.algorithm)
  query = flops_lib.query_flops(setup.eval_learner, setup.eval_inner, episode,
                                setup.algorithm)
  return dict(meta_step_flops=meta_step, meta_training_flops=meta_step * c.num_steps,
              eval_steps=steps, adaptation_flops=adapt, query_flops=query)


def _evaluation(point: Point, workdir: str) -> Optional[workdir_lib.Evaluation]:
  """The point's evaluation under its own config's protocol, if it was written."""
  c, home = point.config, workdir_lib.point_dir(workdir, point.home)
  if point.axis == "tuned":
    return tuning.tuned_evaluation(c, home, point.value, step=c.num_steps)
  return workdir_lib.find_evaluation(home, c.num_steps, config_lib.eval_protocol(c))


def is_done(point: Point, workdir: str) -> bool:
  """The point's ``point.json`` and its evaluation under its own protocol exist."""
  return (os.path.exists(os.path.join(workdir_lib.point_dir(workdir, point.name),
                                      workdir_lib.POINT))
          and _evaluation(point, workdir) is not None)


def _cost(info: dict, point: Point) -> float:
  """Estimated FLOPs of a point: meta-training (trained points) plus its evaluation
  (a tuned point: two, validation and test, per candidate rate)."""
  train = info["meta_training_flops"] if point.trained else 0.0
  evals = 2 * len(point.value) if point.axis == "tuned" else 1
  return train + evals * point.config.eval.episodes * info["adaptation_flops"][-1]


def _flops_key(c: ml_collections.ConfigDict) -> str:
  """The config without what does not change a program's FLOPs per step or episode."""
  c = copy.deepcopy(c)
  c.seed, c.num_steps, c.eval.episodes = 0, 1, 1
  return c.to_json_best_effort(sort_keys=True)


def _point_info(sweep_config, point: Point, cache: Optional[dict] = None) -> dict:
  s = sweep_config.sweep
  group = point.name.rsplit("_s", 1)[0]
  value = point.value[1] if point.axis in TRAJECTORY_AXES else point.value
  info = dict(point=point.name, group=group, axis=point.axis,
              axis_value=None if point.axis == "base" else value, home=point.home,
              tasks_key=s.tasks_key,
              tasks=_get(point.config, s.tasks_key) if s.tasks_key else 0,
              num_steps=point.config.num_steps)
  try:
    info["width"] = models.width(point.config)
  except ValueError:
    info["width"] = None
  cache = {} if cache is None else cache
  key = _flops_key(point.config)
  if key not in cache:  # Seeds and checkpoints of one setting share their programs.
    cache[key] = point_flops(point.config)
  flops = dict(cache[key])
  flops["meta_training_flops"] = flops["meta_step_flops"] * point.config.num_steps
  info.update(flops)
  return info


def _latest_step(run_dir: str) -> Optional[int]:
  with checkpoints.manager(run_dir) as mngr:
    return mngr.latest_step()


def _score(p: Point, workdir: str, log_fn) -> bool:
  """Trains (a trained point, or its home up to a ``steps`` point's step) and scores
  ``p``; False when it cannot be scored (its checkpoint is gone)."""
  home = workdir_lib.point_dir(workdir, p.home)
  step = int(p.config.num_steps)
  if p.axis == "test_shots":
    scoring.evaluate(p.config, home, step=step)
    return True
  if p.axis == "tuned":
    tuning.tune(p.config, home, p.value, step=step)
    return True
  if not p.trained:
    latest = _latest_step(home)
    if latest is not None and latest > step:
      log_fn(f"point {p.name}: skipped, {p.home} is at step {latest} > {step} and "
             f"keeps no checkpoint at {step} (score steps points in a fresh run)")
      return False
  state = loop.train(p.config, home)
  scoring.evaluate(p.config, home, step=int(state.step), state=state)
  return True


def run(sweep_config: ml_collections.ConfigDict, workdir: str,
        log_fn: Optional[Callable[[str], None]] = None) -> list[Point]:
  """Trains and evaluates every point not yet done; returns the grid.

  Args:
    sweep_config: the sweep config (``run``, ``sweep``, ``analysis``).
    workdir: the sweep's directory; point ``p`` lives in ``<workdir>/points/<p>``.
    log_fn: progress callback (default: ``logging.info``).

  Returns:
    The grid's points, in order.
  """
  log_fn = log_fn or logging.info
  points = grid(sweep_config)
  for p in points:
    config_lib.validate(p.config)
  cache: dict = {}
  infos = {p.name: _point_info(sweep_config, p, cache) for p in points}
  costs = {p.name: _cost(infos[p.name], p) for p in points}
  todo = [p for p in points if not is_done(p, workdir)]
  log_fn(f"sweep: {len(points)} points, {len(points) - len(todo)} already done, "
         f"{sum(costs[p.name] for p in todo):.3g} FLOPs to go")
  t0, spent, done = time.time(), 0.0, 0
  lock = _HomeLock(workdir)
  try:
    for i, p in enumerate(points, 1):
      if p not in todo:
        continue
      if not lock.hold(p.home):
        log_fn(f"point {i}/{len(points)} {p.name}: skipped, another process is "
               f"training or scoring {p.home}")
        continue
      if is_done(p, workdir):  # Another process finished it since the list was made.
        continue
      rest = todo[todo.index(p):]
      left = sum(costs[q.name] for q in rest)
      # Half by FLOPs, half by points: small points cost mostly compilation and setup.
      eta = ((time.time() - t0) * (0.5 * left / spent + 0.5 * len(rest) / done)
             if spent and done else float("nan"))
      log_fn(f"point {i}/{len(points)} {p.name}: {p.axis}={p.value} | "
             f"{costs[p.name]:.3g} FLOPs | ETA {_fmt(eta)}")
      start = time.time()
      if not _score(p, workdir, log_fn):
        continue
      info = dict(infos[p.name], seconds=round(time.time() - start, 1))
      workdir_lib.write_json(workdir_lib.point_dir(workdir, p.name), workdir_lib.POINT,
                             info)
      spent += costs[p.name]
      done += 1
      log_fn(f"point {i}/{len(points)} {p.name} done in {time.time() - start:.0f}s")
  finally:
    lock.release()
  return points


class _HomeLock:
  """An exclusive ``flock`` on one home run at a time, so that several sweep processes
  can share a workdir: a process works only on points whose home (the run it trains
  or reads) it holds, and skips those another process holds. The kernel drops the
  lock when its process dies, so a killed sweep leaves nothing stale behind."""

  def __init__(self, workdir: str):
    self._workdir, self._home, self._fd = workdir, None, None

  def hold(self, home: str) -> bool:
    """Holds ``home``'s lock (releasing the one held before); False if it is taken."""
    if home == self._home:
      return True
    self.release()
    path = workdir_lib.point_dir(self._workdir, home)
    os.makedirs(path, exist_ok=True)
    fd = os.open(os.path.join(path, LOCK), os.O_RDWR | os.O_CREAT, 0o644)
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      os.close(fd)
      return False
    self._home, self._fd = home, fd
    return True

  def release(self) -> None:
    if self._fd is not None:
      fcntl.flock(self._fd, fcntl.LOCK_UN)
      os.close(self._fd)
    self._home, self._fd = None, None


def _fmt(seconds: float) -> str:
  if not np.isfinite(seconds):
    return "?"
  seconds = int(seconds)
  return f"{seconds // 60}m{seconds % 60:02d}s"


def collect(workdir: str, sweep_config: ml_collections.ConfigDict
            ) -> tuple[list[dict], dict[str, np.ndarray]]:
  """Rows and per-episode values of every finished point of the sweep in ``workdir``.

  Each point contributes the evaluation its own config asks for (its protocol, at its
  last step); evaluations of the same checkpoint under other protocols are left alone.
  Each row gains its point's settings (``point``, ``axis``, ``axis_value``, ``tasks``,
  ``num_steps``) and FLOPs (``meta_step_flops``, ``meta_training_flops``).
  Classification rows gain an ``error`` metric, ``1 - accuracy``, with the same CI.

  Returns:
    ``(rows, per_episode)``; ``per_episode[f"{point}/{metric}"]`` is
    ``[episodes, len(eval_steps)]`` in the order of the point's ``k``.
  """
  rows, values = [], {}
  for point in grid(sweep_config):
    pdir = workdir_lib.point_dir(workdir, point.name)
    info = workdir_lib.read_json(pdir, workdir_lib.POINT)  # Written once scored.
    evaluation = _evaluation(point, workdir) if info is not None else None
    if evaluation is None:
      continue
    extra = {k: info.get(k) for k in (
        "point", "group", "axis", "axis_value", "tasks_key", "tasks", "num_steps", "width",
        "meta_step_flops", "meta_training_flops")}
    for r in evaluation.rows():
      rows.append(dict(r, **extra))
      if r["metric"] == "accuracy":
        rows.append(dict(r, **extra, metric="error", mean=1.0 - r["mean"]))
    per_episode = evaluation.values()
    for metric, v in per_episode.items():
      values[f"{point.name}/{metric}"] = v
    if "accuracy" in per_episode:
      values[f"{point.name}/error"] = 1.0 - per_episode["accuracy"]
  return rows, values
