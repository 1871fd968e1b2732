#!/usr/bin/env bash
# The main job on the embedded default: simulate a 4-subject NSD-format world, preprocess it, pretrain
# the cross-subject decoder on subjects 2-4, select subject 1's voxels with TROI from one session,
# score the voxel selections and the decoders against the simulation's ground truth, then train the
# universal encoder on all four subjects and cluster its voxel embeddings into a functional map;
# reconstruct the images subject 1 saw in a raw NSD session file (embedded autoencoder + ridge latent mapper);
# NeuroPictor's calibrated encoding (every trial as a cortical flatmap, one flatmap autoencoder for all
# subjects); last, one HTML report of all of it. Each step's seconds are printed at the end.
set -euo pipefail
export HF_HUB_OFFLINE=1
WORK=${FMRIKIT_QUICKSTART:-./quickstart}
export FMRIKIT_ROOT="$WORK/derivatives/fmrikit"
RESULTS="$WORK/results"
STEPS=()

step() {  # step NAME COMMAND...: run it, note its wall seconds
  local name=$1 t0 t1
  shift
  t0=$(date +%s.%N)
  "$@"
  t1=$(date +%s.%N)
  STEPS+=("$name|$(python3 -c "print(f'{$t1 - $t0:.1f}')")")
}

step "simulate" fmrikit simulate --out "$WORK/nsd" --subjects 4 --sessions 4 --format nifti,nifti,hdf5,nifti \
  --overwrite
preprocess_all() {
  for subject in 1 2 3 4; do
    fmrikit preprocess --nsd-root "$WORK/nsd" --subject "$subject" --overwrite
  done
  # the coarse region that data-driven voxel selection starts from
  fmrikit preprocess --nsd-root "$WORK/nsd" --subject 1 --roi brainmask --no-flatmap --overwrite
}
step "preprocess (5 datasets)" preprocess_all

# the annotated ROI (nsdgeneral) against the truly informative voxels: the baseline voxel selection
results=()
evaluate_rois() {
  for subject in 1 2 3 4; do
    sub=$(printf "sub-%02d" "$subject")
    fmrikit evaluate mask --mask "$FMRIKIT_ROOT/$sub/${sub}_desc-preproc_mask.nii.gz" \
      --reference "$WORK/nsd/truth/$(printf "subj%02d" "$subject")/informative_mask.nii.gz" \
      --out "$RESULTS/nsdgeneral/$sub" --overwrite > /dev/null
  done
}
step "evaluate mask (annotated ROIs)" evaluate_rois
for subject in 1 2 3 4; do results+=("$RESULTS/nsdgeneral/$(printf "sub-%02d" "$subject")/results.json"); done

# cross-subject decoder (ImageNet EfficientNet-Lite0 image embeddings), then TROI on subject 1's first session
step "pretrain decoder" fmrikit pretrain decoder --subjects 2,3,4 --features effnet-lite0 --overwrite
step "roi-train" fmrikit roi-train --subject 1 --sessions 1 --budget 4000 --overwrite
step "evaluate mask (TROI)" fmrikit evaluate mask --mask "$FMRIKIT_ROOT/sub-01/sub-01_desc-troi_mask.nii.gz" \
  --reference "$WORK/nsd/truth/subj01/informative_mask.nii.gz" --out "$RESULTS/troi/sub-01" --overwrite > /dev/null

echo
echo "Voxel selections against the ground-truth informative voxels: the annotated ROI (nsdgeneral) of sub-01 to"
echo "sub-04, and the TROI mask of sub-01 (one session):"
fmrikit evaluate --compare "${results[@]}" "$RESULTS/troi/sub-01/results.json"

# universal encoder on all subjects (EfficientNet-Lite0 patch features), then its functional clusters
echo
step "pretrain encoder" fmrikit pretrain encoder --subjects 1,2,3,4 --features effnet-lite0 --epochs 10 \
  --lr 3e-3 --voxels-per-image 2000 --overwrite
step "cluster-embeddings" fmrikit cluster-embeddings --k 20 --subjects 1,2 --max-images 120 --overwrite
# its predictions for subject 1's held-out shared images, scored voxel by voxel (the r map of the report)
step "encode (shared)" fmrikit encode --subject 1 --shared --max-flatmaps 2 --overwrite
step "evaluate encoding" fmrikit evaluate encoding --pred "$FMRIKIT_ROOT/sub-01/sub-01_encode-shared/sub-01_pred.h5" \
  --subject 1 --out "$RESULTS/encoding/sub-01" --overwrite > /dev/null

# reconstruction on the embedded default: the image autoencoder, subject 1's ridge latent mapper (the best of
# the four in examples/recon_mappers.sh) trained on sessions 2-4, then images from the raw betas file of
# session 1 and from the held-out shared images
echo
step "pretrain autoencoder" fmrikit pretrain autoencoder --subjects 1,2 --epochs 8 --overwrite
step "pretrain latent-mapper" fmrikit pretrain latent-mapper --subject 1 --mapper ridge --sessions 2-4 --overwrite
step "reconstruct (session file)" fmrikit reconstruct \
  "$WORK/nsd/nsddata_betas/ppdata/subj01/func1pt8mm/betas_fithrf_GLMdenoise_RR/betas_session01.nii.gz" \
  --subject 1 --overwrite
step "reconstruct (shared)" fmrikit reconstruct --subject 1 --trials shared --mapper ridge --overwrite
step "evaluate recon" fmrikit evaluate recon \
  --pred "$FMRIKIT_ROOT/sub-01/sub-01_recon-latent-ridge_trials-shared/images" \
  --truth "$WORK/nsd/nsddata_stimuli/stimuli/nsd/nsd_stimuli.hdf5" --out "$RESULTS/recon/sub-01" --overwrite

# NeuroPictor's calibrated encoding: each subject's trials as cortical flatmaps (cached beside the dataset), one
# flatmap autoencoder shared by the four subjects, scored on their held-out shared images against the mean
# training flatmap (the diffusion stages need Stable Diffusion 2.1 weights: examples/neuropictor.sh)
echo
step "pretrain flatmap-ae" fmrikit pretrain flatmap-ae --subjects 1,2,3,4 --preset small --overwrite

echo
step "report" fmrikit report --results "$RESULTS"

echo
echo "seconds per step:"
total=0
for entry in "${STEPS[@]}"; do
  printf "  %-34s %8s\n" "${entry%%|*}" "${entry##*|}"
  total=$(python3 -c "print(f'{$total + ${entry##*|}:.1f}')")
done
printf "  %-34s %8s\n" "total" "$total"
