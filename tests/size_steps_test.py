"""size_steps: model size against meta-training length at equal FLOPs, on synthetic runs
drawn from a known law (so the best size at each budget is known)."""

import numpy as np
import pytest

from metalearn.scaling import size_steps

WIDTHS = (8, 16, 32, 64)
STEPS = tuple(250 * 2 ** j for j in range(7))  # 250 … 16,000


def _law(width, steps):
  """A known error surface: capacity and training-length terms, each a power law."""
  return 0.02 + 2.0 * width ** -0.8 + 6.0 * steps ** -0.45


def _flops(width, steps):
  return 1e3 * width ** 2 * steps  # Conv FLOPs grow with width²: (2N, S) = (N, 4S).


def _runs(rng, seeds=3, episodes=300, seed_sd=0.01, episode_sd=0.1, law=_law):
  """Each width's run at every checkpoint: truth + a training-seed effect (one per run,
  kept along its steps) + an episode effect shared by all + residual noise."""
  episode = rng.normal(0.0, episode_sd, episodes)
  runs = []
  for w in WIDTHS:
    seed = rng.normal(0.0, seed_sd, (seeds, 1))
    values = tuple(law(w, s) + seed + episode
                   + rng.normal(0.0, 0.05, (seeds, episodes)) for s in STEPS)
    runs.append(size_steps.SizeRun(size=w, flops=tuple(_flops(w, s) for s in STEPS),
                                   values=values))
  return runs


def _true_best(budget):
  here = [(w, _law(w, budget / _flops(w, 1))) for w in WIDTHS
          if _flops(w, STEPS[0]) <= budget * (1 + 1e-9)
          and budget <= _flops(w, STEPS[-1]) * (1 + 1e-9)]
  return min(here, key=lambda t: t[1])[0], len(here)


def test_the_best_size_per_budget_is_the_laws_and_grows_with_the_budget():
  runs = _runs(np.random.default_rng(0), seed_sd=0.0, episode_sd=0.0)
  runs = [size_steps.SizeRun(r.size, r.flops, tuple(np.full((3, 300), _law(r.size, s))
                                                     for s in STEPS)) for r in runs]
  budgets = sorted({_flops(w, s) for w in WIDTHS for s in STEPS})
  points = size_steps.envelope(runs, budgets)
  assert points
  for p in points:
    best, n = _true_best(p["budget"])
    assert p["best"] == best
    assert len(p["sizes"]) == n  # Only the runs that pass through the budget.
  summary = size_steps.summary(points)
  assert summary["monotone"]
  assert [r["size"] for r in summary["ranges"]][0] == 8
  assert len(summary["ranges"]) >= 3  # The law's optimum moves through the widths.


def test_no_size_is_read_beyond_its_run():
  runs = _runs(np.random.default_rng(1))
  lowest = _flops(8, STEPS[0])
  (p,) = size_steps.envelope(runs, [_flops(8, STEPS[2])])  # 8 and 16 only reach it.
  assert p["sizes"] == [8, 16]
  assert size_steps.envelope(runs, [lowest]) == []  # One size only: nothing to compare.
  assert size_steps.envelope(runs, [_flops(64, STEPS[-1]) * 1.01]) == []


def test_interpolation_is_linear_in_log_flops_per_seed_and_episode():
  a, b = np.full((2, 5), 0.4), np.full((2, 5), 0.2)
  a[1] += 0.1
  run = size_steps.SizeRun(8, (1e10, 1e12), (a, b))
  v = run.at(1e11)  # Half way in log FLOPs.
  np.testing.assert_allclose(v, (a + b) / 2)
  with pytest.raises(ValueError, match="increase"):
    size_steps.SizeRun(8, (1e12, 1e10), (a, b))


def test_decided_about_5_percent_of_the_time_when_two_sizes_tie():
  """Two sizes with the same true error at a budget: the runner-up is called worse
  (its gap's 95% interval above 0) at about the two-sided 5% rate; a real gap of 0.06
  is called nearly always."""
  def tie(width, steps):  # Widths 8 and 16 equal at the budget tested below.
    return 0.3 if (width, steps) in ((8, 2000), (16, 500)) else 0.5
  budget = _flops(8, 2000)
  rng = np.random.default_rng(2)
  n = 200
  calls = [size_steps.envelope(_runs(rng, law=tie), [budget])[0]["decided"]
           for _ in range(n)]
  rate = np.mean(calls)
  assert rate < 0.05 + 3 * np.sqrt(0.05 * 0.95 / n), rate
  gap = lambda w, s: tie(w, s) + (0.06 if w == 16 else 0.0)  # noqa: E731
  calls = [size_steps.envelope(_runs(rng, law=gap), [budget])[0]["decided"]
           for _ in range(50)]
  assert np.mean(calls) > 0.9


def _width_rows(law=_law, base_width=64, k=(0, 1, 2)):
  """Sweep rows of width runs scored along their steps (base = the widest run)."""
  rows, values = [], {}
  rng = np.random.default_rng(4)
  for w in WIDTHS:
    for i, n in enumerate(STEPS):
      last = i == len(STEPS) - 1
      if w == base_width:
        group, axis = ("base", "base") if last else (f"steps={n}", "steps")
      else:
        group, axis = ((f"width={w}", "width") if last else
                       (f"width={w}@steps={n}", "width_steps"))
      for seed in range(3):
        point = f"{group}_s{seed}"
        values[f"{point}/error"] = law(w, n) + rng.normal(0, 0.005, (200, len(k)))
        for kk in k:
          rows.append(dict(point=point, group=group, axis=axis, axis_value=n, seed=seed,
                           metric="error", k=kk, k_train=1, shots=1, eval_shots=1,
                           tasks=0, num_steps=n, width=w, tasks_key="",
                           meta_training_flops=_flops(w, n), adaptation_flops=10.0 * kk))
  return rows, values


def test_the_sweep_analysis_reads_width_runs_and_reports_the_best_width():
  from metalearn.scaling import analysis as analysis_lib
  from metalearn.scaling import headline
  from metalearn.scaling import sections
  rows, values = _width_rows()
  groups = analysis_lib._groups(rows)
  res = analysis_lib._size_steps(rows, values, groups, "error", groups[0])
  assert res["k"] == 1
  for p in res["points"]:
    assert p["best"] == _true_best(p["budget"])[0]
  text = headline._size_steps(dict(size_steps=res), "error")
  assert "grows with the budget" in text and text.startswith("Model width")
  table = "\n".join(sections.size_steps_section(dict(size_steps=res), "error"))
  assert table.count("\n| ") == len(res["points"]) + 2  # Header, rule, one per budget.
