#!/usr/bin/env bash
# Submit a multi-node, multi-GPU sparse_ae run to SLURM: one process per GPU.
#
# Usage: launch/slurm_gpu.sh [--dry-run]
#
# Required environment:
#   CONFIG          e.g. configs/sc_vae.py:dataset=celeb_a
#   WORKDIR         a path every node can write (shared filesystem)
#   TFDS_DATA_DIR   folder holding the array_record TFDS datasets
# Optional:
#   NODES (default 1), GPUS_PER_NODE (default 8), PARTITION, ACCOUNT, TIME (default 24:00:00),
#   VENV            virtual environment to activate on every node (default: ./.venv)
#   EXTRA_FLAGS     more flags for sparse_ae.main
set -euo pipefail

dry_run=0
if [[ "${1:-}" == "--dry-run" ]]; then
  dry_run=1
fi

: "${CONFIG:?set CONFIG, e.g. configs/ctrl_csc.py:dataset=imagenet2012}"
: "${WORKDIR:?set WORKDIR to a folder on a filesystem shared by all nodes}"
: "${TFDS_DATA_DIR:?set TFDS_DATA_DIR to the folder of the TFDS datasets}"
NODES="${NODES:-1}"
GPUS_PER_NODE="${GPUS_PER_NODE:-8}"
TIME="${TIME:-24:00:00}"
repo_root="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${VENV:-$repo_root/.venv}"
EXTRA_FLAGS="${EXTRA_FLAGS:-}"

sbatch_args=(
  --job-name=sparse_ae
  --nodes="$NODES"
  --ntasks-per-node="$GPUS_PER_NODE"
  --gpus-per-task=1
  --cpus-per-task=8
  --time="$TIME"
  --output="$WORKDIR/slurm-%j.out"
)
if [[ -n "${PARTITION:-}" ]]; then sbatch_args+=(--partition="$PARTITION"); fi
if [[ -n "${ACCOUNT:-}" ]]; then sbatch_args+=(--account="$ACCOUNT"); fi

# One task per GPU; jax.distributed.initialize() reads the coordinator address, process count
# and process id from SLURM's environment, so every task runs the same command.
job_script="#!/usr/bin/env bash
set -euo pipefail
source '$VENV/bin/activate'
cd '$repo_root'
export TFDS_DATA_DIR='$TFDS_DATA_DIR'
srun python -m sparse_ae.main --config='$CONFIG' --workdir='$WORKDIR' --distributed $EXTRA_FLAGS"

if (( dry_run )); then
  printf 'sbatch'
  printf ' %q' "${sbatch_args[@]}"
  printf ' <<SCRIPT\n%s\nSCRIPT\n' "$job_script"
else
  mkdir -p "$WORKDIR"
  sbatch "${sbatch_args[@]}" <<<"$job_script"
fi
