"""What online learning, replay and meta-training cost in FLOPs.

The compute-on-a-fixed-stream study (``compute.py``) puts steps per example, replay
passes and stream length on one FLOPs axis; evaluation rows carry the FLOPs of their
online phase. Counting. FLOPs are XLA's cost analysis of the lowered programs
(``metalearn.flops.program_flops``, the same on every machine): one online step on a
minibatch (``step``), and the fixed part of the forward pass for one example
(``features``: the representation, a gate, whatever the online phase does not update).
A stream of n classes, P online steps per class of B examples each, costs

  features · n·P·B  +  step(B) · n·P·k  +  step(b·B) · passes · Σ_{i=1..n} ⌊i·P / b⌋

with k steps per example and, after each class, ``passes`` replay passes over the
i·P steps seen so far in minibatches of b steps (what ``evaluate.py`` runs; the buffer
holds the fixed features, so replay pays only for the online steps). The i.i.d. oracle
costs ``features · n·P·B + step(b·B) · epochs · ⌊n·P / b⌋``. Scoring the held-out
examples is evaluation, not learning, and is not counted.

Meta-training: ``meta_step_flops`` counts one trajectory's meta-gradient on the
canonical program (no rematerialisation, the scan unrolled: XLA counts a loop's body
once whatever its trip count).
"""

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import optax

from metalearn import flops as flops_lib
from metalearn.continual import nets as nets_lib
from metalearn.continual import oml


def _abstract(tree: Any) -> Any:
  return jax.tree.map(lambda x: jax.ShapeDtypeStruct(jnp.shape(x), jnp.result_type(x)),
                      tree)


def _take(tree: Any, n: int) -> Any:
  """Shapes of a pytree of examples ``[M, ...]`` with the leading axis ``n``."""
  return jax.tree.map(lambda x: jax.ShapeDtypeStruct((n,) + tuple(x.shape[1:]), x.dtype),
                      tree)


def optimizer(name: str, lr: float) -> optax.GradientTransformation:
  return optax.adam(lr) if name == "adam" else optax.sgd(lr)


@dataclasses.dataclass(frozen=True)
class StreamCost:
  """FLOPs of one online learner on one stream family.

  Attributes:
    features: the fixed forward pass of one example.
    step: one online step on one stream step's B examples.
    batch_step: one replay / oracle step on ``batch`` stream steps (b·B examples).
    steps_per_class: P.
    batch: b.
  """

  features: float
  step: float
  batch_step: float
  steps_per_class: int
  step_examples: int
  batch: int

  def online(self, n: int, steps_per_example: int = 1, replay_passes: int = 0) -> float:
    """A stream of ``n`` classes learned in order, with replay (module docstring)."""
    p, b = self.steps_per_class, self.batch
    replay = replay_passes * sum((i * p) // b for i in range(1, n + 1))
    return (self.features * n * p * self.step_examples
            + self.step * n * p * steps_per_example + self.batch_step * replay)

  def oracle(self, n: int, epochs: int) -> float:
    """The i.i.d. oracle on ``n`` classes: ``epochs`` shuffled passes."""
    p, b = self.steps_per_class, self.batch
    return (self.features * n * p * self.step_examples
            + self.batch_step * epochs * ((n * p) // b))


def stream_cost(net: nets_lib.Net, theta: dict, online: tuple[str, ...], *,
                example_x: Any, example_y: Any, steps_per_class: int, loss: str,
                optimizer_name: str = "sgd", lr: float = 0.01, batch: int = 1
                ) -> StreamCost:
  """Counts the programs ``StreamCost`` is made of.

  Args:
    net: the network.
    theta: its params (arrays or shapes).
    online: the parts the online phase updates.
    example_x: the inputs of one stream step, ``[B, ...]`` (arrays or shapes).
    example_y: its targets ``[B]`` (or ``[B, 1]``).
    steps_per_class: P.
    loss: 'xent' or 'mse'.
    optimizer_name: the online optimiser ('sgd' or 'adam').
    lr: its step size.
    batch: b, stream steps per replay / oracle step.
  """
  theta = _abstract(theta)
  net = canonical_net(net)
  level = net.prefix_level(online)
  x1 = _take(_abstract(example_x), 1)
  feats = jax.eval_shape(lambda t, x: net.features(t, x, level), theta,
                         _abstract(example_x))
  online_p, fixed = oml.split(theta, online)
  opt = optimizer(optimizer_name, lr)
  opt_state = jax.eval_shape(opt.init, online_p)
  b_ex = jax.tree.leaves(feats)[0].shape[0]

  def one_step(online_p, opt_state, fixed, f, y):
    def loss_fn(q):
      return oml.score(net.from_features({**fixed, **q}, f, level), y, loss)[0]
    grads = jax.grad(loss_fn)(online_p)
    updates, opt_state = opt.update(grads, opt_state, online_p)
    return optax.apply_updates(online_p, updates), opt_state

  def step_flops(m):
    y = _take(_abstract(example_y), m)
    return flops_lib.program_flops(one_step, online_p, opt_state, fixed,
                                   _take(feats, m), y)

  feature_flops = (0.0 if level == 0 else
                   flops_lib.program_flops(lambda t, x: net.features(t, x, level),
                                           theta, x1))
  single = step_flops(b_ex)
  return StreamCost(features=feature_flops, step=single,
                    batch_step=single if batch == 1 else step_flops(b_ex * batch),
                    steps_per_class=steps_per_class, step_examples=b_ex, batch=batch)


def meta_step_flops(net: nets_lib.Net, theta: dict, traj: Any,
                    cfg: oml.OnlineConfig) -> float:
  """FLOPs of one trajectory's meta-gradient (``oml.meta_grad``) on the canonical
  program: no rematerialisation, the trajectory's scan unrolled."""
  canonical = dataclasses.replace(cfg, remat="none", unroll=True)
  net = canonical_net(net)
  fn = lambda t, tr: oml.meta_grad(t, tr, jax.random.key(0), net=net, cfg=canonical)
  return flops_lib.program_flops(fn, _abstract(theta), _abstract(traj))


def canonical_net(net: nets_lib.Net) -> nets_lib.Net:
  """``net`` with native convolutions (``flops.CANONICAL_CONV_IMPL``), so a count does
  not depend on the formulation a backend runs (see ``metalearn.flops``)."""
  impl = flops_lib.CANONICAL_CONV_IMPL

  def canon(module):
    if module is None:
      return None
    if isinstance(module, nets_lib.Gate):
      return module.clone(trunk=canon(module.trunk))
    if hasattr(module, "conv_impl"):
      return module.clone(conv_impl=impl)
    return module

  return nets_lib.Net(head=canon(net.head), rln=canon(net.rln), body=canon(net.body),
                      nm=canon(net.nm))
