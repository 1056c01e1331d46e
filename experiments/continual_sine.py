r"""OML's incremental sine-wave regression (Javed & White 2019, Section 4.1).

A trajectory visits 10 sine waves ``y = a·sin(x − φ)`` (a ~ U[0.1, 5], φ ~ U[0, π],
x ~ U[−5, 5]) one after another; the input is x and a one-hot of the wave's position in
the trajectory (11 inputs), and each online step is an SGD step on 32 points of the
current wave, 40 steps per wave. The meta-loss is the MSE on 32 fresh points of every
wave after the trajectory. Meta-training waves come from a pool of 400; meta-test waves
are fresh. The network (the "old" Sin model of OML's code): an RLN of five 300-unit
ReLU layers and one of 900, a PLN of two 300-unit layers and one output; online only
the PLN, step size 0.003; Adam 1e-4 (OML's ``oml_regression.py`` defaults).

Meta-test: streams of 10 fresh waves learned in order (40 steps of 32 points each),
then the MSE on held-out points of every wave seen so far, against waves seen, over 10
streams. OML reports this as a curve (its Figure 3); no number is restated here — the
comparison is with the online learner from scratch (``scratch``) and the pre-trained
network (``pretrained``), and with the i.i.d. oracle (``oracle``).

Variants: ``oml`` (default), ``anml`` (a gating MLP over the representation, which is
then updated online as ANML's body), ``scratch``, ``pretrained``, ``oracle``, ``cpu``
(narrower nets, 10 steps per wave, 2,000 steps), ``smoke``.

  python -m launch.continual --config=experiments/continual_sine.py:oml \
      --workdir=/tmp/continual_sine
  python -m launch.continual --config=experiments/continual_sine.py:oml \
      --workdir=/tmp/continual_sine --mode=evaluate
"""

from metalearn import config as base_config_lib
from metalearn.continual import config as config_lib


def get_config(arg: str = ""):
  args = base_config_lib.parse_args(arg)
  c = config_lib.base_config()
  c.task = "sine"
  algorithm = next((a for a in ("anml", "scratch", "pretrained") if a in args), "oml")
  c.algorithm = algorithm
  c.model.name = "sine_anml" if algorithm == "anml" else "sine_mlp"
  c.train.online = ("body", "head") if algorithm == "anml" else ("head",)
  c.eval.online = ("body", "head") if algorithm == "anml" else ("head",)
  if algorithm == "scratch":
    c.eval.online = ("rln", "head")
  c.train.lr = 0.003
  c.eval.lr = 0.003
  c.outer.lr = 1e-4
  c.num_steps = 20000 if algorithm != "scratch" else 1
  c.train.reset_classes = False
  c.train.pretrain_batch = 320
  c.eval.reset_head = False  # One regression output, learned with the representation.
  c.eval.classes = tuple(range(1, 11))
  c.eval.chunk = 1024
  c.compute.classes = 5
  c.compute.longer = (10,)
  if "oracle" in args:
    c.eval.shuffle = True
    c.eval.epochs = 5
  if "cpu" in args:
    c.model.rln = (100,) * 5 + (300,)
    c.model.pln = (100, 100)
    c.model.nm = (100,)
    c.sine.steps_per_function = 10
    c.num_steps = 2000
    c.log_every = 50
    c.checkpoint_every = 250
  if "smoke" in args:
    c.fast_compile = True
    c.model.rln = (16, 32)
    c.model.pln = (16,)
    c.model.nm = (16,)
    c.sine.steps_per_function = 3
    c.sine.batch = 8
    c.sine.remember_per_function = 8
    c.sine.heldout_per_function = 8
    c.num_steps = 6
    c.log_every = 2
    c.checkpoint_every = 3
    c.eval.classes = (1, 5, 10)
    c.eval.streams = 2
    c.compute.steps_per_example = (1, 2)
    c.compute.replay_passes = (0, 1)
  return c
