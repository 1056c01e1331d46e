"""Meta-SGD against independent computations: central finite differences of a plain
Python loop (the rates' gradient included), MAML's gradient at constant rates, the
test-time rates, config checks, and one run end to end (train, resume, evaluate)."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments import omniglot_metasgd
from experiments import sinusoid
from metalearn import algorithms
from metalearn import builder as build_lib
from metalearn import config as config_lib
from metalearn import flops as flops_lib
from metalearn import learner as learner_lib
from metalearn.algorithms import metasgd
from metalearn.errors import ConfigError
from metalearn.inner import InnerConfig
from metalearn.models import mlp
from metalearn.run import loop
from metalearn.run import scoring
from metalearn.tasks.sinusoid import SinusoidTasks


def _problem(dtype=jnp.float32, shots=5):
  key = jax.random.key(0)
  learner = learner_lib.Learner(mlp.MLP((8, 8), param_dtype=dtype), "mse")
  episode = jax.tree.map(lambda x: x[0].astype(dtype),
                         SinusoidTasks(shots=shots, queries=5).sample(key, None, 1))
  return learner, episode, learner.init(key, episode.support_x)


def _query_loss_after(learner, episode, params, lrs, steps):
  """Meta-SGD's objective as a Python loop: p ← p − α ⊙ ∇L_support(p), then L_query."""
  p = params
  for _ in range(steps):
    g = jax.grad(lambda q: learner.support_loss(q, episode)[0])(p)
    p = jax.tree.map(lambda a, b, c: a - b * c, p, lrs, g)
  return learner.query_loss(p, episode)[0]


def test_meta_gradient_matches_central_finite_differences_rates_included():
  with jax.enable_x64(True):
    learner, episode, params = _problem(jnp.float64)
    inner = InnerConfig(steps=2, lr=0.05)
    theta = metasgd.init_theta(params, inner, low=0.01, high=0.1, seed=3)
    grads, _ = jax.jit(lambda t: metasgd.metasgd_meta_grad(
        t, episode, jax.random.key(0), learner=learner, inner=inner))(theta)
    objective = jax.jit(lambda t: _query_loss_after(learner, episode, t["params"],
                                                    t["lrs"], inner.steps))
    rng = np.random.default_rng(0)
    eps = 1e-6
    for part in ("params", "lrs", "both"):  # The rates' gradient alone, too.
      v = jax.tree.map(lambda l: rng.standard_normal(l.shape), theta)
      if part != "both":
        other = "lrs" if part == "params" else "params"
        v[other] = jax.tree.map(np.zeros_like, v[other])
      plus = objective(jax.tree.map(lambda t, d: t + eps * d, theta, v))
      minus = objective(jax.tree.map(lambda t, d: t - eps * d, theta, v))
      fd = (plus - minus) / (2 * eps)
      analytic = sum(jnp.vdot(g, d) for g, d in zip(jax.tree.leaves(grads),
                                                     jax.tree.leaves(v)))
      assert abs(float(fd)) > 1e-4  # A direction the loss moves along.
      np.testing.assert_allclose(analytic, fd, rtol=1e-6, atol=1e-9)


def test_constant_rates_give_mamls_parameter_gradient():
  learner, episode, params = _problem()
  inner = InnerConfig(steps=3, lr=0.05)
  theta = metasgd.init_theta(params, inner)  # α = inner.lr everywhere.
  assert all(np.all(np.asarray(a) == np.float32(0.05)) for a in jax.tree.leaves(theta["lrs"]))
  grads, _ = jax.jit(lambda t: metasgd.metasgd_meta_grad(
      t, episode, jax.random.key(0), learner=learner, inner=inner))(theta)
  maml, _ = jax.jit(lambda p: algorithms.maml.maml_meta_grad(
      p, episode, jax.random.key(0), learner=learner, inner=inner))(params)
  # Equal up to float32 rounding (XLA fuses a scalar rate and an array of rates apart).
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7),
               grads["params"], maml)
  assert max(float(jnp.abs(g).max()) for g in jax.tree.leaves(grads["lrs"])) > 1e-3


def test_initial_rates_constant_or_uniform_from_the_seed():
  _, _, params = _problem()
  inner = InnerConfig(steps=1, lr=0.4)
  draw = lambda seed: jax.tree.leaves(
      metasgd.init_theta(params, inner, low=0.005, high=0.1, seed=seed)["lrs"])
  a, b, c = draw(0), draw(0), draw(1)
  flat = np.concatenate([np.ravel(x) for x in a])
  assert flat.min() >= 0.005 and flat.max() < 0.1 and flat.std() > 0.02
  assert all(np.array_equal(x, y) for x, y in zip(a, b))
  assert not all(np.array_equal(x, y) for x, y in zip(a, c))


def test_test_time_rates_are_the_learned_ones_scaled_by_eval_inner_lr():
  learner, episode, params = _problem()
  theta = metasgd.init_theta(params, InnerConfig(lr=0.05), low=0.01, high=0.1, seed=1)
  record = metasgd.METASGD.configure(_config(inner_lr=0.05))

  def curve(eval_lr):
    return jax.jit(lambda t: record.adapt_curve(
        t, episode, learner=learner, inner=InnerConfig(lr=eval_lr),
        eval_steps=(0, 1, 3)))(theta)

  reference = jax.jit(lambda lrs: jnp.stack([
      _query_loss_after(learner, episode, params, lrs, k) for k in (0, 1, 3)]))
  for eval_lr, factor in ((0.05, 1.0), (0.15, 3.0)):
    want = reference(jax.tree.map(lambda a, f=factor: a * f, theta["lrs"]))
    np.testing.assert_allclose(curve(eval_lr)["loss"], want, rtol=2e-5)
  query = record.adapted_query_loss(theta, episode, learner=learner,
                                    inner=InnerConfig(steps=3, lr=0.15))
  np.testing.assert_allclose(query, curve(0.15)["loss"][-1], rtol=1e-6)


def _config(inner_lr=0.01, num_steps=6):
  c = sinusoid.get_config("smoke")
  c.algorithm = "metasgd"
  c.inner.lr = inner_lr
  c.model.hidden = (8, 8)
  c.num_steps = num_steps
  c.meta_batch = 2
  c.log_every = 3
  c.checkpoint_every = 3
  c.val.every = 0
  c.eval.episodes = 8
  c.eval.batch = 8
  c.eval.eval_steps = (0, 1, 3)
  c.fast_compile = True
  return c


def test_bad_config_is_one_error_naming_the_key():
  for key, value, match in (("inner.optimizer", "adam", "config.inner.optimizer"),
                            ("inner.frozen", "Dense", "config.inner.frozen"),
                            ("metasgd.init_lr_high", 0.001, "config.metasgd.init_lr_high"),
                            ("inner.steps", 0, "config.inner.steps")):
    c = _config()
    if key == "metasgd.init_lr_high":
      c.metasgd.init_lr_low = 0.005  # Above the high end.
    section, name = key.split(".")
    c[section][name] = value
    with pytest.raises(ConfigError, match=match):
      config_lib.validate(c)


@pytest.mark.parametrize("arg", ["", "5way1shot", "20way1shot", "5way1shot,smoke",
                                 "20way1shot,smoke"])
def test_experiment_config_validates(arg):
  c = omniglot_metasgd.get_config(arg)
  config_lib.validate(c)
  assert config_lib.base_config().keys() == c.keys()
  assert c.algorithm == "metasgd" and c.metasgd.init_lr_high == 0.1


def test_train_resume_evaluate_and_count_flops(tmp_path):
  workdir = str(tmp_path / "run")
  state = loop.train(_config(num_steps=3), workdir)
  init = build_lib.build(_config()).init_state().theta
  moved = [float(np.abs(a - b).max()) for a, b in zip(jax.tree.leaves(state.theta["lrs"]),
                                                      jax.tree.leaves(init["lrs"]))]
  assert min(moved) > 0  # The rates are meta-learned and checkpointed with θ.
  state = loop.train(_config(num_steps=6), workdir)  # Resumes at 3.
  assert int(state.step) == 6
  restored, step = scoring.restore_state(_config(), workdir)
  assert step == 6
  for a, b in zip(jax.tree.leaves(state.theta), jax.tree.leaves(restored.theta)):
    np.testing.assert_array_equal(a, b)
  rows = scoring.evaluate(_config(), workdir)  # Test steps 3 > the trained K = 1.
  loss = {r["k"]: r for r in rows if r["metric"] == "loss"}
  assert sorted(loss) == [0, 1, 3] and all(np.isfinite(r["mean"]) for r in loss.values())
  assert loss[0]["adaptation_flops"] == 0 and loss[1]["adaptation_flops"] > 0
  assert loss[3]["adaptation_flops"] == pytest.approx(3 * loss[1]["adaptation_flops"])
  assert json.load(open(tmp_path / "run" / "config.json"))["algorithm"] == "metasgd"
  setup = build_lib.build(_config())
  meta = flops_lib.meta_step_flops(setup.learner, setup.algorithm, setup.inner,
                                   setup.abstract_episodes(2))
  assert np.isfinite(meta) and meta > 2 * loss[1]["adaptation_flops"]
