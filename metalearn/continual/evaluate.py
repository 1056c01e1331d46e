"""ANML's meta-test protocol: learn a stream of unseen classes online, then score them.

A stream holds up to N classes of the meta-test split in a random order, P examples of
each learned online one SGD step per example (Omniglot: 15 images), then the held-out
examples of every class seen so far are scored (Omniglot: 5 per class): accuracy
against the number of classes seen (10, 50, …, 600), over ``streams`` streams of
different class orders, each with its 95% interval (``stats.half_width``, over
streams). The output layer is re-initialised before each stream (``reset_head``) and
only the parts in ``online`` learn (ANML: the head; OML: the PLN; scratch: everything).

One pass serves every class count: after its first n classes a stream's learner is
exactly the learner of a stream of those n classes, so scoring the classes seen so far
at n = 10, 50, … along one stream of N classes gives each point of the curve (the points
of one stream are then correlated, the streams independent). The i.i.d. oracle
(``shuffle``) is trained afresh for each n on the first n classes' examples, shuffled,
for ``epochs`` epochs. Replay (``replay_passes``) runs after each class over all the
steps seen so far (``compute.py``).

The parts that do not learn online are evaluated once: for Omniglot over the whole
meta-test split before the streams (its features are then gathered per stream), for
sine waves per stream. Results go to ``<workdir>/eval/continual_<...>.jsonl`` (one row
per metric and class count, with the protocol's settings, the 95% interval and the
FLOPs of the online phase) beside ``.npz`` per-stream, per-class values.
"""

import dataclasses
import functools
import hashlib
import json
import os
import time
from typing import Any, Callable, Optional

from absl import logging
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from metalearn import atomic
from metalearn import compiler
from metalearn import stats
from metalearn.continual import baselines
from metalearn.continual import build as build_lib
from metalearn.continual import costs as costs_lib
from metalearn.continual import nets as nets_lib
from metalearn.continual import oml
from metalearn.continual import train as train_lib
from metalearn.run import workdir as workdir_lib
from metalearn.tasks import sampling


@dataclasses.dataclass(frozen=True)
class Protocol:
  """Every setting that changes an evaluation's numbers, given the parameters."""

  split: str
  classes: tuple[int, ...]
  streams: int
  seed: int
  online: tuple[str, ...]
  lr: float
  optimizer: str
  reset_head: bool
  steps_per_example: int = 1
  replay_passes: int = 0
  batch: int = 1
  shuffle: bool = False
  epochs: int = 1
  stream: str = ""  # The stream family's settings that shape its streams (JSON).

  def digest(self) -> str:
    text = json.dumps(dataclasses.asdict(self), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def protocol(c: ml_collections.ConfigDict, **overrides) -> Protocol:
  e = c.eval
  p = Protocol(split=e.split, classes=tuple(int(n) for n in e.classes),
               streams=int(e.streams), seed=int(e.seed), online=tuple(e.online),
               lr=float(e.lr), optimizer=e.optimizer, reset_head=bool(e.reset_head),
               steps_per_example=int(e.steps_per_example),
               replay_passes=int(e.replay_passes), batch=int(e.batch),
               shuffle=bool(e.shuffle), epochs=int(e.epochs), stream=stream_settings(c))
  return dataclasses.replace(p, **overrides)


def stream_settings(c: ml_collections.ConfigDict) -> str:
  """The settings that decide which examples a meta-test stream holds, as JSON."""
  if c.task == "omniglot":
    keys = dict(train_classes=c.data.train_classes, image_size=c.data.image_size,
                train_per_class=c.stream.train_per_class,
                heldout_per_class=c.stream.heldout_per_class,
                shuffle_examples=bool(c.stream.shuffle_examples))
  else:
    keys = {k: c.sine[k] for k in ("functions", "steps_per_function", "batch",
                                   "heldout_per_function")}
  return json.dumps(keys, sort_keys=True)


def chunked(fn: Callable, xs: Any, chunk: int) -> Any:
  """``fn`` over the leading axis of the pytree ``xs`` in chunks of ``chunk``
  (``lax.map``; the last chunk padded), so memory stays that of one chunk."""
  n = jax.tree.leaves(xs)[0].shape[0]
  chunk = max(1, min(chunk, n))
  pad = (-n) % chunk
  padded = jax.tree.map(
      lambda a: jnp.pad(a, [(0, pad)] + [(0, 0)] * (a.ndim - 1)).reshape(
          (-1, chunk) + a.shape[1:]), xs)
  out = jax.lax.map(fn, padded)
  return jax.tree.map(lambda o: o.reshape((-1,) + o.shape[2:])[:n], out)


def flatten_lead(tree: Any, lead: int) -> Any:
  """Merges the first ``lead`` axes of every leaf."""
  return jax.tree.map(lambda a: a.reshape((-1,) + a.shape[lead:]), tree)


def reset_head(params: dict, key: jax.Array) -> dict:
  """``params`` with the output layer redrawn: weights He-normal, biases zero."""
  out = params["head"]["out"]
  fresh = dict(kernel=nets_lib.he_normal(key, out["kernel"].shape, out["kernel"].dtype),
               bias=jnp.zeros_like(out["bias"]))
  return dict(params, head=dict(params["head"], out=fresh))


class OnlineLearner:
  """The jitted pieces of one protocol's online learner: a step, a class of the stream
  with its replay, the oracle's shuffled epochs, and scoring."""

  def __init__(self, net: nets_lib.Net, p: Protocol, loss: str, chunk: int = 256,
               fast_compile: bool = False):
    self.net, self.p, self.loss, self.chunk = net, p, loss, chunk
    self.level = net.prefix_level(p.online)
    self.opt = costs_lib.optimizer(p.optimizer, p.lr)
    jit = functools.partial(compiler.jit, fast_compile=fast_compile)
    self.features = jit(self._features)
    self.advance = jit(self._advance)
    self.learn_order = jit(self._learn_order)
    self.score = jit(self._score)

  def _features(self, theta, x):
    return chunked(lambda xb: self.net.features(theta, xb, self.level), x, self.chunk)

  def _sgd(self, carry, fixed, feats, y):
    online, opt_state = carry

    def loss_fn(q):
      out = self.net.from_features({**fixed, **q}, feats, self.level)
      return oml.score(out, y, self.loss)[0]

    grads = jax.grad(loss_fn)(online)
    updates, opt_state = self.opt.update(grads, opt_state, online)
    return optax.apply_updates(online, updates), opt_state

  def _batch(self, xs, ys, idx):
    def take(a):
      g = a[idx]
      return g.reshape((-1,) + g.shape[2:])
    return jax.tree.map(take, xs), take(ys)

  def _advance(self, carry, fixed, xs, ys, start, stop, key):
    """Steps ``[start, stop)`` of the stream in order (``steps_per_example`` each), then
    the replay passes over steps ``[0, stop)``."""
    k = self.p.steps_per_example

    def step(i, c):
      j = i // k
      return self._sgd(c, fixed, jax.tree.map(lambda a: a[j], xs), ys[j])

    carry = jax.lax.fori_loop(start * k, stop * k, step, carry)
    total, b = ys.shape[0], self.p.batch
    for r in range(self.p.replay_passes):
      u = jax.random.uniform(jax.random.fold_in(key, r), (total,))
      perm = jnp.argsort(jnp.where(jnp.arange(total) < stop, u, jnp.inf))

      def replay(i, c, perm=perm):
        idx = jax.lax.dynamic_slice(perm, (i * b,), (b,))
        return self._sgd(c, fixed, *self._batch(xs, ys, idx))

      carry = jax.lax.fori_loop(0, stop // b, replay, carry)
    return carry

  def _learn_order(self, carry, fixed, xs, ys, order, num_batches):
    b = self.p.batch

    def step(i, c):
      idx = jax.lax.dynamic_slice(order, (i * b,), (b,))
      return self._sgd(c, fixed, *self._batch(xs, ys, idx))

    return jax.lax.fori_loop(0, num_batches, step, carry)

  def _score(self, params, feats, y):
    """Per-example accuracy (or squared error) ``[M]``."""
    out = chunked(lambda f: self.net.from_features(params, f, self.level), feats,
                  self.chunk)
    if self.loss == "mse":
      return jnp.mean(jnp.square(out - y), axis=-1)
    return (jnp.argmax(out, -1) == y).astype(jnp.float32)


def run_streams(theta: dict, family: Any, data: Any, net: nets_lib.Net, p: Protocol,
                *, chunk: int = 256, log: Optional[Callable[[str], None]] = None,
                fast_compile: bool = False) -> dict[str, np.ndarray]:
  """Learns ``p.streams`` streams online and scores them at each class count.

  Returns:
    ``metric -> [streams, len(p.classes), N]`` per-class values (N the largest class
    count; classes not yet seen are NaN): ``accuracy`` / ``train_accuracy`` (held-out
    and learned examples) for classification, ``mse`` / ``train_mse`` for regression.
  """
  learner = OnlineLearner(net, p, family.loss, chunk, fast_compile)
  key = jax.random.key(p.seed)
  n_max = p.classes[-1]
  per_image = isinstance(data, sampling.ImageData)
  source = data
  if per_image and learner.level > 0:  # The fixed part, once for the whole split.
    c, e = data.images.shape[:2]
    x = stream_float(data.images.reshape((c * e,) + data.images.shape[2:]))
    feats = learner.features(theta, x)
    source = jax.tree.map(lambda f: f.reshape((c, e) + f.shape[1:]), feats)
  names = ("mse", "train_mse") if family.loss == "mse" else ("accuracy", "train_accuracy")
  values = {m: np.full((p.streams, len(p.classes), n_max), np.nan) for m in names}
  t0 = time.time()
  for s in range(p.streams):
    k_stream, k_reset, k_learn = jax.random.split(jax.random.fold_in(key, s), 3)
    stream = family.stream(k_stream, source, n_max,
                           data.class_ids if per_image else None)
    x, hx = stream.x, stream.heldout_x
    if not per_image and learner.level > 0:
      x = jax.tree.map(lambda f: f.reshape(stream.y.shape[:3] + f.shape[1:]),
                       learner.features(theta, flatten_lead(x, 3)))
      hx = jax.tree.map(lambda f: f.reshape(stream.heldout_y.shape[:2] + f.shape[1:]),
                        learner.features(theta, flatten_lead(hx, 2)))
    steps_per_class = stream.y.shape[1]
    xs, ys = flatten_lead(x, 2), flatten_lead(stream.y, 2)  # [N·P, B, ...]
    h_feats, h_y = flatten_lead(hx, 2), flatten_lead(stream.heldout_y, 2)
    t_feats, t_y = flatten_lead(xs, 2), flatten_lead(ys, 2)
    params = reset_head(theta, k_reset) if p.reset_head else theta
    online0, fixed = oml.split(params, p.online)
    carry0 = (online0, learner.opt.init(online0))

    def record(i, carry):
      scored = {**fixed, **carry[0]}
      held = np.asarray(learner.score(scored, h_feats, h_y)).reshape(n_max, -1)
      seen = np.asarray(learner.score(scored, t_feats, t_y)).reshape(n_max, -1)
      n = p.classes[i]
      values[names[0]][s, i, :n] = held.mean(1)[:n]
      values[names[1]][s, i, :n] = seen.mean(1)[:n]

    if p.shuffle:
      for i, n in enumerate(p.classes):
        steps = n * steps_per_class
        order = baselines.oracle_order(jax.random.fold_in(k_learn, n), steps, p.epochs)
        order = jnp.pad(order, (0, n_max * steps_per_class * p.epochs - order.shape[0]))
        record(i, learner.learn_order(carry0, fixed, xs, ys, order,
                                      (steps * p.epochs) // p.batch))
    else:
      carry, marks = carry0, {n: i for i, n in enumerate(p.classes)}
      for c in range(n_max):
        carry = learner.advance(carry, fixed, xs, ys, c * steps_per_class,
                                (c + 1) * steps_per_class, jax.random.fold_in(k_learn, c))
        if c + 1 in marks:
          record(marks[c + 1], carry)
    if log is not None:
      last = np.nanmean(values[names[0]][s, -1])
      elapsed = time.time() - t0
      log(f"stream {s + 1}/{p.streams}: {names[0]} {last:.4f} at {n_max} classes "
          f"({elapsed:.0f}s, ETA {elapsed / (s + 1) * (p.streams - s - 1):.0f}s)")
  return values


def stream_float(images: jax.Array) -> jax.Array:
  return images.astype(jnp.float32) * (1.0 / 255.0)


def curves(values: dict[str, np.ndarray], classes: tuple[int, ...],
           first: int = 0) -> dict[str, np.ndarray]:
  """``metric -> [streams, len(classes)]``: the mean over the classes seen (or, with
  ``first``, over the stream's first ``first`` classes only)."""
  out = {}
  for m, v in values.items():
    rows = []
    for i, n in enumerate(classes):
      rows.append(np.mean(v[:, i, :min(n, first) if first else n], axis=1))
    out[m] = np.stack(rows, axis=1)
  return out


def stream_cost(setup: build_lib.Setup, theta: dict, data: Any, p: Protocol
                ) -> costs_lib.StreamCost:
  """The FLOPs of ``p``'s online learner on this family's streams."""
  family = setup.family
  stream = jax.eval_shape(lambda k, d: family.stream(
      k, d, 1, d.class_ids if isinstance(d, sampling.ImageData) else None),
      jax.random.key(0), data)
  x = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape[2:], a.dtype), stream.x)
  y = jax.ShapeDtypeStruct(stream.y.shape[2:], stream.y.dtype)
  return costs_lib.stream_cost(
      setup.net, theta, p.online, example_x=x, example_y=y,
      steps_per_class=stream.y.shape[1], loss=family.loss, optimizer_name=p.optimizer,
      lr=p.lr, batch=p.batch)


def _stem(workdir: str, kind: str, step: Optional[int], p: Protocol, extra: str) -> str:
  digest = p.digest() if not extra else hashlib.sha256(
      (p.digest() + extra).encode()).hexdigest()[:8]
  at = "init" if step is None else f"step{step}"  # None: the random initialisation.
  return os.path.join(workdir, workdir_lib.EVAL, f"continual_{kind}_{at}_{p.split}_{digest}")


def write(workdir: str, kind: str, step: Optional[int], p: Protocol, rows: list[dict],
          values: dict[str, np.ndarray], extra: str = "") -> str:
  """Writes the per-stream values, then the rows; returns the rows' path. The file
  name holds the digest of the protocol (and of ``extra``, more settings)."""
  stem = _stem(workdir, kind, step, p, extra)
  atomic.write_npz(stem + ".npz", classes=np.asarray(p.classes), **values)
  atomic.write_text(stem + ".jsonl", "".join(json.dumps(r) + "\n" for r in rows))
  return stem + ".jsonl"


def row_settings(c: ml_collections.ConfigDict, step: Optional[int], p: Protocol) -> dict:
  """What every row carries: the run's settings and the protocol's."""
  out = dict(algorithm=c.algorithm, model=c.model.name, task=c.task, seed=c.seed,
             data="omniglot/anml" if c.task == "omniglot" else "sine",
             checkpoint_step=step, train_online=list(c.train.online),
             train_lr=c.train.lr)
  out.update({f"eval_{k}": (list(v) if isinstance(v, tuple) else v)
              for k, v in dataclasses.asdict(p).items() if k != "classes"})
  return out


def evaluate(config: ml_collections.ConfigDict, workdir: str, *,
             step: Optional[int] = None) -> list[dict]:
  """Scores checkpoint ``step`` (default latest; ``scratch``: the initialisation) under
  ``config.eval`` and writes its rows; returns them."""
  setup = build_lib.build(config)
  theta, step = train_lib.restore_theta(config, workdir, step, setup)
  data = setup.family.load(config.eval.split)
  p = protocol(config)
  setup.family.check(data, p.classes[-1])
  logging.info("evaluating step %s on %d streams of up to %d classes (%s)", step,
               p.streams, p.classes[-1], p)
  t0 = time.time()
  values = run_streams(theta, setup.family, data, setup.net, p, chunk=config.eval.chunk,
                       log=logging.info, fast_compile=bool(config.fast_compile))
  cost = stream_cost(setup, theta, data, p)
  base = row_settings(config, step, p)
  rows = []
  for metric, curve in curves(values, p.classes).items():
    for i, n in enumerate(p.classes):
      flops = (cost.oracle(n, p.epochs) if p.shuffle else
               cost.online(n, p.steps_per_example, p.replay_passes))
      rows.append(dict(base, metric=metric, classes=n, mean=float(curve[:, i].mean()),
                       ci95=float(stats.half_width(curve[:, i])), streams=p.streams,
                       online_flops=flops, seconds=round(time.time() - t0, 1)))
  path = write(workdir, "curve", step, p, rows, values)
  logging.info("wrote %s", path)
  for r in rows:
    logging.info("%s at %d classes: %.4f ± %.4f", r["metric"], r["classes"], r["mean"],
                 r["ci95"])
  return rows
