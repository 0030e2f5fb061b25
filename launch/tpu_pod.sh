#!/usr/bin/env bash
# Run sparse_ae on a Cloud TPU VM pod slice: create, install, train, follow logs, tear down.
#
# Usage: launch/tpu_pod.sh [--dry-run] {create|install|train|logs|delete|all}
#
# Required environment:
#   TPU_NAME          name of the TPU VM (or of the queued resource's node)
#   ZONE              e.g. us-central2-b
#   CONFIG            e.g. configs/ctrl_csc.py:dataset=imagenet2012
#   WORKDIR           a gs:// path shared by all workers (checkpoints, metrics)
#   TFDS_DATA_DIR     a gs:// path holding the array_record TFDS datasets
# Required for `create` only:
#   ACCELERATOR_TYPE  e.g. v4-32
# Optional:
#   PROJECT           gcloud project (default: gcloud's configured one)
#   RUNTIME_VERSION   TPU VM image (default: tpu-ubuntu2204-base)
#   QUEUED=1          create through a queued resource instead of directly
#   EXTRA_FLAGS       more flags for sparse_ae.main, e.g. "--config.train.num_steps=1000"
set -euo pipefail

dry_run=0
if [[ "${1:-}" == "--dry-run" ]]; then
  dry_run=1
  shift
fi
usage="usage: launch/tpu_pod.sh [--dry-run] create|install|train|logs|delete|all"
action="${1:?$usage}"

: "${TPU_NAME:?set TPU_NAME to the TPU VM name}"
: "${ZONE:?set ZONE, e.g. us-central2-b}"
RUNTIME_VERSION="${RUNTIME_VERSION:-tpu-ubuntu2204-base}"
QUEUED="${QUEUED:-0}"
EXTRA_FLAGS="${EXTRA_FLAGS:-}"
project_flag=()
if [[ -n "${PROJECT:-}" ]]; then
  project_flag=(--project="$PROJECT")
fi
repo_root="$(cd "$(dirname "$0")/.." && pwd)"
remote_dir="sparse_ae"
log_file="sparse_ae_train.log"

run() {
  if (( dry_run )); then
    printf '%q ' "$@"
    printf '\n'
  else
    "$@"
  fi
}

on_all_workers() {
  run gcloud compute tpus tpu-vm ssh "$TPU_NAME" --zone="$ZONE" "${project_flag[@]}" \
    --worker=all --command="$1"
}

create() {
  : "${ACCELERATOR_TYPE:?set ACCELERATOR_TYPE, e.g. v4-32}"
  if [[ "$QUEUED" == "1" ]]; then
    run gcloud compute tpus queued-resources create "${TPU_NAME}-qr" --node-id="$TPU_NAME" \
      --zone="$ZONE" "${project_flag[@]}" --accelerator-type="$ACCELERATOR_TYPE" \
      --runtime-version="$RUNTIME_VERSION"
  else
    run gcloud compute tpus tpu-vm create "$TPU_NAME" --zone="$ZONE" "${project_flag[@]}" \
      --accelerator-type="$ACCELERATOR_TYPE" --version="$RUNTIME_VERSION"
  fi
}

install() {
  local archive
  archive="$(mktemp -d)/sparse_ae.tar.gz"
  run git -C "$repo_root" archive --format=tar.gz --prefix="$remote_dir/" -o "$archive" HEAD
  run gcloud compute tpus tpu-vm scp "$archive" "$TPU_NAME": --zone="$ZONE" "${project_flag[@]}" \
    --worker=all
  on_all_workers "rm -rf $remote_dir && tar xzf sparse_ae.tar.gz && pip install -e '${remote_dir}[tpu]'"
}

train() {
  : "${CONFIG:?set CONFIG, e.g. configs/ctrl_csc.py:dataset=imagenet2012}"
  : "${WORKDIR:?set WORKDIR to a gs:// path shared by all workers}"
  : "${TFDS_DATA_DIR:?set TFDS_DATA_DIR to the gs:// folder of the TFDS datasets}"
  # Every worker runs the same command; JAX finds its peers from the TPU metadata.
  on_all_workers "cd $remote_dir && TFDS_DATA_DIR=$TFDS_DATA_DIR nohup python -m sparse_ae.main \
--config=$CONFIG --workdir=$WORKDIR --distributed $EXTRA_FLAGS > ~/$log_file 2>&1 &"
}

logs() {
  run gcloud compute tpus tpu-vm ssh "$TPU_NAME" --zone="$ZONE" "${project_flag[@]}" \
    --worker=0 --command="tail -n 100 -f ~/$log_file"
}

delete() {
  if [[ "$QUEUED" == "1" ]]; then
    run gcloud compute tpus queued-resources delete "${TPU_NAME}-qr" --zone="$ZONE" \
      "${project_flag[@]}" --force --quiet
  else
    run gcloud compute tpus tpu-vm delete "$TPU_NAME" --zone="$ZONE" "${project_flag[@]}" --quiet
  fi
}

case "$action" in
  create) create ;;
  install) install ;;
  train) train ;;
  logs) logs ;;
  delete) delete ;;
  all) create; install; train; logs ;;
  *) echo "unknown action '$action': expected create, install, train, logs, delete or all" >&2; exit 2 ;;
esac
