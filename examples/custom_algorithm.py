r"""Follow-up research with the public API only: a new algorithm, registered from outside.

"Blend" mixes the two first-order meta-gradients of one task: Reptile's step towards
the adapted parameters, (θ − θ')/α, and first-order MAML's query gradient at θ'. It
is registered under a name, trained by the library's loop on sinusoid regression and
scored over test-time inner steps, exactly as the built-in algorithms are.

  python examples/custom_algorithm.py --workdir=/tmp/blend [--steps=1000]
"""

import sys

from absl import app
from absl import flags
import jax

import metalearn as ml

_WORKDIR = flags.DEFINE_string("workdir", None, "Where the run goes.", required=True)
_STEPS = flags.DEFINE_integer("steps", 1000, "Meta-steps.")
BETA = 0.5  # Weight of the Reptile direction.


def blend_meta_grad(theta, episode, key, *, learner, inner, log=True):
  del key, log
  adapted, _ = ml.adapt(jax.lax.stop_gradient(theta),
                        lambda p: learner.support_loss(p, episode), cfg=inner)
  (_, metrics), query_grads = jax.value_and_grad(
      learner.query_loss, has_aux=True)(adapted, episode)
  grads = jax.tree.map(lambda t, a, g: BETA * (t - a) / inner.lr + (1 - BETA) * g,
                       theta, adapted, query_grads)
  return grads, {f"query_{k}_post": v for k, v in metrics.items()}


ml.register_algorithm(ml.Algorithm(name="blend", meta_grad=blend_meta_grad,
                                   first_order=True, min_inner_steps=1))


def main(argv):
  del argv
  config = ml.base_config()  # The sinusoid task and MLP are the defaults.
  config.algorithm = "blend"
  config.inner.steps, config.inner.lr = 5, 0.01
  config.num_steps = _STEPS.value
  config.log_every = config.checkpoint_every = max(_STEPS.value // 4, 1)
  config.eval.eval_steps, config.eval.episodes = (0, 1, 5, 10), 200
  ml.train(config, _WORKDIR.value)
  rows = ml.evaluate_checkpoint(config, _WORKDIR.value)
  for r in rows:
    print(f"{r['metric']} after k={r['k']:2d} test-time steps: "
          f"{r['mean']:.3f} ± {r['ci95']:.3f} ({r['episodes']} episodes)")


if __name__ == "__main__":
  sys.exit(app.run(main))
