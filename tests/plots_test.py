"""What the figures draw: a rate's interval stays within [0, 1]; a loss's is drawn as
computed."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from metalearn.scaling import plots  # noqa: E402


def _bar_ends(container) -> np.ndarray:
  """(lower, upper) end of each drawn vertical bar."""
  segments = container.lines[2][0].get_segments()
  return np.array([(min(s[0][1], s[1][1]), max(s[0][1], s[1][1])) for s in segments])


def test_a_rate_interval_is_clipped_to_its_range_and_a_loss_is_not():
  mean, ci = np.array([0.05, 0.5, 0.97]), np.array([0.2, 0.1, 0.1])
  fig, ax = plt.subplots()
  ends = _bar_ends(plots._errorbar(ax, "error", [1, 2, 3], mean, ci, fmt="o"))
  np.testing.assert_allclose(ends, [[0.0, 0.25], [0.4, 0.6], [0.87, 1.0]])
  ends = _bar_ends(plots._errorbar(ax, "mse>0.1", [1, 2, 3], mean, ci, fmt="o"))
  np.testing.assert_allclose(ends[0], [0.0, 0.25])
  ends = _bar_ends(plots._errorbar(ax, "loss", [1, 2, 3], mean, ci, fmt="o"))
  np.testing.assert_allclose(ends, [[-0.15, 0.25], [0.4, 0.6], [0.87, 1.07]])
  plt.close(fig)
