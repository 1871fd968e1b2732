#!/usr/bin/env bash
# NeuroPictor on the simulated world, every stage from the CLI: each trial's betas as a cortical flatmap; the
# flatmap autoencoder (calibrated encoding), scored against the mean training flatmap on held-out images;
# cross-subject pretraining on subjects 2-4; refining on subject 1; reconstructions of subject 1's held-out
# shared images at control scales 0, 0.5 and 1; a semantics swap (Fig. 2); the protocol metrics.
#
# SD21=<diffusers folder or cached id of Stable Diffusion 2.1(-base)> uses real weights (never downloaded; on a
# GPU). Without it the script builds a tiny Stable Diffusion 2.1-shaped pipeline with random weights from config
# (16-px images): that checks the whole chain runs, but its images are noise and its metrics sit at chance.
# AE_PRESET=paper trains the paper's 24 x 1024 flatmap autoencoder on 256-px flatmaps (a GPU model).
set -euo pipefail
export HF_HUB_OFFLINE=1
REPO=$(cd "$(dirname "$0")/.." && pwd)
WORK=${FMRIKIT_NEUROPICTOR:-./neuropictor_study}
export FMRIKIT_ROOT="$WORK/derivatives/fmrikit"
NSD="$WORK/nsd"
BRICK="$NSD/nsddata_stimuli/stimuli/nsd/nsd_stimuli.hdf5"

fmrikit simulate --out "$NSD" --subjects 4 --sessions 4 --overwrite
for subject in 1 2 3 4; do
  fmrikit preprocess --nsd-root "$NSD" --subject "$subject" --no-flatmap --overwrite
done

# calibrated encoding on all four subjects' training trials (their shared images are the test set)
fmrikit pretrain --model flatmap-ae --subjects 1,2,3,4 --preset "${AE_PRESET:-small}" --overwrite

if [ -z "${SD21:-}" ]; then
  SD21="$WORK/tiny-sd21"
  echo "SD21 not set: building a tiny Stable Diffusion 2.1-shaped pipeline with random weights in $SD21"
  PYTHONPATH="$REPO" python -c "import sys; from tests.pipelines.tiny_diffusion import save_tiny_sd21; \
save_tiny_sd21(sys.argv[1])" "$SD21"
fi

# cross-subject pretraining, then single-subject refining (paper: AdamW 1e-4, lambda 0.1, 5% unconditional)
fmrikit pretrain --model neuropictor --subjects 2,3,4 --pipeline "$SD21" --epochs "${EPOCHS:-10}" --overwrite
fmrikit adapt-subject --model neuropictor --subject 1 --epochs "${EPOCHS:-10}" --overwrite

results=()
for scale in 0 0.5 1; do
  out="$WORK/recon/control-$scale"
  fmrikit reconstruct --subject 1 --method neuropictor --trials shared --control-scale "$scale" --out "$out" \
    --overwrite
  fmrikit evaluate recon --pred "$out/images" --truth "$BRICK" --out "$WORK/results/control-$scale" \
    --overwrite > /dev/null
  results+=("$WORK/results/control-$scale/results.json")
done
# the semantics of trial 8 on the structure of trials 0-7
fmrikit reconstruct --subject 1 --method neuropictor --trials 0-7 --high-level-from 8 --out "$WORK/recon/swap" \
  --overwrite

echo
echo "Subject 1's held-out shared images at control scales 0, 0.5 and 1:"
fmrikit evaluate --compare "${results[@]}"
echo "contact sheets: $(ls "$WORK"/recon/*/contact_sheet.png | tr '\n' ' ')"
