"""Helpers shared by experiment configs: argument parsing and the smoke shrink."""

import ml_collections

from metalearn import builders

OMNIGLOT_PATH = "../shared/data/omniglot"  # Relative to the repository root.


def omniglot_base() -> ml_collections.ConfigDict:
  """Omniglot on the MAML split (rotations for meta-training) with MAML's conv net."""
  c = builders.base_config()
  c.task = "images"
  c.data.name = "omniglot"
  c.data.path = OMNIGLOT_PATH
  c.data.protocol = "maml"
  c.data.rotations = True
  c.model.name = "conv4_omniglot"
  return c


def parse_args(arg: str) -> dict[str, str]:
  """``'5way1shot,smoke,steps=10'`` -> ``{'5way1shot': '', 'smoke': '', 'steps': '10'}``."""
  out = {}
  for part in filter(None, (arg or "").split(",")):
    key, _, value = part.partition("=")
    out[key.strip()] = value.strip()
  return out


def shrink_for_smoke(c: ml_collections.ConfigDict) -> None:
  """Makes any config run in seconds: few steps, small meta-batch, few episodes, and
  compiled for compile time over step time (``metalearn.compiler``)."""
  c.num_steps = 20
  c.fast_compile = True
  c.meta_batch = min(c.meta_batch, 4)
  c.log_every = 5
  c.checkpoint_every = 10
  c.val.every = 10
  c.val.episodes = 8
  c.eval.episodes = 20
  c.eval.batch = 10
  c.eval.steps = min(c.eval.steps, 3)
  c.eval.eval_steps = tuple(k for k in c.eval.eval_steps if k <= c.eval.steps)
