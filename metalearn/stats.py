"""The 95% interval of a mean that every report in metalearn prints.

Evaluation rows, paired protocol differences, scaling-curve points and training-metric
windows all give a mean with the half-width of its normal-approximation 95% interval,
``Z95 · sd / √n`` with the sample standard deviation (n − 1 denominator), as few-shot
papers do (1.96, not the exact quantile, so that our intervals compare with theirs).
"""

import math

import numpy as np

Z95 = 1.96


def half_width(values, axis: int = 0, *, single: float = math.nan):
  """``Z95 · sd / √n`` of the mean of ``values`` along ``axis``.

  Args:
    values: an array (or sequence) of observations; ``axis`` runs over them.
    axis: the axis of the observations.
    single: the half-width to give when there are fewer than two observations, where
      the sample sd is undefined: nan (unknown) unless a caller needs a number, as the
      inverse-variance weights of ``scaling_analysis`` do.

  Returns:
    The half-width: a float for 1-D ``values``, else an array over the other axes.
  """
  v = np.asarray(values, dtype=np.float64)
  n = v.shape[axis]
  if n < 2:
    return np.full(np.delete(v.shape, axis), single)[()]
  return (Z95 * v.std(axis, ddof=1) / math.sqrt(n))[()]


def welch_half_width(first, second) -> float:
  """``Z95 · √(s₁²/n₁ + s₂²/n₂)``: the 95% half-width of a difference of the means of
  two independent samples (Welch's, normal approximation).

  Raises:
    ValueError: a sample has fewer than two observations.
  """
  a, b = (np.asarray(x, dtype=np.float64).ravel() for x in (first, second))
  if min(a.size, b.size) < 2:
    raise ValueError(f"need two observations in each sample, got {a.size} and {b.size}")
  return float(Z95 * math.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size))
