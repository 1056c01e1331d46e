r"""ANIL on Omniglot (Raghu, Raghu, Bengio & Vinyals 2020), MAML split.

ANIL is MAML whose inner loop adapts only the head (the conv net's final linear
layer); the body is meta-learned by the outer loop, second order through the head's
adaptation (``metalearn/algorithms/anil.py``). The paper evaluates it "using the same
model architectures as the original MAML authors"; we take MAML's Omniglot settings
too (``experiments/omniglot.py``: the same conv net, inner SGD, meta-batch, Adam 1e-3,
60,000 meta-iterations, 600 test episodes with 15 queries per class). The paper's
Appendix C.4 (its implementation details) was not checked against these.

Published (Raghu et al. 2020, Table 2; mean ± standard deviation over three random
initialisations, not a 95% interval over episodes):
  20way1shot  train K=5, α=0.1, meta-batch 16, test K=5   96.2 ± 0.5  (MAML there: 93.7 ± 0.7)
  20-way 5-shot (not a variant here)                       98.0 ± 0.3  (MAML there: 96.4 ± 0.1)
  5way1shot   train K=1, α=0.4, meta-batch 32, test K=3   no Omniglot 5-way number
                                                           in the paper
Variants (comma-separated): ``5way1shot`` (default), ``20way1shot``, ``first_order``
(``config.anil.first_order``: no gradient through the head's inner gradients),
``smoke`` (seconds-long run of any of them).

Compute: the body's features are computed once per task and the inner steps run on
the head alone, so a test-time inner step costs the head's FLOPs: 2.8·10^4 at 5-way
1-shot and 4.2·10^5 at 20-way 1-shot, against 6.9·10^7 and 2.8·10^8 for MAML's
whole-network step (``flops.inner_step_flops``; ``tests/anil_test.py``). The body's
passes (support and query) are paid once per episode, in ``query_flops``.

  python -m launch.main --config=experiments/omniglot_anil.py:20way1shot \
      --workdir=/tmp/omniglot_anil_20w1s
  python -m launch.main --config=experiments/omniglot_anil.py:20way1shot,smoke \
      --workdir=/tmp/anil_smoke
"""

from experiments import omniglot
from metalearn import config as config_lib


def get_config(arg: str = ""):
  args = config_lib.parse_args(arg)
  shape = "20way1shot" if "20way1shot" in args else "5way1shot"
  c = omniglot.get_config(shape)  # MAML's settings for this shape.
  c.algorithm = "anil"
  c.anil.first_order = "first_order" in args
  if "smoke" in args:
    config_lib.shrink_for_smoke(c)
  return c
