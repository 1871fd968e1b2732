#!/usr/bin/env bash
# The main job on the embedded default: simulate a 4-subject NSD-format world, preprocess it, pretrain
# the cross-subject decoder on subjects 2-4, select subject 1's voxels with TROI from one session,
# score the voxel selections and the decoders against the simulation's ground truth, then train the
# universal encoder on all four subjects and cluster its voxel embeddings into a functional map; last,
# reconstruct the images subject 1 saw in a raw NSD session file (embedded autoencoder + ridge latent mapper);
# last, NeuroPictor's calibrated encoding: every trial as a cortical flatmap, one flatmap autoencoder for all
# subjects.
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

# cross-subject decoder (ImageNet EfficientNet-Lite0 image embeddings), then TROI on subject 1's first session
fmrikit pretrain --subjects 2,3,4 --features effnet-lite0 --overwrite
fmrikit roi-train --subject 1 --sessions 1 --budget 4000 --overwrite
fmrikit evaluate mask --mask "$FMRIKIT_ROOT/sub-01/sub-01_desc-troi_mask.nii.gz" \
  --reference "$WORK/nsd/truth/subj01/informative_mask.nii.gz" --out "$WORK/results/troi/sub-01" --overwrite > /dev/null

echo
echo "Results (annotated ROI, sub-01 to sub-04, and the TROI mask of sub-01 vs ground-truth informative voxels):"
fmrikit evaluate --compare "${results[@]}" "$WORK/results/troi/sub-01/results.json"
echo "flatmaps: $(ls "$FMRIKIT_ROOT"/sub-0*/*noiseceiling.png "$FMRIKIT_ROOT"/sub-01/*troi*.png | tr '\n' ' ')"

# universal encoder on all subjects (EfficientNet-Lite0 patch features), then its functional clusters
echo
fmrikit pretrain --model encoder --subjects 1,2,3,4 --features effnet-lite0 --epochs 10 --lr 3e-3 \
  --voxels-per-image 2000 --overwrite
fmrikit cluster-embeddings --k 20 --subjects 1,2 --max-images 120 --overwrite
echo "cluster flatmaps: $(ls "$FMRIKIT_ROOT"/clusters/kmeans-k20/sub-0*_desc-clusters.png | tr '\n' ' ')"

# reconstruction on the embedded default: the image autoencoder, subject 1's ridge latent mapper (the best of
# the four in examples/recon_mappers.sh) trained on sessions 2-4, then images from the raw betas file of
# session 1 and from the held-out shared images
echo
fmrikit pretrain --model autoencoder --subjects 1,2 --epochs 8 --overwrite
fmrikit pretrain --model latent-mapper --subject 1 --mapper ridge --sessions 2-4 --overwrite
fmrikit reconstruct "$WORK/nsd/nsddata_betas/ppdata/subj01/func1pt8mm/betas_fithrf_GLMdenoise_RR/betas_session01.nii.gz" \
  --subject 1 --overwrite
fmrikit reconstruct --subject 1 --trials shared --mapper ridge --overwrite
fmrikit evaluate recon --pred "$FMRIKIT_ROOT/sub-01/sub-01_recon-latent-ridge_trials-shared/images" \
  --truth "$WORK/nsd/nsddata_stimuli/stimuli/nsd/nsd_stimuli.hdf5" --out "$WORK/results/recon/sub-01" --overwrite
echo "contact sheets: $(ls "$FMRIKIT_ROOT"/sub-01/sub-01_recon-*/contact_sheet.png | tr '\n' ' ')"

# NeuroPictor's calibrated encoding: each subject's trials as cortical flatmaps (cached beside the dataset), one
# flatmap autoencoder shared by the four subjects, scored on their held-out shared images against the mean
# training flatmap (the diffusion stages need Stable Diffusion 2.1 weights: examples/neuropictor.sh)
echo
fmrikit pretrain --model flatmap-ae --subjects 1,2,3,4 --preset small --overwrite
