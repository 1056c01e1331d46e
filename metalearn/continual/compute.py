"""Compute on a fixed stream: more updates per example, or a longer stream?

For a stream of a fixed number of classes L (``config.compute.classes``), the online
learner is given more compute per example — ``steps_per_example`` SGD steps on each
example as it arrives, and ``replay_passes`` passes after each class over a buffer of
every example seen so far — and scored at the stream's end on the held-out examples of
its L classes. The same learner at one step per example and no replay is given longer
streams (``config.compute.longer``) and scored at their ends both on every class seen
and on the stream's first L classes (the classes the fixed-stream runs learned, so the
two are compared on the same classes). Every setting is run on the same streams (the
same keys: a longer stream starts with the classes of the shorter one), and every row
carries its FLOPs (``costs.StreamCost``: the fixed forward passes once per example, the
online steps, the replay steps), so accuracy can be read against one FLOPs axis:
compute per example against data.

Rows (``<workdir>/eval/continual_compute_*.jsonl``): one per setting and metric, with
``axis`` = ``steps_per_example`` / ``replay_passes`` (the fixed stream; the grid of both)
or ``stream_classes`` (the longer streams), ``stream_classes``, ``steps_per_example``,
``replay_passes``, ``flops`` (per stream), ``mean`` and ``ci95`` over streams, and
``scored_on`` ('seen' or 'first').
"""

import dataclasses
import itertools
import json
import time
from typing import Optional

from absl import logging
import ml_collections

from metalearn import stats
from metalearn.continual import build as build_lib
from metalearn.continual import evaluate as evaluate_lib
from metalearn.continual import train as train_lib


def _axis(k: int, r: int) -> str:
  if r == 0:
    return "steps_per_example"
  return "replay_passes" if k == 1 else "steps_per_example,replay_passes"


def run(config: ml_collections.ConfigDict, workdir: str, *,
        step: Optional[int] = None) -> list[dict]:
  """Runs the fixed-stream grid and the longer streams; writes and returns the rows."""
  setup = build_lib.build(config)
  theta, step = train_lib.restore_theta(config, workdir, step, setup)
  data = setup.family.load(config.eval.split)
  q = config.compute
  fixed = int(q.classes)
  longer = tuple(sorted(int(n) for n in q.longer if int(n) > fixed))
  setup.family.check(data, max((fixed,) + longer))
  base = evaluate_lib.protocol(config, shuffle=False, epochs=1)
  rows, values_all, t0 = [], {}, time.time()

  def add(p, values, n, flops, **settings):
    for first in ((0, fixed) if n > fixed else (0,)):
      for metric, curve in evaluate_lib.curves(values, p.classes, first).items():
        v = curve[:, p.classes.index(n)]
        rows.append(dict(evaluate_lib.row_settings(config, step, p), metric=metric,
                         stream_classes=n, scored_on="first" if first else "seen",
                         mean=float(v.mean()), ci95=float(stats.half_width(v)),
                         streams=p.streams, flops=flops, **settings))

  for k, r in itertools.product(q.steps_per_example, q.replay_passes):
    p = dataclasses.replace(base, classes=(fixed,), steps_per_example=int(k),
                            replay_passes=int(r))
    values = evaluate_lib.run_streams(theta, setup.family, data, setup.net, p,
                                      chunk=config.eval.chunk,
                                      fast_compile=bool(config.fast_compile))
    flops = evaluate_lib.stream_cost(setup, theta, data, p).online(fixed, int(k), int(r))
    add(p, values, fixed, flops, axis=_axis(int(k), int(r)), steps_per_example=int(k),
        replay_passes=int(r))
    values_all.update({f"k{k}_r{r}_{m}": v for m, v in values.items()})
    held = next(r for r in rows[::-1] if r["metric"] in ("accuracy", "mse"))
    logging.info("%d classes, %d steps/example, %d replay passes: %s %.4f ± %.4f "
                 "(%.3g FLOPs, %.0fs)", fixed, k, r, held["metric"], held["mean"],
                 held["ci95"], flops, time.time() - t0)
  if longer:
    p = dataclasses.replace(base, classes=(fixed,) + longer, steps_per_example=1,
                            replay_passes=0)
    values = evaluate_lib.run_streams(theta, setup.family, data, setup.net, p,
                                      chunk=config.eval.chunk,
                                      fast_compile=bool(config.fast_compile))
    cost = evaluate_lib.stream_cost(setup, theta, data, p)
    for n in longer:
      add(p, values, n, cost.online(n), axis="stream_classes", steps_per_example=1,
          replay_passes=0)
    values_all.update({f"longer_{m}": v for m, v in values.items()})
  extra = json.dumps(q.to_dict(), sort_keys=True, default=list)
  path = evaluate_lib.write(workdir, "compute", step,
                            dataclasses.replace(base, classes=(fixed,) + longer), rows,
                            values_all, extra=extra)
  logging.info("wrote %s", path)
  return rows
