"""MAML++ against independent computations: MAML itself with every switch off (to the
bit), the multi-step loss and derivative-order annealing against Python loops over the
inner steps, the per-step batch-norm and rate sets beyond the trained K, the annealing
weights by hand, the cosine outer schedule, config checks, and one run end to end."""

from typing import Any

from flax import linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments import omniglot_mamlpp
from experiments import sinusoid
from metalearn import algorithms
from metalearn import builder as build_lib
from metalearn import config as config_lib
from metalearn import flops as flops_lib
from metalearn import learner as learner_lib
from metalearn.algorithms import mamlpp
from metalearn.errors import ConfigError
from metalearn.inner import InnerConfig
from metalearn.models import layers
from metalearn.run import loop
from metalearn.run import scoring
from metalearn.tasks.episode import Episode

OFF = mamlpp.Options(msl=False, lslr=False, per_step_bn=False, first_order_steps=0)


class _BNNet(nn.Module):
  """Dense → batch norm → ReLU → Dense: the smallest model with batch-norm parameters."""

  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, num_stats=None):
    x = nn.Dense(8, param_dtype=self.dtype)(x)
    x = layers.BatchStatNorm(param_dtype=self.dtype)(x, num_stats)
    return nn.Dense(3, param_dtype=self.dtype)(nn.relu(x))


def _episode(key, shape, dtype=jnp.float32, ways=3, shots=2, queries=2):
  k1, k2 = jax.random.split(key)
  return Episode(support_x=jax.random.normal(k1, (ways * shots,) + shape, dtype),
                 support_y=jnp.repeat(jnp.arange(ways), shots),
                 query_x=jax.random.normal(k2, (ways * queries,) + shape, dtype),
                 query_y=jnp.repeat(jnp.arange(ways), queries))


def _bn_problem(steps, dtype=jnp.float32):
  """The BN net, an episode, and a theta whose per-step rates and batch-norm sets all
  differ (as after meta-training), for ``steps`` trained steps."""
  key = jax.random.key(0)
  learner = learner_lib.Learner(_BNNet(dtype), "xent")
  episode = _episode(key, (4,), dtype)
  theta = mamlpp.init_theta(learner.init(key, episode.support_x),
                            InnerConfig(steps=steps, lr=0.3))
  assert sorted(theta) == ["bn", "lrs", "params"] and "BatchStatNorm_0" in theta["bn"]
  assert "BatchStatNorm_0" not in theta["params"]  # Left alone by the inner loop.
  rng = np.random.default_rng(1)
  theta["lrs"] = jax.tree.map(lambda a: jnp.asarray(rng.uniform(0.1, 0.6, a.shape), dtype),
                              theta["lrs"])
  theta["bn"] = jax.tree.map(lambda b: b + jnp.asarray(0.3 * rng.standard_normal(b.shape),
                                                       dtype), theta["bn"])
  return learner, episode, theta


def _model(params, bn, i):
  """The model's parameters with batch-norm set ``i`` (written out for the BN net)."""
  return dict(params, BatchStatNorm_0={n: v[i] for n, v in bn["BatchStatNorm_0"].items()})


def _sgd(p, g, lrs, i):
  return {m: {n: p[m][n] - lrs[m][n][i] * g[m][n] for n in p[m]} for m in p}


def _weighted_query_losses(learner, episode, theta, weights, first_order=False):
  """Σ_k w_k L_query after step k, as a Python loop: support pass of step k with set k,
  the query after it with set k too (the set of the last step taken)."""
  p, total = theta["params"], 0.0
  for k, w in enumerate(weights):
    g = jax.grad(lambda q, k=k: learner.support_loss(_model(q, theta["bn"], k),
                                                     episode)[0])(p)
    if first_order:
      g = jax.lax.stop_gradient(g)
    p = _sgd(p, g, theta["lrs"], k)
    total = total + w * learner.query_loss(_model(p, theta["bn"], k), episode)[0]
  return total


def _close(a, b, rtol):
  jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=rtol, atol=rtol * 1e-2),
               a, b)


def test_every_switch_off_is_maml_to_the_bit():
  # The BN net: with per_step_bn off its batch norm is one set, adapted as MAML's.
  key = jax.random.key(2)
  learner = learner_lib.Learner(_BNNet(), "xent")
  episode = _episode(key, (4,))
  params = learner.init(key, episode.support_x)
  inner = InnerConfig(steps=2, lr=0.3)
  record = mamlpp.make(OFF)
  theta = record.init(learner, key, episode.support_x, inner)
  assert list(theta) == ["params"]
  ours, _ = jax.jit(lambda t, s: record.meta_grad(
      t, episode, key, learner=learner, inner=inner, step=s))(theta, jnp.int32(5))
  maml, _ = jax.jit(lambda p: algorithms.maml.maml_meta_grad(
      p, episode, key, learner=learner, inner=inner))(params)
  jax.tree.map(np.testing.assert_array_equal, ours["params"], maml)


@pytest.mark.parametrize("step,expected", [
    (0, [1 / 3, 1 / 3, 1 / 3]), (5, [1 / 6, 1 / 6, 2 / 3]),
    (9.9, [0.01, 0.01, 0.98]),  # Non-final weights at their floor 0.03 / K.
    (10, [0, 0, 1]), (500, [0, 0, 1])])
def test_multi_step_loss_weights_by_hand(step, expected):
  np.testing.assert_allclose(mamlpp.msl_weights(step, 3, 10), expected, rtol=1e-6,
                             atol=1e-7)
  np.testing.assert_allclose(mamlpp.msl_weights(step, 1, 10), [1.0])


def test_multi_step_loss_gradient_is_the_unrolled_weighted_sum():
  with jax.enable_x64(True):
    learner, episode, theta = _bn_problem(3, jnp.float64)
    inner = InnerConfig(steps=3, lr=0.3)
    opts = mamlpp.Options(msl_steps=10)
    grad = jax.jit(lambda t, s: mamlpp.mamlpp_meta_grad(
        t, episode, jax.random.key(0), learner=learner, inner=inner, step=s, opts=opts))
    reference = jax.jit(jax.grad(lambda t, w: _weighted_query_losses(
        learner, episode, t, w)))
    for step, weights in ((5, [1 / 6, 1 / 6, 2 / 3]), (12, [0.0, 0.0, 1.0])):
      ours, aux = grad(theta, jnp.int32(step))
      _close(ours, reference(theta, jnp.asarray(weights)), rtol=1e-9)
      assert float(aux["msl_weight_final"]) == pytest.approx(weights[-1])
    every_step = reference(theta, jnp.asarray([1 / 6, 1 / 6, 2 / 3]))
    final_only = reference(theta, jnp.asarray([0.0, 0.0, 1.0]))
    assert not np.allclose(every_step["params"]["Dense_0"]["kernel"],
                           final_only["params"]["Dense_0"]["kernel"], rtol=1e-3)


def test_derivative_order_switches_at_first_order_steps():
  learner, episode, theta = _bn_problem(1)
  inner = InnerConfig(steps=1, lr=0.3)
  opts = mamlpp.Options(msl=False, first_order_steps=3)
  grad = jax.jit(lambda t, s: mamlpp.mamlpp_meta_grad(
      t, episode, jax.random.key(0), learner=learner, inner=inner, step=s, opts=opts))
  reference = jax.jit(lambda t, fo: jax.grad(lambda t: _weighted_query_losses(
      learner, episode, t, [1.0], first_order=fo))(t), static_argnums=1)
  first, second = reference(theta, True), reference(theta, False)
  assert not np.allclose(first["params"]["Dense_0"]["kernel"],
                         second["params"]["Dense_0"]["kernel"], rtol=1e-2)
  for step, want in ((0, first), (2, first), (3, second), (40, second)):
    ours, aux = grad(theta, jnp.int32(step))
    _close(ours, want, rtol=2e-4)
    assert float(aux["second_order"]) == float(want is second)
  # A Python int step (FLOP counting's) picks the order while tracing.
  static = jax.jit(lambda t: mamlpp.mamlpp_meta_grad(
      t, episode, jax.random.key(0), learner=learner, inner=inner, step=2, opts=opts))
  _close(static(theta)[0], first, rtol=2e-4)


def test_steps_beyond_the_trained_k_reuse_the_last_sets():
  learner, episode, theta = _bn_problem(2)
  record = mamlpp.make(mamlpp.Options(), train_lr=0.3)
  eval_steps = (0, 1, 2, 3, 5)
  curve = jax.jit(lambda t: record.adapt_curve(
      t, episode, learner=learner, inner=InnerConfig(lr=0.3), eval_steps=eval_steps))(theta)

  def reference(theta):
    """Support pass of step k: set min(k, K−1); the query after k steps: set
    min(k−1, K−1) (set 0 before adapting); K = 2."""
    p, out = theta["params"], []
    for k in range(max(eval_steps) + 1):
      if k in eval_steps:
        model = _model(p, theta["bn"], min(max(k - 1, 0), 1))
        out.append((learner.query_loss(model, episode)[0],
                    learner.support_loss(model, episode)[0]))
      g = jax.grad(lambda q, k=k: learner.support_loss(
          _model(q, theta["bn"], min(k, 1)), episode)[0])(p)
      p = _sgd(p, g, theta["lrs"], min(k, 1))
    return jnp.asarray(out)

  want = jax.jit(reference)(theta)
  np.testing.assert_allclose(curve["loss"], want[:, 0], rtol=2e-5)
  np.testing.assert_allclose(curve["support_loss"], want[:, 1], rtol=2e-5)
  assert curve["support_loss"][-1] < curve["support_loss"][0]
  query = jax.jit(lambda t: record.adapted_query_loss(
      t, episode, learner=learner, inner=InnerConfig(steps=5, lr=0.3)))(theta)
  np.testing.assert_allclose(query, curve["loss"][-1], rtol=2e-5)


def _run_config(num_steps=6, schedule="constant"):
  c = sinusoid.get_config("smoke")
  c.algorithm = "mamlpp"
  c.inner.steps = 2
  c.model.hidden = (8, 8)
  c.mamlpp.msl_steps = 2
  c.outer.schedule = schedule
  c.num_steps = num_steps
  c.meta_batch = 2
  c.log_every = 3
  c.checkpoint_every = 3
  c.val.every = 0
  c.eval.episodes = 8
  c.eval.batch = 8
  c.eval.eval_steps = (0, 2, 4)
  c.fast_compile = True
  return c


def test_cosine_outer_schedule():
  c = _run_config(num_steps=10, schedule="cosine")
  c.outer.optimizer, c.outer.lr = "sgd", 2.0
  config_lib.validate(c)
  opt = build_lib.outer_optimizer(c)
  x = jnp.zeros(())
  state, rates = opt.init(x), []
  for _ in range(11):
    update, state = opt.update(jnp.ones(()), state, x)
    rates.append(-float(update))
  np.testing.assert_allclose(rates, [1 + np.cos(np.pi * t / 10) for t in range(11)],
                             atol=1e-6)
  old = c.to_dict()
  c.num_steps = 20  # The schedule ends at num_steps: not a resumable change under it.
  assert config_lib.changed_keys(old, c.to_dict()) == ["num_steps"]
  c.outer.schedule = "cosine_restarts"
  with pytest.raises(ConfigError, match="config.outer.schedule: 'cosine_restarts' not in"):
    config_lib.validate(c)


def test_bad_config_is_one_error_naming_the_key():
  for key, value in (("inner.optimizer", "adam"), ("inner.frozen", "Dense"),
                     ("mamlpp.msl_steps", -1), ("mamlpp.first_order_steps", -3),
                     ("inner.steps", 0)):
    c = _run_config()
    section, name = key.split(".")
    c[section][name] = value
    with pytest.raises(ConfigError, match=f"config.{key}"):
      config_lib.validate(c)


@pytest.mark.parametrize("arg", ["", "20way1shot", "20way1shot,maxpool", "smoke",
                                 "maxpool,smoke"])
def test_experiment_config_validates(arg):
  c = omniglot_mamlpp.get_config(arg)
  config_lib.validate(c)
  assert config_lib.base_config().keys() == c.keys()
  assert c.algorithm == "mamlpp" and c.outer.schedule == "cosine"


def test_train_resume_evaluate_beyond_k_and_count_flops(tmp_path):
  workdir = str(tmp_path / "run")
  loop.train(_run_config(num_steps=3), workdir)
  state = loop.train(_run_config(num_steps=6), workdir)  # Resumes at 3; past msl_steps.
  restored, step = scoring.restore_state(_run_config(), workdir)
  assert step == 6 and sorted(restored.theta) == ["lrs", "params"]
  assert restored.theta["lrs"]["Dense_0"]["kernel"].shape == (2,)
  for a, b in zip(jax.tree.leaves(state.theta), jax.tree.leaves(restored.theta)):
    np.testing.assert_array_equal(a, b)
  rows = scoring.evaluate(_run_config(), workdir)  # Test steps 4 > the trained K = 2.
  loss = {r["k"]: r for r in rows if r["metric"] == "loss"}
  assert sorted(loss) == [0, 2, 4] and all(np.isfinite(r["mean"]) for r in loss.values())
  assert loss[0]["adaptation_flops"] == 0
  assert loss[4]["adaptation_flops"] == pytest.approx(2 * loss[2]["adaptation_flops"])
  assert loss[2]["adaptation_flops"] > 0
  setup = build_lib.build(_run_config())
  meta = flops_lib.meta_step_flops(setup.learner, setup.algorithm, setup.inner,
                                   setup.abstract_episodes(2))
  assert np.isfinite(meta) and meta > loss[2]["adaptation_flops"]
