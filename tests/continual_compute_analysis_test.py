"""The compute-on-a-fixed-stream analysis against simulations with a known truth.

Synthetic compute runs in the format ``compute.py`` writes (rows and per-stream,
per-class values), with errors drawn around known error(FLOPs) curves: the longer
streams' error is linear in log FLOPs, so interpolating their true means in log FLOPs
gives the true curve, and the equal-FLOPs difference and the exchange rate have closed
forms. Numpy only, apart from one report written from rows in a temporary workdir.
"""

import itertools
import json
import math
import os

import numpy as np
import pytest

from metalearn.continual import compute_analysis as ca
from metalearn.continual import compute_headline

L = 5  # The fixed stream's classes.
LONGER = (10, 20)
F0 = 1e8  # FLOPs of the fixed stream at one step per example, no replay.
GRID = tuple(itertools.product((1, 2, 4), (0, 1)))


def flops(k: int, r: int, n: int = L) -> float:
  return F0 * n / L * (1 + 0.6 * (k - 1) + 0.9 * r)


def true_error(k: int, r: int, n: int = L) -> float:
  """Longer streams: 0.5 − 0.1·ln(F/F0) on the first L classes; more steps per example
  gain less per FLOP (0.04), replay more (0.2)."""
  x = math.log(flops(k, r, n) / F0)
  if n > L or (k, r) == (1, 0):
    return 0.5 - 0.1 * x
  return 0.5 - (0.2 if r else 0.04) * x


def _axis(k: int, r: int) -> str:
  if r == 0:
    return "steps_per_example"
  return "replay_passes" if k == 1 else "steps_per_example,replay_passes"


def simulate(rng, streams=10, stream_sd=0.05, noise_sd=0.03, grid=GRID, longer=LONGER,
             step=6, longer_error=None):
  """Rows and values as ``compute.py`` writes them. A stream's effect is shared by every
  setting (the same classes), each setting adds its own noise. ``longer_error(n)``
  replaces the longer streams' (and the base point's) true error."""
  u = rng.normal(0, stream_sd, streams)
  if longer_error is None:
    longer_error = lambda n: true_error(1, 0, n)  # noqa: E731

  def acc(e):
    return 1.0 - (e + u + rng.normal(0, noise_sd, streams))

  values, rows = {}, []

  def add(settings, per_stream, n, scored_on):
    for metric, v in (("accuracy", per_stream), ("train_accuracy", per_stream + 0.1)):
      rows.append(dict(settings, metric=metric, stream_classes=n, scored_on=scored_on,
                       mean=float(v.mean()),
                       ci95=float(1.96 * v.std(ddof=1) / math.sqrt(len(v))),
                       streams=streams, checkpoint_step=step, algorithm="anml"))

  for k, r in grid:
    if (k, r) == (1, 0):
      a = base = acc(longer_error(L))
    else:
      a = acc(true_error(k, r))
    per_class = np.repeat(a[:, None, None], L, axis=2)
    values[f"k{k}_r{r}_accuracy"] = per_class
    values[f"k{k}_r{r}_train_accuracy"] = per_class + 0.1
    add(dict(axis=_axis(k, r), steps_per_example=k, replay_passes=r,
             flops=flops(k, r)), a, L, "seen")
  classes = (L,) + tuple(longer)
  big = np.full((streams, len(classes), classes[-1]), np.nan)
  for i, n in enumerate(classes):
    first = base if n == L else acc(longer_error(n))
    big[:, i, :L] = first[:, None]
    big[:, i, L:n] = (first - 0.2)[:, None]  # The later classes: other numbers.
    if n > L:
      settings = dict(axis="stream_classes", steps_per_example=1, replay_passes=0,
                      flops=flops(1, 0, n))
      add(settings, big[:, i, :n].mean(1), n, "seen")
      add(settings, first, n, "first")
  values["longer_accuracy"] = big
  values["longer_train_accuracy"] = big + 0.1
  values["classes"] = np.array(classes)
  return rows, values


def test_rows_of_the_smoke_format_are_read_back():
  rows, values = simulate(np.random.default_rng(0), streams=2)
  pts = ca.read_points(rows, values)
  assert [p.steps_per_example for p in pts["steps_per_example"]] == [1, 2, 4]
  assert {p.replay_passes for p in pts["steps_per_example"]} == {0}
  assert [p.replay_passes for p in pts["replay_passes"]] == [0, 1]
  assert [p.stream_classes for p in pts["stream_classes"]] == [L, 10, 20]
  assert [p.scored_on for p in pts["stream_classes"]] == ["seen", "first", "first"]
  assert [p.scored_on for p in pts["seen"]] == ["seen"] * 3
  assert len(pts["grid"]) == len(GRID)
  by = {(r["axis"], r["stream_classes"], r["steps_per_example"], r["replay_passes"],
         r["scored_on"]): r for r in rows if r["metric"] == "accuracy"}
  for p in pts["stream_classes"][1:] + pts["grid"]:
    r = by[(p.axis, p.stream_classes, p.steps_per_example, p.replay_passes, p.scored_on)]
    assert p.error == pytest.approx(1 - r["mean"])  # Error, not accuracy.
    assert p.flops == r["flops"] and p.ci95 == r["ci95"] and p.streams == 2
    assert p.values.shape == (2,)
  # The 'first' scoring reads the first L classes only; 'seen' all n.
  first20 = pts["stream_classes"][-1].values
  np.testing.assert_allclose(first20, 1 - values["longer_accuracy"][:, 2, :L].mean(1))
  np.testing.assert_allclose(pts["seen"][-1].values,
                             1 - values["longer_accuracy"][:, 2, :20].mean(1))
  assert ca.longer_reproduces_base(values, "accuracy", L) == 0.0


def test_sine_rows_are_scored_by_their_mse():
  """Sine-wave runs write 'mse' rows: the error is the MSE itself, not 1 − it."""
  rows, values = simulate(np.random.default_rng(11), streams=3)
  rename = {"accuracy": "mse", "train_accuracy": "train_mse"}
  rows = [dict(r, metric=rename[r["metric"]], mean=1 - r["mean"]) for r in rows]
  values = {k.replace("accuracy", "mse"): (v if k == "classes" else 1 - v)
            for k, v in values.items()}
  pts = ca.read_points(rows, values)
  assert ca.held_out_metric(rows) == "mse"
  want = [r["mean"] for r in rows if r["metric"] == "mse" and r["replay_passes"] == 1
          and r["steps_per_example"] == 1]
  assert [p.error for p in pts["replay_passes"]][1:] == pytest.approx(want)


def test_bad_rows_fail_with_one_clear_message():
  rows, values = simulate(np.random.default_rng(1), streams=3)
  with pytest.raises(ValueError, match="mean error"):
    bad = dict(values, k2_r0_accuracy=values["k2_r0_accuracy"] + 0.01)
    ca.read_points(rows, bad)
  with pytest.raises(ValueError, match="appears twice"):
    ca.read_points(rows + rows[:1])
  with pytest.raises(ValueError, match="missing field"):
    ca.read_points([{k: v for k, v in r.items() if k != "flops"} for r in rows])
  moved = dict(values)
  moved["longer_accuracy"] = values["longer_accuracy"].copy()
  moved["longer_accuracy"][:, 0, :L] += 0.1
  assert ca.longer_reproduces_base(moved, "accuracy", L) == pytest.approx(0.1)


def test_equal_flops_difference_covers_the_truth_at_95_percent():
  """400 simulated runs of 5 streams: the t interval over streams of (setting − longer
  stream interpolated at its FLOPs) covers the true difference at about 95% (a normal
  interval would cover about 88% with 5 streams)."""
  rng = np.random.default_rng(2)
  sims, hits, n = 400, 0, 0
  truth = {}
  for k, r in GRID:
    if (k, r) != (1, 0):
      x = flops(k, r)
      truth[(k, r)] = true_error(k, r) - (0.5 - 0.1 * math.log(x / F0))
  for _ in range(sims):
    rows, values = simulate(rng, streams=5)
    for c in ca.equal_flops(ca.read_points(rows, values)):
      s = c["setting"]
      assert c["covered"]
      key = (s["steps_per_example"], s["replay_passes"])
      hits += c["interval"]["lo"] <= truth[key] <= c["interval"]["hi"]
      n += 1
  # Coverage is per setting; settings of one run are correlated, so the binomial
  # tolerance uses the number of runs.
  coverage = hits / n
  sd = math.sqrt(0.95 * 0.05 / sims)
  assert abs(coverage - 0.95) < 3 * sd, coverage


def test_equal_flops_verdicts_follow_the_known_sign():
  rows, values = simulate(np.random.default_rng(3), streams=40, noise_sd=0.005)
  got = {(c["setting"]["steps_per_example"], c["setting"]["replay_passes"]): c
         for c in ca.equal_flops(ca.read_points(rows, values))}
  # Steps gain 0.04 per e-fold, the longer stream 0.1: the longer stream wins; replay
  # gains 0.2: replay wins.
  assert got[(4, 0)]["verdict"] == "higher"
  assert got[(1, 1)]["verdict"] == "lower"
  # The longer streams interpolated in log FLOPs (in FLOPs the gap would be off by 0.006).
  assert got[(4, 0)]["diff"] == pytest.approx(0.06 * math.log(2.8), abs=0.003)
  assert got[(1, 1)]["diff"] == pytest.approx(-0.1 * math.log(1.9), abs=0.003)


def test_no_extrapolation_beyond_the_longer_streams():
  grid = GRID + ((8, 0),)  # 5.2·F0, beyond the longest stream's 4·F0.
  rows, values = simulate(np.random.default_rng(4), grid=grid)
  pts = ca.read_points(rows, values)
  got = {c["setting"]["steps_per_example"]: c for c in ca.equal_flops(pts)
         if c["setting"]["replay_passes"] == 0}
  assert not got[8]["covered"] and "beyond" in got[8]["reason"]
  assert "interval" not in got[8] and "longer_error" not in got[8]
  assert got[4]["covered"]
  ex = {e["setting"]["steps_per_example"]: e for e in ca.exchange(pts, n_boot=50)
        if e["setting"]["replay_passes"] == 0}
  # k = 8's error (0.5 − 0.04·ln 5.2 ≈ 0.434) is reached by the longer streams
  # (0.5 − 0.1·ln F/F0) at ln F/F0 ≈ 0.66; but replay's lower errors are not reached.
  assert ex[8]["status"] == "crossed"
  text = " ".join(compute_headline.headline(ca.analyse(rows, values, n_boot=50,
                                                      fit_boot=0)))
  assert "beyond the longer streams' FLOPs" in text


def test_exchange_rate_against_its_closed_form():
  rows, values = simulate(np.random.default_rng(5), streams=4, stream_sd=0.0,
                          noise_sd=0.0)
  pts = ca.read_points(rows, values)
  ex = {(e["setting"]["steps_per_example"], e["setting"]["replay_passes"]): e
        for e in ca.exchange(pts, n_boot=20)}
  for k in (2, 4):
    e = ex[(k, 0)]
    level = true_error(k, 0)
    want = F0 * math.exp((0.5 - level) / 0.1)  # Where 0.5 − 0.1·ln(F/F0) = level.
    assert e["status"] == "crossed"
    assert e["longer_flops"] == pytest.approx(want, rel=1e-9)
    assert e["ratio"] == pytest.approx(want / flops(k, 0), rel=1e-9)
  # Replay at r = 1 reaches 0.5 − 0.2·ln 1.9 ≈ 0.372 > 0.361, the longest stream's
  # error: crossed. With both (k = 4, r = 1) 0.5 − 0.2·ln 3.7 ≈ 0.238: not reached.
  assert ex[(1, 1)]["status"] == "crossed"
  assert ex[(4, 1)]["status"] == "not reached"


def test_exchange_rate_no_gain_when_the_setting_is_no_better_than_the_base():
  rows, values = simulate(np.random.default_rng(6), streams=4, stream_sd=0.0,
                          noise_sd=0.0)
  for r in rows:
    if r["steps_per_example"] == 2 and r["replay_passes"] == 0 and r["metric"] == "accuracy":
      r["mean"] = 1 - 0.55  # Worse than the base point's 0.5.
  pts = ca.read_points(rows)  # Rows only: no per-stream values, no intervals.
  ex = {(e["setting"]["steps_per_example"], e["setting"]["replay_passes"]): e
        for e in ca.exchange(pts)}
  assert ex[(2, 0)]["status"] == "no gain"
  assert "longer_flops_ci" not in ex[(4, 0)]
  cmp = ca.equal_flops(pts)
  assert all(c["interval"] is None for c in cmp)


def test_exchange_interval_coverage():
  """The interval of the longer-stream FLOPs that reach a setting's error (300 runs of
  10 streams) covers the closed form at about 95% (the plain percentile bootstrap,
  without the rescaling and the t/z widening, covered 0.92 here, 0.81 with 5 streams)."""
  rng = np.random.default_rng(7)
  sims, hits = 300, 0
  want = math.log(F0 * math.exp((0.5 - true_error(4, 0)) / 0.1))
  for _ in range(sims):
    rows, values = simulate(rng, streams=10, grid=((1, 0), (4, 0)))
    e = ca.exchange(ca.read_points(rows, values), n_boot=400, rng=rng)[0]
    lo, hi = e["longer_flops_ci"]
    hits += (lo is None or math.log(lo) <= want) and (hi is None or want <= math.log(hi))
  sd = math.sqrt(0.95 * 0.05 / sims)
  assert abs(hits / sims - 0.95) < 3 * sd, hits / sims


def test_fits_refused_below_four_points_and_below_the_standards():
  rng = np.random.default_rng(8)
  pts = ca.read_points(*simulate(rng, longer=(10, 20)))
  f = ca.fit_axis(pts["stream_classes"])
  assert "too few points to fit" in f["declined"] and "compare" not in f
  pts = ca.read_points(*simulate(rng, longer=(6, 7, 8, 9)))  # 5 points, < a decade.
  f = ca.fit_axis(pts["stream_classes"], n_boot=0)
  assert "compare" not in f and "Not fitted" in f["declined"]


def test_fit_recovers_a_known_floor():
  """Error E + A·(n/L)^-α along the longer streams (8 points over 2 decades of FLOPs):
  the scaling analysis ranks the power law with floor and recovers E and α."""
  ns = np.unique(np.round(L * np.geomspace(1, 100, 8)).astype(int))
  rows, values = simulate(np.random.default_rng(9), streams=30, noise_sd=0.002,
                          stream_sd=0.002, longer=tuple(int(n) for n in ns[1:]),
                          grid=((1, 0),), longer_error=lambda n: 0.2 + 0.5 * (n / L) ** -0.7)
  f = ca.fit_axis(ca.read_points(rows, values)["stream_classes"], n_boot=0)
  assert "compare" in f, f.get("declined")
  plf = next(c for c in f["compare"] if c["model"] == "power_law_floor")
  assert plf["rankable"]
  assert plf["params"]["E"] == pytest.approx(0.2, abs=0.02)
  assert plf["params"]["alpha"] == pytest.approx(0.7, abs=0.1)


def test_report_written_from_rows_in_a_workdir(tmp_path):
  from experiments import continual_omniglot
  from metalearn.continual import compute_report
  from metalearn.continual import evaluate as evaluate_lib
  from metalearn.errors import MetalearnError

  config = continual_omniglot.get_config("smoke")
  q = config.compute
  grid = tuple(itertools.product(q.steps_per_example, q.replay_passes))
  rows, values = simulate(np.random.default_rng(10), streams=config.eval.streams,
                          grid=grid, longer=tuple(q.longer))
  p = evaluate_lib.protocol(config, shuffle=False, epochs=1)
  rows = [dict(evaluate_lib.row_settings(config, 6, p), **r) for r in rows]
  os.makedirs(tmp_path / "eval")
  stem = str(tmp_path / "eval" / "continual_compute_step6_test_abcd1234")
  with open(stem + ".jsonl", "w") as f:
    f.writelines(json.dumps(r) + "\n" for r in rows)
  np.savez(stem + ".npz", **values)
  res = compute_report.write(config, str(tmp_path), n_boot=50, fit_boot=0)
  for name in (compute_report.REPORT, compute_report.FITS, compute_report.PLOT):
    assert os.path.getsize(tmp_path / name) > 0
  with open(tmp_path / compute_report.FITS) as f:
    assert json.load(f)["headline"] == res["headline"]
  with open(tmp_path / compute_report.REPORT) as f:
    text = f.read()
  assert res["headline"][0] in text and "too few points to fit" in text
  config.unlock()
  config.compute.longer = (10, 20)  # Another grid: its rows are not these.
  with pytest.raises(MetalearnError, match="no compute rows for this config"):
    compute_report.write(config, str(tmp_path))
