r"""MAML on Gaussian-mixture classification, a family with a known Bayes floor.

5-way K-shot tasks in d = 16: class means ``mu ~ N(0, I)``, examples ``x ~ N(mu, I)``
(``metalearn/tasks/mixture.py``). An MLP classifier (16-64-64-5) is meta-trained with
five inner SGD steps of α = 0.1; evaluated on 2,000 fresh episodes with 15 queries per
class over 0..10 test-time steps.

  python -m launch.main --config=experiments/mixture.py --workdir=/tmp/mixture

No published number: the reference is the Bayes-optimal classifier given the support
set (``mixture.bayes_accuracy``; Monte Carlo over 100,000 episodes of 15 queries per
class, ± one standard error):

  5-way 1-shot  accuracy 0.8244 ± 0.0003, cross-entropy 0.4666 ± 0.0007 nats
  5-way 5-shot  accuracy 0.9498 ± 0.0001, cross-entropy 0.1368 ± 0.0003 nats

No learner beats these in expectation; the gap to them is what meta-learning leaves.
Variants (comma-separated): ``smoke`` (seconds), ``shots=5``, ``fomaml``.
"""

from metalearn import config as config_lib


def get_config(arg: str = ""):
  args = config_lib.parse_args(arg)
  c = config_lib.base_config()
  c.task = "mixture"
  c.mixture.dim, c.mixture.mean_std, c.mixture.noise = 16, 1.0, 1.0
  c.model.name = "mlp_classifier"
  c.model.hidden = (64, 64)
  c.ways = 5
  c.shots = int(args.get("shots", 1))
  c.queries = 15
  c.algorithm = "fomaml" if "fomaml" in args else "maml"
  c.inner.steps = 5
  c.inner.lr = 0.1
  c.outer.lr = 1e-3
  c.meta_batch = 16
  c.num_steps = 20000
  c.log_every = 500
  c.checkpoint_every = 5000
  c.val.every = 5000
  c.val.episodes = 200
  c.eval.episodes = 2000
  c.eval.steps = 10
  c.eval.eval_steps = (0, 1, 2, 5, 10)
  c.eval.queries = 15
  c.eval.batch = 500
  if "smoke" in args:
    config_lib.shrink_for_smoke(c)
  return c
