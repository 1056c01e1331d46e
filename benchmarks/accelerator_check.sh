#!/usr/bin/env bash
# The GPU/TPU check: one script, meant to take under 8 minutes on one accelerator.
#
#   bash benchmarks/accelerator_check.sh [OUT.json]   # default benchmarks/results/accelerator_check.json
#
#  1. prints the devices JAX sees;
#  2. runs the tests that exercise the device code paths (inner loop, meta-step, models
#     and their convolution formulations, sharding, FLOP counting, evaluation);
#  3. times the reference workload (benchmarks/meta_step.py: Omniglot conv net, 5-way
#     1-shot, 15 queries, meta-batch 32) for second-order MAML K = 1 and 5 and
#     first-order K = 5, with XLA's native convolution and with im2col;
#  4. times 200 steps of Omniglot 5-way 1-shot second-order MAML training on the real
#     data (../shared/data/omniglot, or DATA=...) and projects the paper's 60,000;
#  5. writes every figure to one JSON file.
# Without an accelerator it runs on the CPU, says so, and shortens steps 3 and 4 (3 timed
# meta-steps, 20 training steps) so that it still ends in minutes: those figures are a
# wiring check, not the CPU's benchmark (benchmarks/run_all.sh is that).
# Env: PYTHON (default python), DATA (Omniglot folder), TRAIN_STEPS, META_STEPS.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
OUT=${1:-benchmarks/results/accelerator_check.json}
DATA=${DATA:-../shared/data/omniglot}
TMP=$(mktemp -d)
START=$(date +%s)
say() { echo "== $(date -u +%FT%TZ) $*"; }

say "1. devices"
BACKEND=$($PY -c "import jax; print(jax.default_backend())")
$PY -c "import jax; print(jax.devices())" | tee "$TMP/devices.txt"
if [ "$BACKEND" = cpu ]; then
  say "NO ACCELERATOR: JAX's backend is the CPU. Running the CPU fallback (short timings: a wiring check, not a benchmark)."
  FALLBACK=1; META_STEPS=${META_STEPS:-3}; TRAIN_STEPS=${TRAIN_STEPS:-20}
else
  FALLBACK=0; META_STEPS=${META_STEPS:-20}; TRAIN_STEPS=${TRAIN_STEPS:-200}
fi

say "2. tests of the device code paths"
set +e
$PY -m pytest -q -o addopts="" -p no:cacheprovider tests/inner_test.py tests/outer_test.py \
  tests/models_test.py tests/sharding_test.py tests/flops_test.py tests/algorithms_test.py \
  2>&1 | tee "$TMP/tests.txt"
TESTS_RC=${PIPESTATUS[0]}
set -e

say "3. reference workload, native convolution and im2col"
for impl in xla im2col; do
  for args in "--algorithm=maml --K=1" "--algorithm=maml --K=5" "--algorithm=fomaml --K=5"; do
    # shellcheck disable=SC2086
    $PY -m benchmarks.meta_step $args --conv_impl=$impl --steps="$META_STEPS" \
      --count_flops=false --out="$TMP/meta_step.jsonl" > /dev/null
    tail -n1 "$TMP/meta_step.jsonl" | $PY -c "import json,sys; r=json.load(sys.stdin); \
print(f\"{r['settings']['algorithm']} K={r['settings']['K']} {r['settings']['conv_impl']}: \
{r['median_s']*1e3:.1f} ms/step ({r['meta_steps_per_s']:.2f} steps/s)\")"
  done
done

say "4. Omniglot 5-way 1-shot second-order MAML, $TRAIN_STEPS training steps on the real data"
if [ -d "$DATA" ]; then
  $PY -m benchmarks.train_steps --config=experiments/omniglot.py:5way1shot \
    --config.data.path="$DATA" --steps="$TRAIN_STEPS" --project=60000 \
    --out="$TMP/train_steps.jsonl" > /dev/null
  tail -n1 "$TMP/train_steps.jsonl" | $PY -c "import json,sys; r=json.load(sys.stdin); \
print(f\"{r['meta_steps_per_s']:.2f} meta-steps/s: 60,000 in {r['projected_hours']:.2f} h \
(goal: under 1 h, >= 17 steps/s)\")"
else
  say "no Omniglot data at $DATA (set DATA=...): step 4 skipped"
fi

say "5. $OUT"
mkdir -p "$(dirname "$OUT")"
$PY - "$TMP" "$OUT" "$FALLBACK" "$TESTS_RC" "$START" <<'EOF'
import json, os, sys, time
tmp, out, fallback, tests_rc, start = sys.argv[1:]
def rows(name):
  path = os.path.join(tmp, name)
  return [json.loads(l) for l in open(path)] if os.path.exists(path) else []
tests = open(os.path.join(tmp, "tests.txt")).read().strip().splitlines()
summary = {
    "what": "benchmarks/accelerator_check.sh",
    "cpu_fallback": fallback == "1",
    "devices": open(os.path.join(tmp, "devices.txt")).read().strip(),
    "tests": {"exit_code": int(tests_rc), "summary": tests[-1] if tests else ""},
    "meta_step": [{"algorithm": r["settings"]["algorithm"], "K": r["settings"]["K"],
                   "conv_impl": r["settings"]["conv_impl"], "median_s": r["median_s"],
                   "min_s": r["min_s"], "max_s": r["max_s"],
                   "meta_steps_per_s": r["meta_steps_per_s"], "compile_s": r["compile_s"],
                   **{k: r[k] for k in ("peak_rss_bytes", "device_peak_bytes") if k in r}}
                  for r in rows("meta_step.jsonl")],
    "train_steps": rows("train_steps.jsonl"),
    "environment": {k: v for k, v in (rows("meta_step.jsonl") or [{}])[0].items()
                    if k in ("jax", "backend", "device", "cpus", "cpu_model", "host",
                             "python", "xla_flags", "date")},
    "wall_s": round(time.time() - int(start), 1),
}
with open(out, "w") as f:
  json.dump(summary, f, indent=1)
print(json.dumps({k: summary[k] for k in ("cpu_fallback", "tests", "wall_s")}))
EOF
rm -rf "$TMP"
exit "$TESTS_RC"
