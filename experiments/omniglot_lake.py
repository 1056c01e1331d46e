r"""Omniglot's original one-shot benchmark (Lake, Salakhutdinov & Tenenbaum 2015).

Meta-train on the 30 background alphabets only (``data.protocol='lake'``: 25 of them,
×4 rotations as extra classes; 5 whole background alphabets held out for validation);
test 20-way 1-shot classification *within one alphabet* on the 20 evaluation alphabets
(``eval.within_alphabet``: every episode's 20 characters from one alphabet, harder than
random classes), unrotated characters, one query per class as in Lake's runs (20
training and 20 test images each).

Published error rates on this task (Lake et al. 2015, Fig. 2; Koch et al. 2015):
  people                            4.5%
  Bayesian Program Learning         3.3%
  Siamese convnet (Koch et al.)     8.0%
No published MAML or ProtoNets number on this protocol that we know of.

Variants (comma-separated):
  maml_20way1shot (default)  second-order MAML with the 20-way settings of
                             ``experiments/omniglot.py``: inner K=5, α=0.1,
                             meta-batch 16, test K=5, 60,000 meta-steps.
  protonet_20way1shot        Prototypical Networks (Snell et al. 2017): 60-way 1-shot
                             training episodes with 5 queries per class, tested 20-way
                             (no inner loop, so ``config.eval.ways`` may differ).
  within_train               draw the meta-training episodes within one alphabet too
                             (default: classes from the whole split, as MAML and
                             ProtoNets train).
  smoke                      seconds-long run of any of the above.

Within-alphabet sampling (``metalearn/tasks/sampling.py``): the alphabet of an episode
is uniform among the split's alphabets with at least ``ways`` classes, then ``ways``
distinct classes of it. Test: all 20 evaluation alphabets have >= 20 characters
(Angelic has exactly 20), so each is drawn with probability 1/20. Validation (split
seed 1: Japanese (katakana), Cyrillic, Latin, Greek, Inuktitut) has 16 to 47
characters per alphabet, so 20-way validation draws from 4 alphabets. Meta-training
classes count rotations (a character's four turns are four classes of its alphabet),
so with ``within_train`` every background alphabet has at least 56 classes; the 60-way
ProtoNets episodes skip the two 14-character ones.

Differences from Lake's runs: characters and drawings are drawn independently per
class, so the 20 support images of an episode are by up to 20 drawers (Lake's runs
chose which drawers made the training and the test images); images are 28×28 (Lake's
105×105); 600 random episodes (95% CI over episodes) rather than Lake's 20 fixed runs.

  python -m launch.main --config=experiments/omniglot_lake.py:maml_20way1shot \
      --workdir=/tmp/omniglot_lake_maml
  python -m launch.main --config=experiments/omniglot_lake.py:maml_20way1shot,smoke \
      --workdir=/tmp/lake_smoke
"""

from experiments import omniglot
from metalearn import config as config_lib
from metalearn.errors import ConfigError

VARIANTS = ("maml_20way1shot", "protonet_20way1shot", "within_train", "smoke")


def get_config(arg: str = ""):
  args = config_lib.parse_args(arg)
  unknown = sorted(set(args) - set(VARIANTS))
  if unknown:
    raise ConfigError(f"experiments/omniglot_lake.py: unknown variant(s) "
                      f"{', '.join(unknown)}; known: {', '.join(VARIANTS)}")
  c = omniglot.omniglot_base()
  c.data.protocol = "lake"
  c.data.rotations = True
  c.data.eval_rotations = False  # Lake tested unrotated characters.
  c.within_alphabet = "within_train" in args
  omniglot.maml_protocol(c)
  c.eval.within_alphabet = True
  c.eval.ways, c.eval.shots, c.eval.queries = 20, 1, 1
  if "protonet_20way1shot" in args:
    if "maml_20way1shot" in args:
      raise ConfigError("experiments/omniglot_lake.py: maml_20way1shot and "
                        "protonet_20way1shot are two experiments; name one")
    c.algorithm = "protonet"
    c.ways, c.shots, c.queries = 60, 1, 5  # Snell et al.'s Omniglot training episodes.
    c.inner.steps = 0
    c.meta_batch = 1  # One episode per update, as in the paper.
    c.num_steps = 20000
    c.eval.steps = 0  # Nothing adapts: one test-time "step".
  else:
    c.algorithm = "maml"
    c.ways, c.shots, c.queries = 20, 1, 1
    c.inner.steps = 5
    c.inner.lr = 0.1
    c.meta_batch = 16
    c.num_steps = 60000
    c.eval.steps = 5
  if "smoke" in args:
    config_lib.shrink_for_smoke(c)
  return c
