r"""Reptile on Omniglot (Nichol, Achiam & Schulman 2018, Table 1 and Appendix A).

5-way 1-shot, transductive: published 97.68 ± 0.04%. Paper hyperparameters: inner Adam
(β1 = 0) with learning rate 0.001, 5 inner iterations in training and 50 at test,
10 training shots per class, outer step size 1.0 linearly annealed to 0, meta-batch 5,
100,000 meta-iterations.

Each training inner step sees a minibatch of 10 of the 50 support examples, drawn as
the paper's code draws them (``algorithms.reptile.minibatch_indices``); evaluation
adapts on the whole 5-example support set (the paper's eval batch of 5). Variants:
``smoke``.

  python -m launch.main --config=experiments/omniglot_reptile.py \
      --config.data.path=../shared/data/omniglot --workdir=/tmp/omniglot_reptile
"""

from experiments import common


def get_config(arg: str = ""):
  args = common.parse_args(arg)
  c = common.omniglot_base()
  c.bn_mode = "transductive"
  c.algorithm = "reptile"
  c.ways, c.shots, c.queries = 5, 10, 1
  c.inner.steps = 5
  c.inner.optimizer = "adam"
  c.inner.lr = 1e-3
  c.inner.adam_b1 = 0.0
  c.inner.batch_size = 10
  c.outer.optimizer = "sgd"
  c.outer.lr = 1.0
  c.outer.schedule = "linear"
  c.meta_batch = 5
  c.num_steps = 100000
  c.log_every = 200
  c.checkpoint_every = 2000
  c.val.every = 10000
  c.val.episodes = 200
  c.eval.shots = 1
  c.eval.queries = 15
  c.eval.steps = 50
  c.eval.eval_steps = (0, 1, 2, 5, 10, 20, 50)
  c.eval.episodes = 600
  c.eval.batch = 50
  if "smoke" in args:
    common.shrink_for_smoke(c)
  return c
