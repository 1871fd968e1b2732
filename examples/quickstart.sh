#!/usr/bin/env bash
# The main job on the embedded default: simulate a 4-subject NSD-format world, preprocess it, pretrain
# the cross-subject decoder on subjects 2-4, select subject 1's voxels with TROI from one session,
# score the voxel selections and the decoders against the simulation's ground truth, then train the
# universal encoder on all four subjects and cluster its voxel embeddings into a functional map;
# reconstruct the images subject 1 saw in a raw NSD session file (embedded autoencoder + ridge latent mapper);
# NeuroPictor's calibrated encoding (every trial as a cortical flatmap, one flatmap autoencoder for all
# subjects); last, one HTML report of all of it. Each step's wall and CPU seconds are printed at the end.
#
# Speed: the models are tiny, so each process runs on one thread (OMP_NUM_THREADS=1 unless set: threads would
# only wait on each other) and two independent chains run at once, decoding + NeuroPictor in the foreground and
# reconstruction + encoding in the background (its output is shown when it ends). QUICKSTART_LANES=1 runs
# everything in order.
set -euo pipefail
export HF_HUB_OFFLINE=1
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
LANES=${QUICKSTART_LANES:-2}
WORK=${FMRIKIT_QUICKSTART:-./quickstart}
export FMRIKIT_ROOT="$WORK/derivatives/fmrikit"
RESULTS="$WORK/results"
mkdir -p "$WORK"
TIMES="$WORK/step_seconds.tsv"
: > "$TIMES"
trap 'kill $(jobs -p) 2> /dev/null || true' EXIT

cpu_seconds() {  # CPU=user + system seconds of this shell's finished children (in this shell: not in $(...))
  local file="$WORK/.times.$BASHPID"
  times > "$file"
  CPU=$(awk 'NR == 2 {split($1, u, /[ms]/); split($2, s, /[ms]/); print u[1] * 60 + u[2] + s[1] * 60 + s[2]}' "$file")
  rm "$file"
}

step() {  # step NAME COMMAND...: run it, note its wall and CPU seconds in $TIMES
  local name=$1 t0 t1 c0 c1
  shift
  t0=$(date +%s.%N)
  cpu_seconds
  c0=$CPU
  "$@"
  t1=$(date +%s.%N)
  cpu_seconds
  c1=$CPU
  awk -v n="$name" -v t0="$t0" -v t1="$t1" -v c0="$c0" -v c1="$c1" \
    'BEGIN {printf "%s\t%.1f\t%.1f\n", n, t1 - t0, c1 - c0}' >> "$TIMES"
}

together() {  # together A B: run functions A (output kept, shown when it ends) and B at once, or in order
  if [ "$LANES" -lt 2 ]; then
    "$1"
    "$2"
    return
  fi
  local log="$WORK/logs/$1.log" pid status=0
  mkdir -p "$WORK/logs"
  "$1" > "$log" 2>&1 &
  pid=$!
  "$2"
  wait "$pid" || status=$?
  cat "$log"
  return "$status"
}

step "simulate" fmrikit simulate --out "$WORK/nsd" --subjects 4 --sessions 4 --format nifti,nifti,hdf5,nifti \
  --overwrite
preprocess_12() {
  for subject in 1 2; do
    fmrikit preprocess --nsd-root "$WORK/nsd" --subject "$subject" --overwrite
  done
  # the coarse region that data-driven voxel selection starts from
  fmrikit preprocess --nsd-root "$WORK/nsd" --subject 1 --roi brainmask --no-flatmap --overwrite
}
preprocess_34() {
  for subject in 3 4; do
    fmrikit preprocess --nsd-root "$WORK/nsd" --subject "$subject" --overwrite
  done
}
step "preprocess (5 datasets)" together preprocess_34 preprocess_12

# the annotated ROI (nsdgeneral) against the truly informative voxels: the baseline voxel selection
evaluate_roi() {
  local sub
  sub=$(printf "sub-%02d" "$1")
  fmrikit evaluate mask --mask "$FMRIKIT_ROOT/$sub/${sub}_desc-preproc_mask.nii.gz" \
    --reference "$WORK/nsd/truth/$(printf "subj%02d" "$1")/informative_mask.nii.gz" \
    --out "$RESULTS/nsdgeneral/$sub" --overwrite > /dev/null
}
evaluate_rois_12() { evaluate_roi 1; evaluate_roi 2; }
evaluate_rois_34() { evaluate_roi 3; evaluate_roi 4; }
step "evaluate mask (annotated ROIs)" together evaluate_rois_34 evaluate_rois_12
results=()
for subject in 1 2 3 4; do results+=("$RESULTS/nsdgeneral/$(printf "sub-%02d" "$subject")/results.json"); done

# Two chains at once. In the foreground: the cross-subject decoder (ImageNet EfficientNet-Lite0 image embeddings;
# the encoder's patch features come from the same pass and wait in the feature cache), TROI on subject 1's first
# session, then NeuroPictor's calibrated encoding: each subject's trials as cortical flatmaps (cached beside the
# dataset), one flatmap autoencoder shared by the four subjects, scored on their held-out shared images against
# the mean training flatmap (the diffusion stages need Stable Diffusion 2.1 weights: examples/neuropictor.sh).
decoding() {
  step "pretrain decoder" fmrikit pretrain decoder --subjects 2,3,4 --features effnet-lite0 --overwrite
  step "roi-train" fmrikit roi-train --subject 1 --sessions 1 --budget 4000 --overwrite
  step "evaluate mask (TROI)" fmrikit evaluate mask --mask "$FMRIKIT_ROOT/sub-01/sub-01_desc-troi_mask.nii.gz" \
    --reference "$WORK/nsd/truth/subj01/informative_mask.nii.gz" --out "$RESULTS/troi/sub-01" --overwrite > /dev/null
  echo
  # 20 epochs keep the demo short; the library's default (up to 60) is the flatmap-AE study's
  step "pretrain flatmap-ae" fmrikit pretrain flatmap-ae --subjects 1,2,3,4 --preset small --epochs 20 --overwrite
}
# In the background: reconstruction on the embedded default (the image autoencoder, subject 1's ridge latent
# mapper, the best of the four in examples/recon_mappers.sh, trained on sessions 2-4, then images from the raw
# betas file of session 1 and from the held-out shared images), then the universal encoder on all subjects
# (EfficientNet-Lite0 patch features), its functional clusters and its voxel-wise r on subject 1's shared images.
reconstruction_and_encoding() {
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
  echo
  # sized for a short demo (E = 64, 10 epochs at 3e-3); the library's defaults are the encoder study's (E = 256)
  step "pretrain encoder" fmrikit pretrain encoder --subjects 1,2,3,4 --features effnet-lite0 --embed-dim 64 \
    --epochs 10 --lr 3e-3 --overwrite
  step "cluster-embeddings" fmrikit cluster-embeddings --k 20 --subjects 1,2 --max-images 120 --overwrite
  # its predictions for subject 1's held-out shared images, scored voxel by voxel (the r map of the report)
  step "encode (shared)" fmrikit encode --subject 1 --shared --max-flatmaps 2 --overwrite
  step "evaluate encoding" fmrikit evaluate encoding \
    --pred "$FMRIKIT_ROOT/sub-01/sub-01_encode-shared/sub-01_pred.h5" --subject 1 --out "$RESULTS/encoding/sub-01" \
    --overwrite > /dev/null
}
together reconstruction_and_encoding decoding

echo
echo "Voxel selections against the ground-truth informative voxels: the annotated ROI (nsdgeneral) of sub-01 to"
echo "sub-04, and the TROI mask of sub-01 (one session):"
fmrikit evaluate --compare "${results[@]}" "$RESULTS/troi/sub-01/results.json"

echo
step "report" fmrikit report --results "$RESULTS"

echo
echo "seconds per step (wall, CPU; the background chain's steps ran alongside the others):"
awk -F '\t' '{printf "  %-34s %8s %8s\n", $1, $2, $3}' "$TIMES"
printf "  %-34s %8s\n" "total (wall)" "$SECONDS"
