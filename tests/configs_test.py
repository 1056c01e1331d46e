"""Every experiment config and variant passes the schema's validation (no data needed)."""

import importlib

import pytest

from metalearn import builder as build_lib
from metalearn import config as config_lib
from metalearn.errors import ConfigError

VARIANTS = {
    "sinusoid": ["", "smoke", "fomaml", "reptile"],
    "omniglot": ["5way1shot", "5way5shot", "20way1shot", "20way5shot", "fomaml",
                 "5way1shot,smoke", "20way1shot,reference", "fomaml,reference"],
    "omniglot_reptile": ["", "smoke"],
    "miniimagenet": ["5way1shot", "5way5shot", "fomaml", "smoke"],
    "omniglot_anil": ["5way1shot", "20way1shot", "first_order", "smoke"],
    "omniglot_protonet": ["5way1shot", "20way1shot", "smoke"],
    "omniglot_metasgd": ["5way1shot", "5way5shot", "20way1shot", "20way5shot", "smoke"],
    "omniglot_mamlpp": ["20way1shot", "maxpool", "smoke"],
    "omniglot_imaml": ["5way1shot", "20way1shot", "smoke"],
    "omniglot_lake": ["maml_20way1shot", "protonet_20way1shot", "within_train", "smoke"],
}


@pytest.mark.parametrize("name,arg", [(n, a) for n, args in VARIANTS.items()
                                      for a in args])
def test_config_validates(name, arg):
  c = importlib.import_module(f"experiments.{name}").get_config(arg)
  config_lib.validate(c)
  assert config_lib.base_config().keys() == c.keys()  # No key outside the schema.


def test_inner_frozen_must_name_a_module_of_the_model():
  from experiments import omniglot  # pylint: disable=g-import-not-at-top
  c = omniglot.get_config("5way1shot")
  c.inner.frozen = "BatchNorm"
  with pytest.raises(ConfigError,
                     match=r"config.inner.frozen: 'BatchNorm': conv4_omniglot has modules"):
    config_lib.validate(c)
  c.inner.frozen = "BatchStatNorm, Dense"
  assert build_lib.build(c).inner.frozen == ("BatchStatNorm", "Dense")
  c.model.head = "pool"
  with pytest.raises(ConfigError, match="config.model.head: 'pool' not in"):
    config_lib.validate(c)


@pytest.mark.parametrize("arg,alpha,shots", [("5way5shot", 0.4, 5), ("20way1shot", 0.1, 1)])
def test_reference_inner_step_is_the_reference_codes_step(arg, alpha, shots):
  # cbfinn/maml: theta - alpha * grad(sum_i xent_i / K), offsets of batch norm left
  # alone; written here with the paper's alpha, summed loss and no optax.
  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  import optax  # pylint: disable=g-import-not-at-top
  from experiments import omniglot  # pylint: disable=g-import-not-at-top
  from metalearn import inner as inner_lib  # pylint: disable=g-import-not-at-top
  c = omniglot.get_config(f"{arg},reference")
  c.inner.steps = 1
  setup = build_lib.build(c)
  learner, cfg = setup.learner, setup.inner
  x = jax.random.uniform(jax.random.key(0), (c.ways * shots, 28, 28, 1))
  y = np.repeat(np.arange(c.ways), shots)
  theta = learner.init(jax.random.key(1), x)
  adapted, _ = inner_lib.adapt(theta, lambda p: learner.score(learner.apply(p, x), y),
                               cfg=cfg)
  summed = lambda p: optax.softmax_cross_entropy_with_integer_labels(
      learner.apply(p, x), y).sum() / shots
  grads = jax.grad(summed)(theta)
  expected = jax.tree_util.tree_map_with_path(
      lambda path, t, g: t if "BatchStatNorm" in jax.tree_util.keystr(path)
      else t - alpha * g, theta, grads)
  # atol: the conv biases before batch norm have a zero gradient, computed as noise.
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=2e-4, atol=5e-5),
               adapted, expected)
  moved = max(float(np.abs(a - t).max()) for a, t in zip(jax.tree.leaves(adapted),
                                                          jax.tree.leaves(theta)))
  assert moved > 1e-2  # The step is large enough for the tolerance to tell N·α from α.


def test_an_algorithm_registered_from_outside_is_validated_by_name():
  from metalearn import algorithms  # pylint: disable=g-import-not-at-top
  from experiments import sinusoid  # pylint: disable=g-import-not-at-top
  c = sinusoid.get_config("smoke")
  c.algorithm = "outside_test_algorithm"
  with pytest.raises(ConfigError, match="config.algorithm: 'outside_test_algorithm' not"):
    config_lib.validate(c)
  record = algorithms.Algorithm(name="outside_test_algorithm",
                                meta_grad=algorithms.get("fomaml").meta_grad,
                                first_order=True, min_inner_steps=2)
  algorithms.register(record)
  with pytest.raises(ValueError, match="already registered"):
    algorithms.register(record)
  with pytest.raises(ConfigError, match="config.inner.steps: 1: outside_test_algorithm "
                     "needs at least 2"):
    config_lib.validate(c)
  c.inner.steps = 2
  assert build_lib.build(c).algorithm is record


def test_second_order_maml_through_inner_adam_is_differentiable_by_config():
  # optax's Adam has an infinite derivative of sqrt(v) at v = 0 (inner_test.py); the
  # builder adds eps_root exactly where the inner loop is differentiated through Adam.
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from experiments import sinusoid  # pylint: disable=g-import-not-at-top
  roots = {}
  for algorithm in ("maml", "fomaml", "reptile"):
    c = sinusoid.get_config("smoke")
    c.algorithm, c.inner.optimizer, c.inner.steps = algorithm, "adam", 2
    roots[algorithm] = build_lib.build(c).inner.adam_eps_root
  assert roots == {"maml": build_lib.DIFFERENTIABLE_ADAM_EPS_ROOT, "fomaml": 0.0,
                   "reptile": 0.0}
  c = sinusoid.get_config("smoke")
  c.inner.optimizer, c.inner.steps, c.meta_batch = "adam", 2, 4
  setup = build_lib.build(c)
  state, metrics = setup.meta_step()(setup.init_state(), None, jax.random.key(0),
                                     jnp.bool_(True))
  assert all(bool(jnp.isfinite(x).all()) for x in jax.tree.leaves(state.theta))
  assert float(metrics["grad_norm"]) > 0
