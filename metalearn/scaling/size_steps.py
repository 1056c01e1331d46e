"""Model size against meta-training length at equal meta-training FLOPs.

Each model size (here: width) is one meta-training run scored at checkpoints along its
steps, so each gives a curve of error against meta-training FLOPs M. At a budget M the
sizes whose runs pass through M (no extrapolation beyond a run's first or last
checkpoint) are compared at that M: a small model trained longer against a large one
trained shorter, on one FLOPs axis. This is the lower envelope of the training curves
(Hoffmann et al. 2022, "approach 1"); with a few sizes it gives the best measured size
per budget, not a fitted optimum between them.

A size's error at M is interpolated linearly in log M between its two neighbouring
checkpoints, per training seed and per evaluation episode (every checkpoint is scored on
the same episodes), so the interpolated values keep the seeds × episodes structure. The
best size is the lowest mean; it is *decided* when the runner-up's error minus the best's
(``intervals.paired_difference``: episodes paired, the two sizes' seeds independent) has
a 95% interval above 0. Pure numpy over ``SizeRun`` records.
"""

import dataclasses
from typing import Any, Optional, Sequence

import numpy as np

from metalearn.scaling import intervals


@dataclasses.dataclass(frozen=True)
class SizeRun:
  """One model size's run scored along its meta-training.

  Attributes:
    size: the model size (e.g. width).
    flops: meta-training FLOPs at each checkpoint, increasing.
    values: per checkpoint, the error per (training seed, evaluation episode),
      ``[S, E]``; the same episodes at every checkpoint and for every size.
  """

  size: float
  flops: tuple[float, ...]
  values: tuple[np.ndarray, ...]

  def __post_init__(self):
    if len(self.flops) != len(self.values) or len(self.flops) < 2:
      raise ValueError(f"size {self.size}: needs matching flops and values, at least 2 "
                       f"checkpoints; got {len(self.flops)} and {len(self.values)}")
    if np.any(np.diff(self.flops) <= 0):
      raise ValueError(f"size {self.size}: flops must increase, got {self.flops}")

  def covers(self, budget: float) -> bool:
    return self.flops[0] * (1 - 1e-9) <= budget <= self.flops[-1] * (1 + 1e-9)

  def at(self, budget: float) -> np.ndarray:
    """The ``[S, E]`` values interpolated in log FLOPs at ``budget`` (covered)."""
    s = min(v.shape[0] for v in self.values)  # Seeds every checkpoint has (sorted).
    u = np.log(np.asarray(self.flops))
    x = float(np.clip(np.log(budget), u[0], u[-1]))
    i = int(np.clip(np.searchsorted(u, x), 1, len(u) - 1))
    w = (x - u[i - 1]) / (u[i] - u[i - 1])
    return (1 - w) * self.values[i - 1][:s] + w * self.values[i][:s]


def envelope(runs: Sequence[SizeRun], budgets: Optional[Sequence[float]] = None,
             n_budgets: int = 13) -> list[dict]:
  """The sizes compared at each meta-training budget.

  Args:
    runs: one ``SizeRun`` per size.
    budgets: meta-training FLOPs to compare at (default: ``n_budgets`` on a log grid
      over the range at least two runs cover).
    n_budgets: budgets of the default grid.

  Returns:
    One dict per budget covered by at least two sizes: ``budget``, ``sizes`` (those
    compared), ``means`` and ``ci95`` (each size's interval over seeds × episodes),
    ``best``, ``runner_up``, ``gap`` (runner-up minus best) with ``gap_ci95``, and
    ``decided`` (the gap's interval above 0).
  """
  runs = sorted(runs, key=lambda r: r.size)
  if len(runs) < 2:
    return []
  if budgets is None:
    budgets = np.geomspace(min(r.flops[0] for r in runs),
                           max(r.flops[-1] for r in runs), n_budgets)
  out = []
  for b in budgets:
    here = [(r.size, r.at(b)) for r in runs if r.covers(b)]
    if len(here) < 2:
      continue
    ivs = [intervals.point_interval(v) for _, v in here]
    means = [float(v.mean()) for _, v in here]
    order = np.argsort(means, kind="stable")
    best, second = int(order[0]), int(order[1])
    d = intervals.paired_difference(here[best][1], here[second][1])
    out.append(dict(
        budget=float(b), sizes=[s for s, _ in here], means=means,
        ci95=[float(iv.half_width) for iv in ivs], best=here[best][0],
        runner_up=here[second][0], gap=float(d.mean), gap_ci95=float(d.half_width),
        decided=bool(d.lo > 0)))
  return out


def summary(points: Sequence[dict]) -> dict[str, Any]:
  """Where each size is best, and whether the best size grows with the budget."""
  if not points:
    return dict(ranges=[], monotone=None, decided=0, budgets=0)
  ranges: list[dict] = []
  for p in points:
    if ranges and ranges[-1]["size"] == p["best"]:
      ranges[-1].update(to=p["budget"], n=ranges[-1]["n"] + 1,
                        decided=ranges[-1]["decided"] + int(p["decided"]))
    else:
      ranges.append(dict(size=p["best"], start=p["budget"], to=p["budget"], n=1,
                         decided=int(p["decided"])))
  sizes = [r["size"] for r in ranges]
  return dict(ranges=ranges, monotone=bool(all(a < b for a, b in zip(sizes, sizes[1:]))),
              decided=sum(int(p["decided"]) for p in points), budgets=len(points))
