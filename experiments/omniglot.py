r"""MAML on Omniglot (Finn et al. 2017, Section 5.2 and Appendix A.1), MAML split.

Settings (comma-separated variants), with the published accuracy (95% CI, 600 tasks):
  5way1shot  (default) train K=1, α=0.4, meta-batch 32, test K=3   98.7 ± 0.4
  5way5shot            train K=1, α=0.4, meta-batch 32, test K=3   99.9 ± 0.1
  20way1shot           train K=5, α=0.1, meta-batch 16, test K=5   95.8 ± 0.3
  20way5shot           train K=5, α=0.1, meta-batch 16, test K=5   98.9 ± 0.2
  fomaml               first-order MAML (5-way 1-shot: 98.3 ± 0.5)
  reference            with any of the above: MAML's reference code where it differs
                       from the defaults (below)
  smoke                seconds-long run of any of the above
Adam β=1e-3, 60,000 meta-iterations; training queries per class = shots (as in MAML's
code); evaluation on meta-test characters with 15 queries per class, 600 episodes.
MAML's reference code (cbfinn/maml) tests with as many queries per class as shots, 10
steps, and each test class turned by a random multiple of 90°; score a checkpoint that
way too with ``--mode=evaluate --config.eval.queries=1 --config.eval.steps=10
--config.eval.rotate=True`` (a file of its own in ``eval/``, listed beside the result).
Characters: 1100 meta-train (×4 rotations as new classes), 100 meta-val, 423 meta-test.

``reference`` follows cbfinn/maml (``maml.py``, ``utils.py``, ``data_generator.py``) in
the six places where it differs from the defaults. Its inner step is α times the
gradient of the *summed* support loss divided by K (``xent`` divides each example's
cross-entropy by ``update_batch_size`` and ``tf.gradients`` sums over the N·K
examples), which is N·α times the gradient of our mean loss: the inner step size
becomes N·α (2.0 for 5-way α = 0.4 and for 20-way α = 0.1), where the defaults take
the paper's α on the mean loss, an N times smaller step. The head reads the spatial mean of
the last block (64 features, not the flattened 256) with N(0, 1) initial weights; batch
norm has no scale (``tf.contrib.layers.batch_norm``'s default); the inner loop leaves
the batch-norm offsets alone (it adapts only the ``weights`` dict); and rotations are
drawn per episode, each class of a training or test episode turned by its own random
quarter turn, instead of being extra classes (an episode then never holds two turns of
one character).

  python -m launch.main --config=experiments/omniglot.py:5way1shot \
      --config.data.path=../shared/data/omniglot --workdir=/tmp/omniglot_5w1s
"""

from metalearn import config as config_lib

OMNIGLOT_PATH = "../shared/data/omniglot"  # Relative to the repository root.


def omniglot_base():
  """Omniglot on the MAML split (rotations for meta-training) with MAML's conv net."""
  c = config_lib.base_config()
  c.task = "images"
  c.data.name = "omniglot"
  c.data.path = OMNIGLOT_PATH
  c.data.protocol = "maml"
  c.data.rotations = True
  c.model.name = "conv4_omniglot"
  return c


def maml_protocol(c, *, num_steps: int = 60000, val_every: int = 5000) -> None:
  """MAML's Omniglot schedule and test protocol, which the other learners' Omniglot
  configs share: Adam at 1e-3, a log line every 100 meta-steps and a checkpoint every
  1000, validation on 200 episodes, the test on 600 episodes with 15 queries per class
  scored at ``eval.steps`` (set by each config)."""
  c.outer.lr = 1e-3
  c.num_steps = num_steps
  c.log_every = 100
  c.checkpoint_every = 1000
  c.val.every = val_every
  c.val.episodes = 200
  c.eval.split = "test"
  c.eval.episodes = 600
  c.eval.queries = 15
  c.eval.eval_steps = ()
  c.eval.batch = 50


def get_config(arg: str = ""):
  args = config_lib.parse_args(arg)
  c = omniglot_base()
  c.algorithm = "fomaml" if "fomaml" in args else "maml"
  twenty = any(a.startswith("20way") for a in args)
  c.ways = 20 if twenty else 5
  c.shots = 5 if any(a.endswith("5shot") for a in args) else 1
  c.queries = c.shots
  c.inner.steps = 5 if twenty else 1
  c.inner.lr = 0.1 if twenty else 0.4
  c.meta_batch = 16 if twenty else 32
  maml_protocol(c)
  c.eval.steps = 5 if twenty else 3
  if "reference" in args:
    c.inner.lr *= c.ways  # α on sum(loss) / K  ==  N·α on mean(loss).
    c.model.head = "mean"
    c.model.head_init = "normal"
    c.model.bn_scale = False
    c.inner.frozen = "BatchStatNorm"
    c.data.rotations = False
    c.rotate = True
    c.eval.rotate = True
  if "smoke" in args:
    config_lib.shrink_for_smoke(c)
  return c
