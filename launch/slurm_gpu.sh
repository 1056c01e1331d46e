#!/usr/bin/env bash
# SLURM: one task per node, all GPUs of the node visible to it. jax.distributed
# .initialize() (via --multihost) reads the SLURM environment to find the coordinator,
# and the meta-batch is sharded over every GPU of every node.
#
#   CONFIG=experiments/omniglot.py:20way1shot WORKDIR=/shared/runs/o20w1s \
#     DATA=/shared/data/omniglot sbatch launch/slurm_gpu.sh
#SBATCH --job-name=metalearn
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=1
#SBATCH --gpus-per-node=8
#SBATCH --cpus-per-task=16
#SBATCH --time=24:00:00
#SBATCH --requeue
set -euo pipefail
: "${CONFIG:?config file[:variant]}" "${WORKDIR:?shared workdir}" "${DATA:?dataset path}"
# A requeued or restarted job resumes from the latest checkpoint in WORKDIR.
srun python -m launch.main --multihost --config="$CONFIG" --config.data.path="$DATA" \
    --workdir="$WORKDIR"
