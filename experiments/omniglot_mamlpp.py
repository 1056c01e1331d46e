r"""MAML++ on Omniglot (Antoniou, Edwards & Storkey 2019, "How to train your MAML").

Settings (comma-separated variants), with the published accuracy:
  20way1shot (default) 5 inner steps, meta-batch 16     97.65 ± 0.05
  maxpool              with the above: the authors' network (below)
  smoke                seconds-long run (the multi-step loss annealed over 10 steps)

Hyperparameters of the authors' released config for this row
(github.com/AntreasAntoniou/HowToTrainYourMAMLPytorch,
``experiment_config/omniglot_maml++_20_way_1_shot_5_batch_norm_log_64_seed_0.json``,
the version with ``init_inner_loop_learning_rate`` 0.1 and 20 multi-step-loss epochs;
other versions of that file start the rates at 0.4 and leave the epochs to a default):
20-way 1-shot with 1 query per class in meta-training, 5 inner steps at meta-training and
test, meta-batch 16, all of MAML++'s changes on (``config.mamlpp``): the multi-step loss
annealed over 20 epochs of 500 meta-steps (``msl_steps=10000``), per-layer per-step
rates learned from 0.1 (``lslr``), per-step batch-norm scale and offset, kept out of the
inner loop (``per_step_bn``), second order from the start (their
``first_order_to_second_order_epoch`` is -1: ``first_order_steps=0``); Adam 1e-3 with
cosine annealing over 250 epochs of 500 steps (125,000 meta-steps).

Differences: the cosine goes to 0 (theirs to 1e-5, 1% of the start) and is stepped
every meta-step (theirs every epoch); the default network is MAML's Omniglot conv net
(stride-2 convolutions), as in our other Omniglot configs, while the authors' uses
stride-1 convolutions and 2×2 max-pooling (``maxpool``: ``conv4_miniimagenet`` with 64
filters, 28 → 14 → 7 → 3 → 1); the MAML split of ``experiments/omniglot.py`` (1100
meta-train characters ×4 rotations as classes, 100 meta-val, 423 meta-test) and its
evaluation, 600 test episodes with 15 queries per class.

Test-time steps beyond the trained 5 reuse the last step's learned rates and batch-norm
parameters (``metalearn/algorithms/mamlpp.py``): ``--config.eval.steps=10``. The cosine
schedule ends at ``num_steps``, so a run resumes with its own ``num_steps`` only
(``--config.outer.schedule=constant`` lifts that).

  python -m launch.main --config=experiments/omniglot_mamlpp.py:20way1shot \
      --workdir=/tmp/omniglot_mamlpp_20w1s
"""

from experiments import omniglot
from metalearn import config as config_lib


def get_config(arg: str = ""):
  args = config_lib.parse_args(arg)
  c = omniglot.omniglot_base()
  c.algorithm = "mamlpp"
  c.ways, c.shots, c.queries = 20, 1, 1
  c.inner.steps = 5
  c.inner.lr = 0.1
  c.mamlpp.msl = True
  c.mamlpp.msl_steps = 20 * 500
  c.mamlpp.lslr = True
  c.mamlpp.per_step_bn = True
  c.mamlpp.first_order_steps = 0
  c.meta_batch = 16
  omniglot.maml_protocol(c, num_steps=250 * 500)
  c.outer.schedule = "cosine"
  c.eval.steps = 5
  if "maxpool" in args:
    c.model.name = "conv4_miniimagenet"
    c.model.filters = 64
  if "smoke" in args:
    config_lib.shrink_for_smoke(c)
    c.mamlpp.msl_steps = 10  # Both phases of the multi-step loss within the 20 steps.
  return c
