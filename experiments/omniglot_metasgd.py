r"""Meta-SGD on Omniglot (Li, Zhou, Chen & Li 2017), MAML split.

Settings (comma-separated variants):
  5way1shot  (default) meta-batch 32, one inner step; published 99.53 ± 0.26 (95% CI)
  5way5shot            meta-batch 32, one inner step
  20way1shot           meta-batch 16, one inner step
  20way5shot           meta-batch 16, one inner step
  smoke                seconds-long run of any of the above
The other three settings' published accuracies are in the paper's Table 1; they are not
quoted here because they could not be checked against the paper in this project.

From the paper: MAML's four-block conv net, one inner step at meta-training and at test
(Meta-SGD adapts in one step), every per-parameter rate drawn at the start from
U[0.005, 0.1] (``metasgd.init_lr_low/high``; the range as recalled from the paper, not
checked against it here), meta-learned with the initialisation,
second order. From MAML's Omniglot protocol (``experiments/omniglot.py``), which the
paper compares against: Adam 1e-3, 60,000 meta-steps, meta-batch 32 (5-way) or 16
(20-way), training queries per class = shots, evaluation on meta-test characters with 15
queries per class over 600 episodes. Characters: 1100 meta-train (×4 rotations as new
classes), 100 meta-val, 423 meta-test.

``inner.lr`` (MAML's α, 0.4 or 0.1) is not used in meta-training, the learned rates
are; it is what ``eval.inner_lr`` is relative to: evaluation adapts with the learned
rates times ``eval.inner_lr / inner.lr`` (unset: the learned rates as they are; see
``metalearn/algorithms/metasgd.py``, also for ``--mode=tune_inner_lr``, which then
chooses that scale per k). Test-time steps beyond the one trained step reuse the same
learned rates: ``--config.eval.steps=5``.

  python -m launch.main --config=experiments/omniglot_metasgd.py:5way1shot \
      --workdir=/tmp/omniglot_metasgd_5w1s
"""

from experiments import omniglot
from metalearn import config as config_lib


def get_config(arg: str = ""):
  args = config_lib.parse_args(arg)
  c = omniglot.omniglot_base()
  c.algorithm = "metasgd"
  twenty = any(a.startswith("20way") for a in args)
  c.ways = 20 if twenty else 5
  c.shots = 5 if any(a.endswith("5shot") for a in args) else 1
  c.queries = c.shots
  c.inner.steps = 1
  c.inner.lr = 0.1 if twenty else 0.4
  c.metasgd.init_lr_low = 0.005
  c.metasgd.init_lr_high = 0.1
  c.meta_batch = 16 if twenty else 32
  omniglot.maml_protocol(c)
  c.eval.steps = 1
  if "smoke" in args:
    config_lib.shrink_for_smoke(c)
  return c
