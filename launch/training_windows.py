r"""Whether a run's training fit moved: logged training metrics averaged over windows.

A falling validation score has two readings: the model fits the training classes better
and generalises worse (overfitting), or it fits the training classes worse too (the
optimisation itself lost ground). The training rows of ``<workdir>/metrics.jsonl``
(one meta-batch each, every ``log_every`` steps) tell them apart. This averages them
over windows of steps and compares two windows:

  python -m launch.training_windows results/omniglot_maml_20w1s --window=5000 \
      --compare=25000:35000,35000:45000

prints, per window ``(a, b]`` (and for ``--span=a:b``, one more window), the number of
logged rows, each metric's mean ± 95% half-width 1.96·sd/√n (``metalearn.stats``) and
the min / median / max of each ``--spread`` metric (the run's meta-steps/s), then the
validation rows, then for ``--compare=A:B,C:D`` the difference of the two windows'
means (second minus first) with the Welch half-width 1.96·√(s₁²/n₁ + s₂²/n₂). The rows
are distinct meta-batches (fresh tasks, drawn by step), so the interval is the sampling
noise of a window's average over the parameters it held; it says nothing about another
seed of the run.
"""

import math
import os

from absl import app
from absl import flags
import numpy as np

from launch import cli
from metalearn import stats
from metalearn.run import workdir as workdir_lib

_WINDOW = flags.DEFINE_integer("window", 5000, "Steps per window.")
_METRICS = flags.DEFINE_list(
    "metrics", ["query_accuracy_post", "query_loss_post", "grad_norm"],
    "Training metrics (keys of metrics.jsonl rows) to average.")
_SPREAD = flags.DEFINE_list(
    "spread", ["meta_steps_per_s"],
    "Metrics to summarise per window by min / median / max instead (rates).")
_SPAN = flags.DEFINE_string(
    "span", "", "One more window 'a:b' (steps a < s <= b) to summarise, e.g. a "
    "session's steps.")
_COMPARE = flags.DEFINE_string(
    "compare", "", "Two windows 'a:b,c:d' (steps a < s <= b) whose means to compare.")


def mean_and_half_width(values: list[float]) -> tuple[float, float]:
  """The mean of ``values`` and its 95% half-width (``stats.half_width``; nan for one)."""
  return float(np.mean(values)), float(stats.half_width(values))


def spread(values: list[float]) -> tuple[float, float, float]:
  """(min, median, max) of ``values``: how a rate such as meta-steps/s varied."""
  return (float(np.min(values)), float(np.median(values)), float(np.max(values)))


def window_values(rows: list[dict], metric: str, lo: int, hi: int) -> list[float]:
  """``metric`` of the training rows with ``lo < step <= hi``.

  Raises:
    ValueError: no training row has ``metric``.
  """
  if not any(metric in r for r in rows):
    known = sorted({k for r in rows for k in r if k != "step" and "/" not in k})
    raise ValueError(f"no row has metric {metric!r} (training metrics: {known})")
  return [r[metric] for r in rows if metric in r and lo < r["step"] <= hi]


def compare_windows(rows: list[dict], metric: str, first: tuple[int, int],
                    second: tuple[int, int]) -> tuple[float, float, int, int]:
  """(mean of ``second`` minus mean of ``first``, Welch 95% half-width, n₁, n₂).

  Raises:
    ValueError: a window holds fewer than two rows.
  """
  a, b = (window_values(rows, metric, *w) for w in (first, second))
  for w, v in ((first, a), (second, b)):
    if len(v) < 2:
      raise ValueError(f"window {w[0]}:{w[1]} holds {len(v)} logged rows of {metric}; "
                       "need at least two")
  return (float(np.mean(b) - np.mean(a)), stats.welch_half_width(a, b), len(a),
          len(b))


def parse_window(spec: str, flag: str) -> tuple[int, int]:
  """``'a:b'`` → ``(a, b)``.

  Raises:
    ValueError: not one window of integers with ``a < b`` (the message names ``flag``).
  """
  try:
    lo, hi = (int(x) for x in spec.split(":"))
  except ValueError:
    lo = hi = 0
  if lo >= hi:
    raise ValueError(f"--{flag}={spec!r}: expected a window 'a:b' of steps with a < b")
  return lo, hi


def parse_windows(spec: str) -> tuple[tuple[int, int], tuple[int, int]]:
  """``'a:b,c:d'`` → ``((a, b), (c, d))``.

  Raises:
    ValueError: not two ``a:b`` windows of integers with ``a < b``.
  """
  parts = spec.split(",")
  if len(parts) == 2:
    try:
      return parse_window(parts[0], "compare"), parse_window(parts[1], "compare")
    except ValueError:
      pass
  raise ValueError(f"--compare={spec!r}: expected two windows 'a:b,c:d' of steps "
                   "with a < b and c < d")


def _window_line(train: list[dict], metrics: list[str], spread_metrics: list[str],
                 lo: int, hi: int) -> str:
  """One report line: the window, its row count, means ± 95% and min / median / max."""
  cells = []
  for m in metrics:
    values = window_values(train, m, lo, hi)
    mean, half = mean_and_half_width(values) if values else (math.nan, math.nan)
    cells.append(f"{mean:.4f} ± {half:.4f}")
  for m in spread_metrics:
    values = window_values(train, m, lo, hi)
    cells.append(" / ".join(f"{x:.3f}" for x in spread(values)) if values else "-")
  n = sum(1 for r in train if lo < r["step"] <= hi)
  return f"{lo:,}–{hi:,} | {n} | " + " | ".join(cells)


def report(workdir: str, window: int, metrics: list[str], compare: str,
           spread_metrics: tuple[str, ...] = (), span: str = "") -> str:
  """The text ``main`` prints (see the module docstring).

  Raises:
    ValueError: bad window, span or compare spec, unknown metric, no metrics.jsonl.
  """
  if window <= 0:
    raise ValueError(f"--window={window}: must be positive")
  pair = parse_windows(compare) if compare else None
  extra = parse_window(span, "span") if span else None
  path = workdir_lib.path(workdir, workdir_lib.METRICS)
  if not os.path.exists(path):
    raise ValueError(f"{path}: no such file (a training run writes it)")
  rows = workdir_lib.read_metrics(workdir)
  train = [r for r in rows if not any("/" in k for k in r)]
  # A rate the run did not log is named and left out: the means can still be read.
  absent = [m for m in spread_metrics if not any(m in r for r in train)]
  spread_metrics = [m for m in spread_metrics if m not in absent]
  last = max((r["step"] for r in train), default=0)
  lines = [f"{path}: {len(train)} logged training rows up to step {last:,}" +
           (f" (none has {', '.join(absent)})" if absent else ""),
           "steps | rows | " + " | ".join(
               metrics + [f"{m} min / median / max" for m in spread_metrics])]
  for lo in range(0, last, window):
    lines.append(_window_line(train, metrics, spread_metrics, lo, lo + window))
  if extra:
    lines.append("span " + _window_line(train, metrics, spread_metrics, *extra))
  for r in rows:
    val = {k: v for k, v in r.items() if "/" in k}
    if val:
      lines.append(f"validation at {r['step']:,}: " +
                   ", ".join(f"{k} {v:.4f}" for k, v in sorted(val.items())))
  if pair:
    for m in metrics:
      d, half, na, nb = compare_windows(train, m, *pair)
      lines.append(f"{m}: {pair[1][0]:,}–{pair[1][1]:,} minus {pair[0][0]:,}–"
                   f"{pair[0][1]:,} = {d:+.4f} ± {half:.4f} (Welch 95%, {na} and {nb} rows)")
  return "\n".join(lines)


def main(argv):
  if len(argv) != 2:
    raise app.UsageError("give one run directory (it holds metrics.jsonl)")
  try:
    print(report(argv[1], _WINDOW.value, _METRICS.value, _COMPARE.value,
                 _SPREAD.value, _SPAN.value))
  except (ValueError, OSError) as e:
    cli.fail(str(e))


if __name__ == "__main__":
  app.run(main)
