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
