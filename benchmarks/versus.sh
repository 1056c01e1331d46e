#!/usr/bin/env bash
# Old code against new on the reference workload (issue 30), interleaved: for each of
# second-order MAML K = 1, K = 5 and first-order MAML K = 5, ROUNDS pairs of processes
# in turn (old, new, old, new, ...), each `benchmarks.meta_step --steps=STEPS
# --nocount_flops` in its own process, so drift and load fall on both. The old code runs
# from a git worktree of OLD (default 740d7d7, the commit of the issue's table) in
# $WORKTREE (default /tmp/metalearn_old), with the same Python environment; each JSON
# row gets "tree": "old" | "new" and "rev". Rows go to benchmarks/results/versus.jsonl;
# `python -m benchmarks.report` renders the medians and ratios. Run on a quiet machine:
#   bash benchmarks/versus.sh [OLD] [ROUNDS] [STEPS]
set -euo pipefail
cd "$(dirname "$0")/.."
OLD=${1:-740d7d7}
ROUNDS=${2:-3}
STEPS=${3:-10}
PY=${PYTHON:-python}
WT=${WORKTREE:-/tmp/metalearn_old}
OUT=$PWD/benchmarks/results/versus.jsonl
export JAX_PLATFORMS=${JAX_PLATFORMS:-cpu}
if [ ! -d "$WT" ]; then
  git worktree add --detach "$WT" "$OLD" >&2
fi
OLD_REV=$(git -C "$WT" rev-parse --short HEAD)
FROM=$(cd "$WT" && PYTHONPATH="$WT" "$PY" -c 'import metalearn; print(metalearn.__file__)')
case "$FROM" in "$WT"/*) ;; *) echo "the old tree imports metalearn from $FROM" >&2; exit 1;; esac
NEW_REV=$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- metalearn || echo "+dirty")
tag() {  # $1 = tree, $2 = rev: stamp the last JSON line of the step's output.
  "$PY" -c 'import json, sys
row = json.loads([l for l in sys.stdin if l.startswith("{")][-1])
row.update(tree=sys.argv[1], rev=sys.argv[2])
print(json.dumps(row))' "$1" "$2" >> "$OUT"
}
for args in "--algorithm=maml --K=1" "--algorithm=maml --K=5" "--algorithm=fomaml --K=5"; do
  for _ in $(seq "$ROUNDS"); do
    echo "== $(date -u +%FT%TZ) old $args" >&2
    # shellcheck disable=SC2086
    (cd "$WT" && PYTHONPATH="$WT" "$PY" -m benchmarks.meta_step $args --steps="$STEPS" \
      --nocount_flops) \
      | tag old "$OLD_REV"
    echo "== $(date -u +%FT%TZ) new $args" >&2
    # shellcheck disable=SC2086
    "$PY" -m benchmarks.meta_step $args --steps="$STEPS" --nocount_flops | tag new "$NEW_REV"
  done
done
