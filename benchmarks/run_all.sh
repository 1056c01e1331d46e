#!/usr/bin/env bash
# Regenerates benchmarks/results/ and the tables of benchmarks/README.md.
#
#   bash benchmarks/run_all.sh            # everything (the memory sweep takes long)
#   MEMORY=0 bash benchmarks/run_all.sh   # skip the memory-vs-K sweep
#
# Each section can be skipped with its variable set to 0 (META, COMPARE, ALTERNATE, FUSION,
# COMPILE, EVAL, ROOFLINE, MEMORY); a skipped section keeps its earlier results file.
#
# Env: PYTHON (default: python), MEMORY_META_BATCH (default 8), STEPS (default 10),
# ROUNDS (default 4: pairs of processes in ALTERNATE).
# The machine is shared: the load before and after is recorded in results/load.txt
# and every JSON row carries the load average at its start and end.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
R=benchmarks/results
STEPS=${STEPS:-10}
mkdir -p "$R"
export JAX_PLATFORMS=${JAX_PLATFORMS:-cpu}

snapshot() { echo "== $1: $(date -u +%FT%TZ)"; uptime; top -bn1 | sed -n '7,12p'; }
on() { [ "${!1:-1}" = 1 ]; }
snapshot "start (sections: META=${META:-1} COMPARE=${COMPARE:-1} \
ALTERNATE=${ALTERNATE:-1} FUSION=${FUSION:-1} \
COMPILE=${COMPILE:-1} EVAL=${EVAL:-1} ROOFLINE=${ROOFLINE:-1} MEMORY=${MEMORY:-1})" \
  >> "$R/load.txt"

if on META; then
: > "$R/meta_step.jsonl"
# task_map defaults to outer.make_meta_step's 'auto' (lax.map on CPU).
for args in "--algorithm=maml --K=1" "--algorithm=fomaml --K=1" \
            "--algorithm=maml --K=5" "--algorithm=fomaml --K=5" \
            "--algorithm=maml --K=5 --remat" "--algorithm=reptile --K=5" \
            "--algorithm=maml --K=1 --task_map=vmap" "--algorithm=maml --K=5 --task_map=vmap"; do
  # shellcheck disable=SC2086
  $PY -m benchmarks.meta_step $args --steps="$STEPS" --out="$R/meta_step.jsonl"
done
fi

# Interleaved comparisons (ratios that survive a drifting machine).
if on COMPARE; then
: > "$R/compare.jsonl"
for args in "--K=1 --compare=task_map=vmap,map" "--K=1 --compare=conv_impl=im2col,patches" \
            "--K=5 --compare=algorithm=maml,fomaml"; do
  # shellcheck disable=SC2086
  $PY -m benchmarks.meta_step $args --steps=6 --out="$R/compare.jsonl"
done
fi

# First order against second order at K = 5 in separate processes, alternating
# (maml, fomaml, maml, ...): no in-process interference, and drift falls on both.
if on ALTERNATE; then
: > "$R/alternate.jsonl"
for _ in $(seq "${ROUNDS:-4}"); do
  for alg in maml fomaml; do
    $PY -m benchmarks.meta_step --algorithm=$alg --K=5 --nocount_flops --steps="$STEPS" \
      --out="$R/alternate.jsonl"
  done
done
fi

# XLA's fusion emitters on (XLA's default) and off (metalearn.compiler's fast_compile).
if on FUSION; then
: > "$R/fusion.jsonl"
OPTS="xla_options=xla_cpu_use_fusion_emitters=true,xla_cpu_use_fusion_emitters=false"
for args in "--K=1" "--K=5" "--K=5 --algorithm=fomaml" "--K=5 --algorithm=reptile" \
            "--K=20 --remat" "--K=1 --queries=1"; do
  # shellcheck disable=SC2086
  $PY -m benchmarks.meta_step $args --compare="$OPTS" --steps=12 --out="$R/fusion.jsonl"
done
fi

# Compile time, one process per row: XLA's defaults and fast_compile.
if on COMPILE; then
: > "$R/compile_time.jsonl"
for args in "--K=1" "--K=2" "--K=5" "--K=20 --remat --steps=2" "--K=100 --remat --steps=1" \
            "--K=5 --algorithm=fomaml" "--K=5 --algorithm=reptile"; do
  for fast in --nofast_compile --fast_compile; do
    # shellcheck disable=SC2086
    $PY -m benchmarks.compile_time $args $fast --out="$R/compile_time.jsonl"
  done
done
fi

if on EVAL; then
: > "$R/eval_curve.jsonl"
$PY -m benchmarks.eval_curve --K=10 --batch=32 --steps="$STEPS" --out="$R/eval_curve.jsonl"
fi

if on ROOFLINE; then
: > "$R/roofline.jsonl"
$PY -m benchmarks.roofline --reps=10 --out="$R/roofline.jsonl"
fi

if on MEMORY; then
  $PY -m benchmarks.memory_vs_steps --meta_batch="${MEMORY_META_BATCH:-8}" --results_dir="$R"
fi

snapshot end >> "$R/load.txt"
$PY -m benchmarks.report
