r"""Prototypical Networks on Omniglot (Snell, Swersky & Zemel 2017), MAML split.

No inner loop: the embedding (MAML's Omniglot conv net without its head,
``metalearn/algorithms/protonet.py``) maps each class's support examples to their mean,
the prototype, and a query is classified by softmax over minus its squared Euclidean
distances to the prototypes. Test-time adaptation costs 0 FLOPs; an episode's whole
cost is scoring its query (``flops.query_flops``).

Published (Snell et al. 2017, Table 1, Omniglot, 1000 test episodes):
  5way1shot   test 5-way 1-shot    98.8%
  20way1shot  test 20-way 1-shot   96.0%
Both variants train the same model, as the paper does for 1-shot: 60-way 1-shot
episodes with 5 queries per class ("more ways in training than in testing"); they
differ only in the evaluation's ways (``config.eval.ways``, free for an algorithm
without a head). Paper settings kept: Adam at 1e-3, one episode per update
(meta-batch 1), 28×28 images with rotations by multiples of 90° as new classes,
squared Euclidean distance, 1000 test episodes. Variants: ``5way1shot`` (default),
``20way1shot``, ``smoke`` (seconds-long run of either).

Differences from the paper: the embedding is MAML's conv net (4 × [3×3 conv, stride
2, batch norm, ReLU], flattened: 256 features) where the paper's blocks max-pool
(64 features); batch norm uses the episode's statistics (``bn_mode='transductive'``:
support and query each normalised with their own); the MAML split (1100 training
characters, 100 validation, 423 test) rather than Vinyals et al.'s 1200 / 423;
a constant Adam rate where the paper halves it every 2000 episodes; a fixed number
of meta-steps (our choice, 20,000) where the paper stops on validation loss; 15 test
queries per class (as this repository's MAML runs).

  python -m launch.main --config=experiments/omniglot_protonet.py:20way1shot \
      --workdir=/tmp/omniglot_protonet
  python -m launch.main --config=experiments/omniglot_protonet.py:20way1shot,smoke \
      --workdir=/tmp/pn_smoke
"""

from experiments import omniglot
from metalearn import config as config_lib


def get_config(arg: str = ""):
  args = config_lib.parse_args(arg)
  c = omniglot.omniglot_base()
  c.algorithm = "protonet"
  c.ways, c.shots, c.queries = 60, 1, 5
  c.inner.steps = 0  # No inner loop.
  c.meta_batch = 1
  omniglot.maml_protocol(c, num_steps=20000, val_every=2000)
  c.eval.ways = 20 if "20way1shot" in args else 5
  c.eval.shots = 1
  c.eval.steps = 0
  c.eval.episodes = 1000  # The paper's 1000 test episodes.
  if "smoke" in args:
    config_lib.shrink_for_smoke(c)
  return c
