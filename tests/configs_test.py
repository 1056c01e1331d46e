"""Every experiment config and variant passes the schema's validation (no data needed)."""

import importlib

import pytest

from metalearn import builders

VARIANTS = {
    "sinusoid": ["", "smoke", "fomaml", "reptile"],
    "omniglot": ["5way1shot", "5way5shot", "20way1shot", "20way5shot", "fomaml",
                 "5way1shot,smoke", "20way1shot,reference", "fomaml,reference"],
    "omniglot_reptile": ["", "smoke"],
    "miniimagenet": ["5way1shot", "5way5shot", "fomaml", "smoke"],
}


@pytest.mark.parametrize("name,arg", [(n, a) for n, args in VARIANTS.items()
                                      for a in args])
def test_config_validates(name, arg):
  c = importlib.import_module(f"experiments.{name}").get_config(arg)
  builders.validate(c)
  assert builders.base_config().keys() == c.keys()  # No key outside the schema.


def test_inner_frozen_must_name_a_module_of_the_model():
  from experiments import omniglot  # pylint: disable=g-import-not-at-top
  c = omniglot.get_config("5way1shot")
  c.inner.frozen = "BatchNorm"
  with pytest.raises(builders.ConfigError,
                     match=r"config.inner.frozen: 'BatchNorm': conv4_omniglot has modules"):
    builders.validate(c)
  c.inner.frozen = "BatchStatNorm, Dense"
  builders.validate(c)
  assert builders.build_inner(c).frozen == ("BatchStatNorm", "Dense")
  c.model.head = "pool"
  with pytest.raises(builders.ConfigError, match="config.model.head: 'pool' not in"):
    builders.validate(c)


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
  learner, cfg = builders.build_learner(c), builders.build_inner(c, steps=1)
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
