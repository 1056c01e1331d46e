#!/usr/bin/env bash
# Meta-steps/s and memory of every learner on the reference workload (issue 28): the
# Omniglot conv net, 5-way 1-shot, 15 queries per class, meta-batch 32, real data, each
# learner's own config file (its paper's inner rate and options) with those settings
# forced (Reptile's inner steps on the whole support set, not its 25-image batches), at
# K = 1, 5, 20 inner steps (ProtoNets has no inner loop: one row). One
# process per row (benchmarks.train_steps: compiled, 3 warm-up steps, then STEPS steps
# back to back), appended to benchmarks/results/learners.jsonl; iMAML's and MAML's
# compiled memory against K (to 100) by benchmarks.imaml_memory into
# benchmarks/results/learners_memory.jsonl. Run it on a quiet machine:
#   bash benchmarks/learners.sh [STEPS] [python]
# then `python -m benchmarks.report` renders the table into benchmarks/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${1:-20}
PY=${2:-python}
OUT=benchmarks/results/learners.jsonl
REF='--config.ways=5 --config.shots=1 --config.queries=15 --config.meta_batch=32'
declare -A CFG=(
  [maml]="experiments/omniglot.py:5way1shot"
  [fomaml]="experiments/omniglot.py:fomaml"
  [reptile]="experiments/omniglot_reptile.py --config.inner.batch_size=0"
  [anil]="experiments/omniglot_anil.py"
  [metasgd]="experiments/omniglot_metasgd.py"
  [mamlpp]="experiments/omniglot_mamlpp.py:5way1shot"
  [imaml]="experiments/omniglot_imaml.py"
  [protonet]="experiments/omniglot_protonet.py"
)
for alg in maml fomaml reptile anil metasgd mamlpp imaml protonet; do
  ks="1 5 20"
  [ "$alg" = protonet ] && ks="0"
  for k in $ks; do
    echo "== $(date -u +%FT%TZ) $alg K=$k" >&2
    # shellcheck disable=SC2086
    "$PY" -m benchmarks.train_steps --config=${CFG[$alg]} $REF \
      --config.inner.steps="$k" --steps="$STEPS" --out="$OUT"
  done
done
"$PY" -m benchmarks.imaml_memory --imaml_Ks=5,20,100 --maml_Ks=1,5,20 \
  | tee -a benchmarks/results/learners_memory.jsonl
