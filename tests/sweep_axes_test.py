"""The sweep's axes kept apart: evaluated points (test-time shots, checkpoints along a
run) and trained ones (meta-training shots, width, a task pool), and the analyses they
feed (what extra shots are worth in inner steps; overfitting along a run), checked on
synthetic sweeps whose truth is known and against an uninterrupted run."""

import copy

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from experiments import compute_scaling
from metalearn import config as config_lib
from metalearn import models
from metalearn.run import loop
from metalearn.run import scoring
from metalearn.run import workdir as workdir_lib
from metalearn.scaling import analysis as analysis_lib
from metalearn.scaling import iso_flop
from metalearn.scaling import sweep
from metalearn.tasks import mixture


def _mixture_sweep(**axes) -> ml_collections.ConfigDict:
  c = compute_scaling.get_config("smoke")
  with c.unlocked():
    for k, v in axes.items():
      c.sweep[k] = v
  return c


def test_each_point_moves_one_axis_and_evaluated_points_read_their_home():
  c = compute_scaling.get_config("")
  points = sweep.grid(c)
  base = next(p for p in points if p.axis == "base")
  names = {p.name for p in points}
  assert len(names) == len(points)
  for p in points:
    pc, bc = p.config, base.config
    if p.axis == "test_shots":  # The base model with other support shots, same run.
      assert p.home == f"base_s{p.seed}" and not p.trained
      assert (pc.shots, pc.num_steps) == (bc.shots, bc.num_steps)
      assert pc.eval.shots == p.value and pc.eval.queries == bc.queries
    elif p.axis == "steps":  # A checkpoint of the base run.
      assert p.home == f"base_s{p.seed}" and pc.num_steps == p.value < bc.num_steps
      assert config_lib.eval_protocol(pc) == config_lib.eval_protocol(bc)
    elif p.axis == "train_shots":  # Retrained with other shots, scored at the base's.
      assert p.trained and pc.shots == p.value != bc.shots
      assert (pc.eval.shots, pc.eval.queries) == (bc.shots, bc.queries)
    elif p.axis == "width":
      assert p.trained and models.width(pc) == p.value != models.width(bc)
      assert len(pc.model.hidden) == len(bc.model.hidden)
    # An evaluated point runs after its home, except a steps point: it is scored on the
    # way to its home's last step.
    if not p.trained:
      before = [q.name for q in points[:points.index(p)]]
      assert (p.home in before) == (p.axis != "steps"), p.name
  # Steps span at least 1.5 decades of meta-training up to the base run's length.
  steps = sorted({p.value for p in points if p.axis == "steps"} | {base.config.num_steps})
  assert np.log10(steps[-1] / steps[0]) >= 1.5


def test_full_study_axes_span_a_decade_and_a_half_with_seeds():
  c = compute_scaling.get_config("full")
  s = c.sweep
  for axis in ("k_train", "width"):
    values = [v for v in s[axis] if v]
    assert np.log10(max(values) / min(values)) >= 1.0, axis
  assert np.log10(max(s.width) / min(s.width)) >= 1.5
  assert len(s.seeds) >= 3 and len(s.base_seeds) >= 5
  assert any(p.axis == "tasks_steps" for p in sweep.grid(c))


@pytest.mark.parametrize("change, match", [
    (dict(steps=(50, 10_000)), "not in 1..run.num_steps"),
    (dict(order=("k_train", "test_shots")), "not in"),
])
def test_grid_rejects_bad_axes(change, match):
  with pytest.raises(ValueError, match=match):
    sweep.grid(_mixture_sweep(**change))


def test_steps_need_a_constant_outer_schedule():
  c = _mixture_sweep()
  with c.unlocked():
    c.run.outer.schedule = "linear"
  with pytest.raises(ValueError, match="constant outer schedule"):
    sweep.grid(c)


def test_width_reads_and_sets_hidden_layers_and_filters():
  c = config_lib.base_config()
  c.model.hidden = (40, 40)
  models.set_width(c, 8)
  assert tuple(c.model.hidden) == (8, 8) and models.width(c) == 8
  c.model.name = "conv4_omniglot"
  assert models.width(c) == 64  # filters = 0: the paper's.
  models.set_width(c, 16)
  assert c.model.filters == 16 and models.width(c) == 16
  for name in ("conv4_omniglot", "conv4_miniimagenet"):  # The built net has that width.
    c.model.name = name
    size = 28 if name == "conv4_omniglot" else 84
    shapes = jax.eval_shape(models.get(name).make(c).init, jax.random.key(0),
                            jnp.zeros((1, size, size, 1 if size == 28 else 3)))
    kernels = [x.shape for p, x in jax.tree_util.tree_leaves_with_path(shapes)
               if "Conv" in jax.tree_util.keystr(p) and "kernel" in jax.tree_util.keystr(p)]
    assert kernels and all(k[-1] == 16 for k in kernels), (name, kernels)
  c.model.name = "mlp"
  c.model.hidden = (40, 20)
  with pytest.raises(ValueError, match="one size"):
    models.width(c)


def test_task_pool_draws_only_its_tasks_and_evaluation_stays_fresh():
  kw = dict(ways=3, shots=1, queries=1, dim=4, mean_std=1.0, noise=0.0)
  seen = set()
  for i in range(40):
    e = mixture.sample_episodes(jax.random.key(i), 8, pool_size=5, **kw)
    for task in np.asarray(e.support_x).round(5):  # noise 0: the support is the means.
      seen.add(task.tobytes())
  assert len(seen) == 5
  fresh = mixture.sample_episodes(jax.random.key(0), 50, **kw)
  assert len({t.tobytes() for t in np.asarray(fresh.support_x).round(5)}) == 50
  c = config_lib.base_config()
  c.task, c.mixture.pool = "mixture", 5
  assert mixture.make(c, evaluation=False).pool_size == 5
  assert mixture.make(c, evaluation=True).pool_size == 0


def test_a_checkpoint_scored_on_the_way_equals_an_uninterrupted_run(tmp_path):
  # The steps axis trains its home to step s, scores, and trains on. The final model
  # must be the one an uninterrupted run gives, and the step-s model the one a run of s
  # steps gives: stopping changes nothing.
  c = compute_scaling.get_config("smoke").run
  with c.unlocked():
    c.algorithm = "fomaml"  # Compiles faster; the loop is the same.
    c.num_steps, c.log_every, c.checkpoint_every = 30, 10, 10
    c.eval.episodes, c.eval.batch, c.eval.eval_steps, c.eval.steps = 40, 40, (0, 2), 2
  stop = copy.deepcopy(c)
  stop.num_steps = 12
  on_the_way = str(tmp_path / "on_the_way")
  loop.train(stop, on_the_way)
  mid = workdir_lib.find_evaluation(on_the_way, 12, config_lib.eval_protocol(stop))
  assert mid is None
  scoring.evaluate(stop, on_the_way, step=12)
  final = loop.train(c, on_the_way)
  straight = loop.train(c, str(tmp_path / "straight"))
  short = loop.train(stop, str(tmp_path / "short"))
  same = lambda a, b: jax.tree.map(np.testing.assert_array_equal, a.theta, b.theta)
  same(final, straight)
  v_mid = workdir_lib.find_evaluation(on_the_way, 12,
                                      config_lib.eval_protocol(stop)).values()
  scoring.evaluate(stop, str(tmp_path / "short"), step=12, state=short)
  v_short = workdir_lib.find_evaluation(str(tmp_path / "short"), 12,
                                        config_lib.eval_protocol(stop)).values()
  np.testing.assert_array_equal(v_mid["accuracy"], v_short["accuracy"])


K = np.array([0, 1, 2, 4, 8, 16])


def _values(mu_by_group, seeds=3, episodes=300, sd=0.02, seed=0):
  rng = np.random.default_rng(seed)
  return {g: mu[None, None] + rng.normal(0, sd, (seeds, episodes, len(mu)))
          for g, mu in mu_by_group.items()}


def test_shot_worth_finds_the_inner_steps_that_match_extra_shots():
  # Base (1 shot): error 1/(1+k) at 100 FLOPs per step. 3 shots at k = 1: error 0.2 at
  # 300 FLOPs. The base reaches 0.2 at k = 4 (400 FLOPs): worth 4/3 of its FLOPs.
  # 5 shots reach 0.02 at k = 1, below anything the base measures: beyond the range.
  mu = {"base": 1 / (1 + K), "test_shots=3": np.where(K >= 1, 0.2, 0.9),
        "test_shots=5": np.where(K >= 1, 0.02, 0.9)}
  v = _values(mu)
  flops = {"base": 100.0 * K, "test_shots=3": 300.0 * K, "test_shots=5": 500.0 * K}
  groups = [dict(group="base", axis="base", eval_shots=1),
            dict(group="test_shots=3", axis="test_shots", eval_shots=3),
            dict(group="test_shots=5", axis="test_shots", eval_shots=5)]
  three, five = iso_flop.shot_worth(groups, lambda g: (K, flops[g], v[g]), "base", 1)
  assert three["base_k_equivalent"] == pytest.approx(4.0, rel=0.05)
  assert three["flops_ratio"] == pytest.approx(4 / 3, rel=0.05)
  lo, hi = three["k_equivalent_range"]
  assert lo <= 4.0 <= hi
  b = five["beyond_range"]
  assert b["base_k"] == 16 and b["flops_ratio_above"] == pytest.approx(1600 / 500)
  assert b["verdict"] == "lower"  # The 5-shot point is lower than the base's best.


def _trajectory_rows(curve_by_tasks, steps, k_train=1):
  """Rows and per-episode values of base/steps and tasks/tasks_steps groups whose
  error at every k is ``curve_by_tasks[tasks][i]`` at ``steps[i]``."""
  rows, values = [], {}
  rng = np.random.default_rng(3)
  for tasks, curve in curve_by_tasks.items():
    for i, (n, err) in enumerate(zip(steps, curve)):
      last = i == len(steps) - 1
      if tasks == 0:
        group, axis = ("base", "base") if last else (f"steps={n}", "steps")
      else:
        group, axis = ((f"tasks={tasks}", "tasks") if last else
                       (f"tasks={tasks}@steps={n}", "tasks_steps"))
      for seed in range(3):
        point = f"{group}_s{seed}"
        values[f"{point}/error"] = err + rng.normal(0, 0.01, (200, len(K)))
        for k in K:
          rows.append(dict(point=point, group=group, axis=axis, axis_value=n,
                           seed=seed, metric="error", k=int(k), k_train=k_train,
                           shots=1, eval_shots=1, tasks=tasks, num_steps=n,
                           meta_training_flops=1e6 * n, adaptation_flops=10.0 * k))
  return rows, values


def test_a_small_task_pool_trained_longer_is_found_to_overfit():
  steps = [100, 300, 1000, 3000]
  rows, values = _trajectory_rows({0: [0.5, 0.4, 0.3, 0.25],
                                   8: [0.5, 0.35, 0.4, 0.5]}, steps)
  groups = analysis_lib._groups(rows)
  base = groups[0]
  out = analysis_lib._trajectories(rows, values, groups, "error", base, "tasks")
  by = {t["value"]: t for t in out}
  assert not by[0]["overfits"] and by[0]["best_steps"] == 3000
  assert by[8]["overfits"] and by[8]["best_steps"] == 300
  assert by[8]["last_minus_best"]["diff"] == pytest.approx(0.15, abs=0.01)


def test_headline_places_the_fitted_floor_against_the_known_one():
  from metalearn.scaling import headline
  tt = dict(k=[0, 1, 256], mean=[0.8, 0.3, 0.22], ci95=[0.01, 0.05, 0.02], n_seeds=5,
            episodes=600, known_floor=dict(value=0.176, source="x"),
            bootstrap=dict(power_law_floor=dict(param_ci=dict(E=[0.2, 0.25]),
                                                estimate=dict(params=dict(E=0.225)))))
  above = headline._test_time(tt, "error")
  assert "above the Bayes-optimal 0.176: a floor of this learner" in above
  assert "at k = 1 to 0.22 ± 0.02 at k = 256" in above
  tt["bootstrap"]["power_law_floor"]["param_ci"]["E"] = [0.15, 0.25]
  assert "consistent with the Bayes-optimal" in headline._test_time(tt, "error")


def test_runs_of_a_trained_axis_are_scored_along_their_steps():
  c = _mixture_sweep(steps_for=("width", "tasks"))
  points = {p.name: p for p in sweep.grid(c)}
  p = points["width=8@steps=50_s0"]
  assert p.axis == "width_steps" and p.home == "width=8_s0" and not p.trained
  assert models.width(p.config) == 8 and p.config.num_steps == 50
  home = points["width=8_s0"]
  assert sweep.point_config(c, "width", 8, 0).to_dict() == home.config.to_dict()
  names = list(points)
  assert names.index(p.name) < names.index(home.name)  # Scored on the way there.
  assert points["tasks=16@steps=100_s0"].config.mixture.pool == 16
  with pytest.raises(ValueError, match="steps_for"):
    sweep.grid(_mixture_sweep(steps_for=("test_shots",)))
