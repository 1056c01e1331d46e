"""Every experiment config and variant passes the schema's validation (no data needed)."""

import importlib

import pytest

from metalearn import builders

VARIANTS = {
    "sinusoid": ["", "smoke", "fomaml", "reptile"],
    "omniglot": ["5way1shot", "5way5shot", "20way1shot", "20way5shot", "fomaml",
                 "5way1shot,smoke"],
    "omniglot_reptile": ["", "smoke"],
    "miniimagenet": ["5way1shot", "5way5shot", "fomaml", "smoke"],
}


@pytest.mark.parametrize("name,arg", [(n, a) for n, args in VARIANTS.items()
                                      for a in args])
def test_config_validates(name, arg):
  c = importlib.import_module(f"experiments.{name}").get_config(arg)
  builders.validate(c)
  assert builders.base_config().keys() == c.keys()  # No key outside the schema.
