r"""MAML on Bayesian linear regression, a family with known Bayes and GD curves.

Tasks in d = 8: weights ``w ~ N(0, I)``, inputs ``x ~ N(0, I)``, targets
``y = w·x + ε`` with ``ε ~ N(0, 0.5²)`` (``metalearn/tasks/linreg.py``); K support and
16 query points. The model is linear (``mlp`` with ``hidden=()``: weights and a bias),
meta-trained with five inner SGD steps of α = 0.05 on the support MSE; evaluated on
2,000 fresh tasks with 100 query points over 0..100 test-time steps.

  python -m launch.main --config=experiments/linreg.py --workdir=/tmp/linreg

No published number: the references are exact given the support inputs and averaged
over 20,000 draws of them (Monte Carlo from ``jax.random.key(0)``, ± one standard
error), as mean squared error (the learner's query 'loss', no ½). The Bayes floor
(``linreg.bayes_mse``; posterior mean = ridge with λ = σ²/a²) and plain gradient
descent at α = 0.05 for this model from its best start at every k, w = 0 and b = 0
(``linreg.gd_mse(..., bias=True)``; MAML meta-learns only that start, so at K = 8 and
k = 5 its expected query loss cannot go below 4.60):

  K    Bayes            GD k=1           GD k=5           GD k=10          GD k=100
  2    6.3420 ± 0.0003  7.1432 ± 0.0018  6.6398 ± 0.0012  6.5942 ± 0.0009  6.5920 ± 0.0009
  4    4.5178 ± 0.0008  6.9371 ± 0.0019  5.5780 ± 0.0021  5.2117 ± 0.0019  4.9677 ± 0.0013
  8    1.7039 ± 0.0024  6.8345 ± 0.0016  4.6033 ± 0.0025  3.7098 ± 0.0026  2.2502 ± 0.0023
  16   0.5131 ± 0.0005  6.7826 ± 0.0012  3.9161 ± 0.0022  2.5979 ± 0.0022  0.6406 ± 0.0010

Before adapting (k = 0) every learner starting at 0 scores σ² + d·a² = 8.25.
Variants (comma-separated): ``smoke`` (seconds), ``shots=K``, ``fomaml``.
"""

from metalearn import config as config_lib


def get_config(arg: str = ""):
  args = config_lib.parse_args(arg)
  c = config_lib.base_config()
  c.task = "linreg"
  c.linreg.dim, c.linreg.weight_std, c.linreg.noise = 8, 1.0, 0.5
  c.model.name = "mlp"
  c.model.hidden = ()
  c.shots = int(args.get("shots", 8))
  c.queries = 16
  c.algorithm = "fomaml" if "fomaml" in args else "maml"
  c.inner.steps = 5
  c.inner.lr = 0.05
  c.outer.lr = 1e-3
  c.meta_batch = 25
  c.num_steps = 10000
  c.log_every = 500
  c.checkpoint_every = 5000
  c.val.every = 5000
  c.val.episodes = 200
  c.eval.episodes = 2000
  c.eval.steps = 100
  c.eval.eval_steps = (0, 1, 2, 5, 10, 20, 50, 100)
  c.eval.queries = 100
  c.eval.batch = 500
  if "smoke" in args:
    config_lib.shrink_for_smoke(c)
  return c
