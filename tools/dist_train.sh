#!/usr/bin/env bash
# Data-parallel training on NGPUS processes of this host (BIDL's tools/dist_train.sh):
#   tools/dist_train.sh CONFIG NGPUS [more tools/train.py arguments]
# The backend comes from the config's dist_params=dict(backend='nccl' | 'gloo').
set -euo pipefail
CONFIG=$1
NGPUS=$2
shift 2
PORT=${PORT:-29500}
exec torchrun --nproc_per_node="$NGPUS" --master_port="$PORT" \
    "$(dirname "$0")/train.py" --config "$CONFIG" --launcher pytorch "$@"
