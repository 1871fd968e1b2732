#!/usr/bin/env bash
# Cluster study (issue 18): do the universal encoder's voxel embeddings separate what the voxels do? Per world seed x
# model seed, examples/cluster_study.py trains the encoder on subjects 1 and 2 of a simulated world and scores
# clusterings of the embeddings, of the predicted response profiles and of the baselines (the voxels' own response
# profiles, their ridge weights) against the true classes, pRF bins and areas; the oracle clusters the true tuning.
#   WORLD_SEEDS=0,1,2 bash examples/cluster_study.sh
#   WORLD_OPTIONS='--subjects 2 --sessions 4 --trials-per-session 300 --shared 60' ENC_EPOCHS=30 ENC_VPI=300 ...
set -euo pipefail
export HF_HUB_OFFLINE=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} MKL_NUM_THREADS=${MKL_NUM_THREADS:-1}
WORK=${FMRIKIT_CLUSTER_STUDY:-./cluster_study}
mkdir -p "$WORK"
export FMRIKIT_CLUSTER_STUDY=$(cd "$WORK" && pwd)
exec python -m fmrikit.cli.study run --world-seeds "${WORLD_SEEDS:-0}" --model-seeds "${MODEL_SEEDS:-0}" \
  --out "$WORK/runs" -- python "$(dirname "$0")/cluster_study.py"
