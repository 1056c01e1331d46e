r"""Continual learning of Omniglot classes (ANML's protocol): OML, ANML and baselines.

Protocol (Beaulieu et al. 2020, after Javed & White 2019): meta-training on the first
963 Omniglot characters (background alphabets), meta-test on the other 660 (one
background character and the 659 evaluation characters), no rotations, 28×28 images.
A meta-training trajectory is 20 drawings of one character, one SGD step each, scored
with a remembered set of 64 random drawings of meta-training characters plus the
trajectory; its class's output row is redrawn before it. Meta-test: streams of up to
600 unseen characters in random order, the first 15 drawings of each learned online
(one SGD step per image, the output layer re-initialised), then accuracy on the last 5
drawings of every character seen so far, at 10, 50, 75, 100, 200, …, 600 characters,
with 95% intervals over 10 streams of different class orders.

Published meta-test accuracy at 600 classes (held-out drawings; Beaulieu et al. 2020):
ANML 63.8%, OML 18.2%.

Variants (comma-separated):
  anml (default)  ANML: prediction network 3 conv (256) + Dense(1000), gated by an NM
                  network 3 conv (112) + Dense(2304) + sigmoid; online in meta-training:
                  the prediction network; at meta-test: its Dense layer (ANML's code,
                  --rln 7 / --rln 13). Meta lr 1e-3, online lr 0.1, 20,000 steps
                  (ANML's README command).
  oml             OML: RLN 6 conv (256), PLN Dense(1024) + Dense(1000), online: the
                  PLN. Same trajectories and step sizes as ANML (ANML's comparison).
  scratch         OML's network from its random initialisation, every part learned
                  online at meta-test; nothing is trained (--mode=evaluate only).
  pretrained      OML's network trained i.i.d. on the 963 classes (minibatches of 64,
                  Adam 1e-3, 20,000 steps), then its PLN fine-tuned online.
  oracle          evaluation only, with any of the above: the same examples shuffled,
                  5 epochs, instead of one ordered pass (an i.i.d. reference).
  cpu             the reduced setting that fits a 2-core CPU: narrower nets (ANML
                  32/16 channels, OML 32 channels and a 256-unit PLN), 3,000 steps,
                  trajectories of 10 drawings and a remembered set of 32.
  smoke           seconds: tiny nets, a few steps, 2 streams of up to 20 classes.

Online step sizes at meta-test (``eval.lr``) are the meta-training online step size;
ANML's code instead tunes an Adam step size per class count on meta-test streams
(``--config.eval.optimizer=adam --config.eval.lr=...``).

  python -m launch.continual --config=experiments/continual_omniglot.py:anml \
      --workdir=/tmp/continual_anml                 # meta-train (resumes if rerun)
  python -m launch.continual --config=experiments/continual_omniglot.py:anml \
      --workdir=/tmp/continual_anml --mode=evaluate # accuracy vs classes seen
  python -m launch.continual --config=experiments/continual_omniglot.py:anml,oracle \
      --workdir=/tmp/continual_anml --mode=evaluate # the i.i.d. oracle
  python -m launch.continual --config=experiments/continual_omniglot.py:anml \
      --workdir=/tmp/continual_anml --mode=compute  # compute on a fixed stream
"""

from metalearn import config as base_config_lib
from metalearn.continual import config as config_lib

OMNIGLOT_PATH = "../shared/data/omniglot"  # Relative to the repository root.
PUBLISHED_600 = {"anml": 0.638, "oml": 0.182}  # Beaulieu et al. 2020, 600 classes.


def get_config(arg: str = ""):
  args = base_config_lib.parse_args(arg)
  c = config_lib.base_config()
  c.task = "omniglot"
  c.data.path = OMNIGLOT_PATH
  algorithm = next((a for a in ("oml", "scratch", "pretrained") if a in args), "anml")
  c.algorithm = algorithm
  c.outer.lr = 1e-3
  c.train.lr = 0.1
  c.eval.lr = 0.1
  if algorithm == "anml":
    c.model.name = "anml_omniglot"
    c.train.online = ("body", "head")
    c.eval.online = ("head",)
  else:
    c.model.name = "oml_omniglot"
    c.train.online = ("head",)
    c.eval.online = ("rln", "head") if algorithm == "scratch" else ("head",)
  if algorithm == "scratch":
    c.num_steps = 1
  if "oracle" in args:
    c.eval.shuffle = True
    c.eval.epochs = 5
  if "cpu" in args:
    c.model.channels = 32
    c.model.nm_channels = 16
    c.model.hidden = 256
    c.stream.traj_per_class = 10
    c.stream.remember = 32
    c.num_steps = 3000
    c.log_every = 50
    c.checkpoint_every = 250
    c.compute.classes = 50
    c.compute.longer = (100, 200)
  if "smoke" in args:
    c.fast_compile = True
    c.model.channels = 8
    c.model.nm_channels = 4
    c.model.hidden = 32
    c.stream.traj_per_class = 5
    c.stream.remember = 8
    c.train.pretrain_batch = 8
    c.num_steps = 6
    c.log_every = 2
    c.checkpoint_every = 3
    c.eval.classes = (5, 10, 20)
    c.eval.streams = 2
    c.compute.classes = 5
    c.compute.steps_per_example = (1, 2)
    c.compute.replay_passes = (0, 1)
    c.compute.longer = (10,)
  return c
