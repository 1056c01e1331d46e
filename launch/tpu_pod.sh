#!/usr/bin/env bash
# Runs one config on every host of a Cloud TPU VM pod slice. Each host runs the same
# command; --multihost makes jax.distributed.initialize() find the others from the TPU
# metadata, and the meta-batch is sharded over all chips of the slice.
#
#   TPU=my-v4-32 ZONE=us-central2-b CONFIG=experiments/omniglot.py:5way1shot \
#     WORKDIR=gs://my-bucket/omniglot_5w1s DATA=/mnt/data/omniglot bash launch/tpu_pod.sh
set -euo pipefail
: "${TPU:?name of the TPU VM}" "${ZONE:?its zone}" "${CONFIG:?config file[:variant]}"
: "${WORKDIR:?a path every host can write (e.g. gs://...)}" "${DATA:?dataset path on each host}"
REPO_URL=${REPO_URL:-}  # Optional: where hosts clone the code from.

gcloud compute tpus tpu-vm ssh "$TPU" --zone="$ZONE" --worker=all --command="
  set -e
  cd ~/metalearn 2>/dev/null || { git clone $REPO_URL ~/metalearn && cd ~/metalearn; }
  python3 -m pip install -q -e . 'jax[tpu]' -f https://storage.googleapis.com/jax-releases/libtpu_releases.html
  python3 -m launch.main --multihost --config=$CONFIG --config.data.path=$DATA \
      --workdir=$WORKDIR
"
