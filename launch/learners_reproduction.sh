#!/usr/bin/env bash
# The issue-28 reproduction runs, one after another, each resumable: re-running the script
# resumes the unfinished run from its latest checkpoint and skips finished training
# (launch.main stops at num_steps) and evaluations that exist (--skip_existing).
#
#   taskset -c 1 bash launch/learners_reproduction.sh [python]
#
# Cheapest first. Each run trains into results/<run>/ (keep_checkpoints=1: the final
# parameters are committed), then is scored on its own test protocol; ProtoNets' one
# 60-way model is also scored 5-way. On this 2-core CPU the MAML-family runs take days
# at the papers' lengths (see each experiment file); the learning curve so far is in
# results/<run>/metrics.jsonl and `python -m launch.results_table results/<run>`.
set -euo pipefail
PY=${1:-python}
run() { echo "== $(date -u +%FT%TZ) $*"; "$PY" -m launch.main "$@"; }
train() {  # $1 = run directory name, $2 = config
  run --config="$2" --config.keep_checkpoints=1 --workdir="results/$1" --mode=train
  run --config="$2" --config.keep_checkpoints=1 --workdir="results/$1" --mode=evaluate \
    --skip_existing
}

train omniglot_protonet experiments/omniglot_protonet.py:20way1shot
run --config=experiments/omniglot_protonet.py:5way1shot --config.keep_checkpoints=1 \
  --workdir=results/omniglot_protonet --mode=evaluate --skip_existing
train omniglot_lake_protonet_20w1s experiments/omniglot_lake.py:protonet_20way1shot
train omniglot_metasgd_5w1s experiments/omniglot_metasgd.py:5way1shot
train omniglot_anil_20w1s experiments/omniglot_anil.py:20way1shot
train omniglot_imaml_5w1s experiments/omniglot_imaml.py:5way1shot
train omniglot_imaml_20w1s experiments/omniglot_imaml.py:20way1shot
train omniglot_mamlpp_20w1s experiments/omniglot_mamlpp.py:20way1shot
train omniglot_lake_maml_20w1s experiments/omniglot_lake.py:maml_20way1shot
echo "== $(date -u +%FT%TZ) done"
