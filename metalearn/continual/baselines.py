"""The baselines OML and ANML are compared with (Beaulieu et al. 2020, Section 3).

- ``scratch``: the same network from its random initialisation, every part learned
  online on the meta-test stream (nothing meta-learned).
- ``pretrained``: the network trained i.i.d. on the meta-training classes (minibatch
  cross-entropy over all 963 classes, ``pretrain_grad``), then fine-tuned online on the
  meta-test stream with its output layer re-initialised ("pre-train and transfer").
- ``oracle``: any learner given the same examples as the stream, shuffled, for several
  epochs, in place of the one ordered pass (``oracle_order``); the i.i.d. upper
  reference of what the online learner could reach on that data
  (``config.eval.shuffle`` and ``config.eval.epochs``).

The first two are training objectives for the same loop as OML and ANML
(``train.py``); the oracle is an evaluation protocol (``evaluate.py``).
"""

from typing import Any

import jax
import jax.numpy as jnp

from metalearn.continual import nets as nets_lib
from metalearn.continual import oml


def pretrain_loss(theta: dict, batch: tuple[jax.Array, jax.Array], *,
                  net: nets_lib.Net, loss: str) -> tuple[jax.Array, dict]:
  """The i.i.d. loss of a minibatch ``(x [M, ...], y [M])`` of meta-training data."""
  x, y = batch
  value, metrics = oml.score(net.apply(theta, x), y, loss)
  return value, {f"pretrain_{k}": v for k, v in metrics.items()}


def pretrain_grad(theta: dict, batch: tuple[jax.Array, jax.Array], key: Any = None, *,
                  net: nets_lib.Net, loss: str) -> tuple[dict, dict]:
  """``(∇_θ loss, metrics)`` of one i.i.d. minibatch, every part of the network."""
  del key
  grads, aux = jax.grad(pretrain_loss, has_aux=True)(theta, batch, net=net, loss=loss)
  return grads, jax.lax.stop_gradient(aux)


def oracle_order(key: jax.Array, steps: int, epochs: int) -> jax.Array:
  """The i.i.d. oracle's order over a stream's first ``steps`` online steps: ``epochs``
  independent shuffles of them, one after another (``[epochs · steps]`` indices)."""
  keys = jax.random.split(key, epochs)
  return jnp.concatenate([jax.random.permutation(k, steps) for k in keys])
