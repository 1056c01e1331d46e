#!/usr/bin/env bash
# Test-time compute and test-time data on the committed converged Omniglot checkpoints
# (issue 27; evaluation only, nothing is retrained):
#  1. each 5-way model at test-time shots 1..10 (the model trained at its own shots),
#     k = 0..16 at its training inner rate, 200 test episodes, 15 queries per class
#     (20 − shots above 5 shots: a character has 20 drawings);
#  2. each model over k = 0..256 with the inner rate chosen per k on 200 validation
#     episodes (launch.main --mode=tune_inner_lr), scored on 200 test episodes.
# Every evaluation is written under results/<run>/eval/ and skipped when it exists, so
# re-running the script resumes.  Usage: bash launch/omniglot_test_time.sh [python]
set -euo pipefail
PY=${1:-python}
K256='--config.eval.steps=256 --config.eval.eval_steps=(0,1,2,4,8,16,32,64,128,256)'
K16='--config.eval.steps=16 --config.eval.eval_steps=(0,1,2,4,8,16)'
run() { echo "== $(date -u +%FT%TZ) $*"; "$PY" -m launch.main "$@"; }

declare -A CFG=(
  [omniglot_maml_5w1s]="experiments/omniglot.py:5way1shot --config.keep_checkpoints=1 --config.checkpoint_every=250"
  [omniglot_fomaml_5w1s]="experiments/omniglot.py:fomaml --config.keep_checkpoints=1 --config.checkpoint_every=500"
  [omniglot_maml_5w5s]="experiments/omniglot.py:5way5shot --config.keep_checkpoints=1 --config.checkpoint_every=250"
  [omniglot_reptile_5w1s]="experiments/omniglot_reptile.py"
  [omniglot_maml_20w1s]="experiments/omniglot.py:20way1shot --config.inner.remat=True --config.keep_checkpoints=1 --config.checkpoint_every=100"
)
declare -A LRS=(
  [omniglot_maml_5w1s]=0.1,0.4,1.0
  [omniglot_fomaml_5w1s]=0.1,0.4,1.0
  [omniglot_maml_5w5s]=0.1,0.4,1.0
  [omniglot_reptile_5w1s]=0.0003,0.001,0.003
  [omniglot_maml_20w1s]=0.03,0.1,0.3
)
shots() {  # $1 = run
  for s in 1 2 3 4 5 6 7 8 9 10; do
    # shellcheck disable=SC2086
    run --config=${CFG[$1]} --workdir=results/$1 --mode=evaluate \
      --config.eval.episodes=200 --config.eval.shots=$s \
      --config.eval.queries=$((s > 5 ? 20 - s : 15)) $K16 --skip_existing
  done
}
tune() {  # $1 = run
  # shellcheck disable=SC2086
  run --config=${CFG[$1]} --workdir=results/$1 --mode=tune_inner_lr \
    --inner_lrs=${LRS[$1]} --val_episodes=200 --config.eval.episodes=200 $K256
}
# Cheapest first: the shots grids (k <= 16), then the tuned k-curves (k = 256, six
# evaluations each; a 5-shot or 20-way one takes hours on one CPU core).
shots omniglot_maml_5w1s
tune omniglot_fomaml_5w1s
shots omniglot_fomaml_5w1s
shots omniglot_maml_5w5s
tune omniglot_reptile_5w1s
tune omniglot_maml_5w5s
tune omniglot_maml_20w1s
echo "== $(date -u +%FT%TZ) done"
