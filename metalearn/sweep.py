"""A one-axis-at-a-time sweep around a base run: grid points, their FLOPs, their rows.

A sweep config (see ``experiments/compute_scaling.py``) holds ``run`` (an ordinary run
config, the base point), ``sweep`` (the values of each axis) and ``analysis``. Each axis
(train-time inner steps ``k_train``, ``shots`` per class, number of meta-training
``tasks``) is varied alone with the others held at the base values: the grid is a star,
not a Cartesian product. Every trained model is evaluated once over all test-time inner
steps ``run.eval.eval_steps``, which is the fourth axis (test-time compute).

Each (point, seed) trains in its own sub-workdir through ``train.train`` (so it resumes
from its checkpoints) and is skipped once its evaluation rows exist, so a killed sweep
continues where it stopped. ``collect`` reads the rows back, adds each point's settings
and its meta-training FLOPs, and is all that analysis and plots read.
"""

import copy
import dataclasses
import json
import os
import time
from typing import Any, Callable, Optional

from absl import logging
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from metalearn import atomic
from metalearn import builders
from metalearn import flops as flops_lib
from metalearn import train

AXES = ("k_train", "shots", "tasks")
TASK_KEYS = ("sinusoid_pool", "data.train_class_fraction", "data.num_train_classes")


@dataclasses.dataclass(frozen=True)
class Point:
  """One trained model of the sweep.

  Attributes:
    name: directory name, e.g. ``base_s0`` or ``k_train=4_s0``.
    axis: 'base' or the axis varied (one of ``AXES``).
    value: the axis value (the base values for 'base').
    seed: the run's seed.
    config: the full run config of this point.
  """
  name: str
  axis: str
  value: Any
  seed: int
  config: ml_collections.ConfigDict


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
  return dict(k_train=run.inner.steps, shots=run.shots,
              tasks=_get(run, sweep_config.sweep.tasks_key))


def point_config(sweep_config: ml_collections.ConfigDict, axis: str, value: Any,
                 seed: int) -> ml_collections.ConfigDict:
  """The run config of the point that sets ``axis`` to ``value`` (base elsewhere)."""
  s = sweep_config.sweep
  c = copy.deepcopy(sweep_config.run)
  c.seed = seed
  base = axis == "base"
  c.eval.episodes = s.base_episodes if base else s.episodes
  if axis == "k_train":
    c.inner.steps = int(value)
  elif axis == "shots":
    if c.queries == c.shots:  # Configs that score as many queries as shots keep that.
      c.queries = int(value)
    c.shots = int(value)
  elif axis == "tasks":
    _set(c, s.tasks_key, type(_get(c, s.tasks_key))(value))
  elif not base:
    raise ValueError(f"unknown sweep axis {axis!r}; choose from {AXES}")
  return c


def _name(axis: str, value: Any, seed: int) -> str:
  return f"base_s{seed}" if axis == "base" else f"{axis}={value:g}_s{seed}"


def grid(sweep_config: ml_collections.ConfigDict) -> list[Point]:
  """The points of the sweep, in the order they run: the base point (every seed in
  ``sweep.base_seeds``), then each axis's other values, cheapest axes first."""
  s = sweep_config.sweep
  if s.tasks_key not in TASK_KEYS:
    raise ValueError(f"sweep.tasks_key={s.tasks_key!r} not in {TASK_KEYS}")
  base = base_values(sweep_config)
  points = [Point(_name("base", 0, seed), "base", base, seed,
                  point_config(sweep_config, "base", None, seed))
            for seed in s.base_seeds]
  for axis in s.order:
    for value in s[axis]:
      if value == base[axis]:
        continue
      for seed in s.seeds:
        points.append(Point(_name(axis, value, seed), axis, value, seed,
                            point_config(sweep_config, axis, value, seed)))
  return points


def _image_shape(c: ml_collections.ConfigDict) -> tuple[int, int, int]:
  if c.model.name == "conv4_miniimagenet":
    return (84, 84, 3)
  size = c.data.image_size or 28
  return (size, size, 1)


def point_flops(c: ml_collections.ConfigDict) -> dict[str, Any]:
  """Meta-training and adaptation FLOPs of a run config, from XLA's cost analysis.

  Lowers programs on abstract shapes (no data, no compilation), so it is cheap.

  Returns:
    ``meta_step_flops`` (one meta-gradient over a meta-batch),
    ``meta_training_flops`` (that times ``num_steps``) and ``adaptation_flops`` (per
    evaluation episode at each test-time step in ``eval_steps``).
  """
  learner = builders.build_learner(c)
  family = builders.build_task_family(c)
  key = jax.random.key(0)
  if c.task == "sinusoid":
    sample = lambda k, n, fam: fam.sample(k, None, n)
  else:
    # Sampling only fixes shapes: a stand-in split with just enough examples.
    images = jax.ShapeDtypeStruct(
        (c.ways, max(c.shots + c.queries, 1) + 64) + _image_shape(c), jnp.uint8)
    sample = lambda k, n, fam: fam.sample(k, images, n)
  episodes = jax.eval_shape(lambda k: sample(k, c.meta_batch, family), key)
  meta_step = flops_lib.meta_step_flops(learner, c.algorithm, builders.build_inner(c),
                                        episodes)
  eval_family = builders.eval_task_family(c)
  episode = jax.eval_shape(
      lambda k: jax.tree.map(lambda x: x[0], sample(k, 1, eval_family)), key)
  steps = list(builders.eval_steps(c))
  adapt = flops_lib.adaptation_flops(
      builders.build_learner(c, builders.eval_bn_mode(c)),
      builders.build_inner(c, lr=c.eval.inner_lr, evaluation=True), episode, steps)
  return dict(meta_step_flops=meta_step, meta_training_flops=meta_step * c.num_steps,
              eval_steps=steps, adaptation_flops=adapt)


def _rows_stem(point: Point, workdir: str) -> str:
  c = point.config
  return os.path.join(workdir, "points", point.name, "eval",
                      train.eval_file_stem(c, c.num_steps))


def is_done(point: Point, workdir: str) -> bool:
  """The point's evaluation rows and per-episode values exist (also under the file
  name used before evaluation files named their protocol)."""
  stem = _rows_stem(point, workdir)
  c = point.config
  legacy = os.path.join(os.path.dirname(stem), f"rows_step{c.num_steps}_seed{c.eval.seed}")
  return (any(os.path.exists(s + ".jsonl") and os.path.exists(s + ".npz")
              for s in (stem, legacy))
          and os.path.exists(os.path.join(workdir, "points", point.name, "point.json")))


def _cost(info: dict, c: ml_collections.ConfigDict) -> float:
  """Estimated FLOPs of a point: meta-training plus its evaluation pass."""
  return info["meta_training_flops"] + c.eval.episodes * info["adaptation_flops"][-1]


def _write_json(path: str, obj: Any) -> None:
  atomic.write_text(path, json.dumps(obj, indent=2, sort_keys=True))


def _point_info(sweep_config, point: Point) -> dict:
  s = sweep_config.sweep
  group = point.name.rsplit("_s", 1)[0]
  info = dict(point=point.name, group=group, axis=point.axis,
              axis_value=None if point.axis == "base" else point.value,
              tasks_key=s.tasks_key, tasks=_get(point.config, s.tasks_key),
              num_steps=point.config.num_steps)
  info.update(point_flops(point.config))
  return info


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
    builders.validate(p.config)
  infos = {p.name: _point_info(sweep_config, p) for p in points}
  costs = {p.name: _cost(infos[p.name], p.config) for p in points}
  todo = [p for p in points if not is_done(p, workdir)]
  log_fn(f"sweep: {len(points)} points, {len(points) - len(todo)} already done, "
         f"{sum(costs[p.name] for p in todo):.3g} FLOPs to go")
  t0, spent = time.time(), 0.0
  for p in points:
    i = points.index(p) + 1
    if p not in todo:
      continue
    left = sum(costs[q.name] for q in todo[todo.index(p):])
    eta = ((time.time() - t0) / spent * left) if spent else float("nan")
    log_fn(f"point {i}/{len(points)} {p.name}: {p.axis}={p.value} | "
           f"{costs[p.name]:.3g} FLOPs | ETA {_fmt(eta)}")
    pdir = os.path.join(workdir, "points", p.name)
    start = time.time()
    state = train.train(p.config, pdir)
    train.evaluate(p.config, pdir, step=int(state.step), state=state)
    info = dict(infos[p.name], seconds=round(time.time() - start, 1))
    _write_json(os.path.join(pdir, "point.json"), info)
    spent += costs[p.name]
    log_fn(f"point {i}/{len(points)} {p.name} done in {time.time() - start:.0f}s")
  return points


def _fmt(seconds: float) -> str:
  if not np.isfinite(seconds):
    return "?"
  seconds = int(seconds)
  return f"{seconds // 60}m{seconds % 60:02d}s"


def collect(workdir: str) -> tuple[list[dict], dict[str, np.ndarray]]:
  """Rows and per-episode values of every finished point in ``workdir``.

  Each evaluation row gains its point's settings (``point``, ``axis``, ``axis_value``,
  ``tasks``, ``num_steps``) and FLOPs (``meta_step_flops``, ``meta_training_flops``).
  Classification rows gain an ``error`` metric, ``1 - accuracy``, with the same CI.

  Returns:
    ``(rows, per_episode)``; ``per_episode[f"{point}/{metric}"]`` is
    ``[episodes, len(eval_steps)]`` in the order of the point's ``k``.
  """
  rows, values = [], {}
  root = os.path.join(workdir, "points")
  for name in sorted(os.listdir(root)) if os.path.isdir(root) else []:
    path = os.path.join(root, name, "point.json")
    if not os.path.exists(path):
      continue
    with open(path) as f:
      info = json.load(f)
    evals = os.path.join(root, name, "eval")
    stems = sorted(n[:-len(".jsonl")] for n in os.listdir(evals) if n.endswith(".jsonl")
                   and n.startswith(f"rows_step{info['num_steps']}_"))
    if not stems:
      continue
    with open(os.path.join(evals, stems[-1] + ".jsonl")) as f:
      point_rows = [json.loads(line) for line in f if line.strip()]
    npz = np.load(os.path.join(evals, stems[-1] + ".npz"))
    extra = {k: info[k] for k in ("point", "group", "axis", "axis_value", "tasks_key", "tasks",
                                  "num_steps", "meta_step_flops", "meta_training_flops")}
    for r in point_rows:
      rows.append(dict(r, **extra))
      if r["metric"] == "accuracy":
        rows.append(dict(r, **extra, metric="error", mean=1.0 - r["mean"]))
    for metric in npz.files:
      if metric != "eval_steps":
        values[f"{name}/{metric}"] = np.asarray(npz[metric], np.float64)
    if "accuracy" in npz.files:
      values[f"{name}/error"] = 1.0 - np.asarray(npz["accuracy"], np.float64)
  return rows, values
