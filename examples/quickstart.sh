#!/usr/bin/env bash
# The main job on the embedded default: simulate a 4-subject NSD-format world, preprocess it,
# and score what can be scored so far against the simulation's ground truth.
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

# the annotated ROI (nsdgeneral) against the truly informative voxels: the baseline voxel selection
results=()
for subject in 1 2 3 4; do
  sub=$(printf "sub-%02d" "$subject")
  fmrikit evaluate mask --mask "$FMRIKIT_ROOT/$sub/${sub}_desc-preproc_mask.nii.gz" \
    --reference "$WORK/nsd/truth/$(printf "subj%02d" "$subject")/informative_mask.nii.gz" \
    --out "$WORK/results/nsdgeneral/$sub" --overwrite > /dev/null
  results+=("$WORK/results/nsdgeneral/$sub/results.json")
done

echo
echo "Results (annotated ROI vs ground-truth informative voxels, subjects 1-4):"
fmrikit evaluate --compare "${results[@]}"
echo "flatmaps: $(ls "$FMRIKIT_ROOT"/sub-0*/*noiseceiling.png | tr '\n' ' ')"
