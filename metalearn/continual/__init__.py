"""Continual meta-learning: learning from one stream (issue 29).

  stream     class-incremental Omniglot and OML's incremental sine waves
  nets       the networks: representation, neuromodulatory gate, prediction network
  oml        OML: meta-learn a representation for online SGD over a trajectory
  anml       ANML: OML with a neuromodulatory network gating the prediction network
  baselines  online from scratch, pre-trained then fine-tuned, the i.i.d. oracle
  evaluate   ANML's meta-test protocol: accuracy against classes seen, over streams
  costs      FLOPs of online learning, replay and meta-training (XLA's cost analysis)
  compute    compute on a fixed stream: steps per example and replay against length
  config     the config schema; build: a run assembled from it; train: the loop

``launch/continual.py`` is the command line; ``experiments/continual_*.py`` the configs.
"""
