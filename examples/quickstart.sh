#!/usr/bin/env bash
# The main job on the embedded default: simulate a 4-subject NSD-format world, then preprocess it.
set -euo pipefail
export HF_HUB_OFFLINE=1
WORK=${FMRIKIT_QUICKSTART:-./quickstart}
export FMRIKIT_ROOT="$WORK/derivatives/fmrikit"

fmrikit simulate --out "$WORK/nsd" --subjects 4 --sessions 4 --format nifti,nifti,hdf5,nifti --overwrite
for subject in 1 2 3 4; do
  fmrikit preprocess --nsd-root "$WORK/nsd" --subject "$subject" --overwrite
done
# the coarse region that data-driven voxel selection starts from
fmrikit preprocess --nsd-root "$WORK/nsd" --subject 1 --roi brainmask --no-flatmap --overwrite

echo
echo "outputs in $FMRIKIT_ROOT:"
find "$FMRIKIT_ROOT" -type f | sort
