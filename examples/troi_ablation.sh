#!/usr/bin/env bash
# TROI on ground truth (Lin et al. 2025, Tables 1-2 shape): a held-out subject with one session of training data,
# the voxel budget set to the true number of informative voxels, against the annotated ROI (backbone frozen, and the
# whole model fine-tuned as MindEye2 publishes it) and the paper's ablations, with the oracle rows: the true
# informative voxels as the mask, and the same on the world's noise-free twin (the retrieval ceiling). Retrieval is
# among the world's shared images (300 by default, as published). Each run is one world seed x one model seed; the
# seed helper (python -m fmrikit.cli.study) runs them all and prints one table: mean +- sd, n, and the
# differences that exceed 2 standard errors.
#
# Per world (simulated once, shared by its runs): both trees, their preprocessed datasets and one decoder pretrained
# on subjects 2-4 of the noisy tree (seed = the world seed). Per run (model seed): every new-subject arm.
# "Without pretraining" is like for like with "TROI, whole model trained": both train every part of the decoder in
# both stages, with the same stage-1 and stage-2 settings, targets and sizes; only the shared parts' initial
# weights differ (pretrained vs freshly initialised).
#   bash examples/troi_ablation.sh                                   (one world, one model seed)
#   WORLD_SEEDS=0 MODEL_SEEDS=0,1,2 bash examples/troi_ablation.sh   (the study of the report)
#   PRETRAIN_OPTIONS='--epochs 30' ...  (the shared backbone's pretraining; last stop's study used 30 epochs)
#   EPOCHS=30 ...  (new-subject training epochs: TROI's stage 2 and the adapt-subject arms; 15 by default for CPU time)
#   VARIANTS='troi troiFT troiNoPT annotated oracleMask' ...  (a subset of the arms; the noise-free ceiling always runs)
#   WORLD_OPTIONS='--subjects 4 --sessions 2,4,4,4 --trials-per-session 750 --shared 300' ...  (the world)
set -euo pipefail
export HF_HUB_OFFLINE=1
WORK=${FMRIKIT_ABLATION:-./troi_ablation}
if [ -z "${STUDY_RUN_DIR:-}" ]; then
  mkdir -p "$WORK"
  exec python -m fmrikit.cli.study run --world-seeds "${WORLD_SEEDS:-0}" --model-seeds "${MODEL_SEEDS:-0}" \
    --out "$WORK/runs" -- bash "$0"
fi

WORLD="$(cd "$WORK" && pwd)/worlds/seed-$WORLD_SEED"
read -ra SIZE <<< "${WORLD_OPTIONS:---subjects 4 --sessions 2,4,4,4 --trials-per-session 750 --shared 300}"
read -ra PRETRAIN <<< "${PRETRAIN_OPTIONS:-}"  # default: the library's (3 epochs: the backbone that transfers best)
SIM=("${SIZE[@]}" --seed "$WORLD_SEED" --overwrite)
truth="$WORLD/nsd/truth/subj01/informative_mask.nii.gz"

# the world: both trees, preprocessed once; the decoder pretrained once on the noisy tree
world() {  # tree name, subjects to preprocess, simulate options
  local tree=$1 subjects=$2; shift 2
  [ -f "$WORLD/$tree/fmrikit_simulation.json" ] || fmrikit simulate --out "$WORLD/$tree" "${SIM[@]}" "$@"
  [ -f "$WORLD/$tree-project/.done" ] && return
  export FMRIKIT_ROOT="$WORLD/$tree-project"
  for subject in $subjects; do
    fmrikit preprocess --nsd-root "$WORLD/$tree" --subject "$subject" --no-flatmap --overwrite > /dev/null
  done
  fmrikit preprocess --nsd-root "$WORLD/$tree" --subject 1 --roi brainmask --no-flatmap --overwrite > /dev/null
  touch "$FMRIKIT_ROOT/.done"
}
world nsd "1 2 3 4"
world nsd-free 1 --noise-free
export FMRIKIT_ROOT="$WORLD/nsd-project"
backbone="$WORLD/decoder"
[ -f "$backbone/config.json" ] || fmrikit pretrain --subjects 2,3,4 --out "$backbone" --seed "$WORLD_SEED" \
  "${PRETRAIN[@]}" --overwrite > /dev/null
budget=$(python -c "import nibabel as n; print(int((n.load('$truth').get_fdata() > 0).sum()))")
echo "held-out subject 1: session 1 only; budget = true informative voxels = $budget"

# a run's project: the world's preprocessed subject 1 and feature cache, linked; its own outputs
project() {  # tree name -> prints the project folder
  local p="$STUDY_RUN_DIR/$1" src="$WORLD/$1-project"
  mkdir -p "$p/sub-01"
  if [ -d "$src/features" ]; then ln -sfn "$src/features" "$p/features"; else mkdir -p "$p/features"; fi
  cp -n "$src/dataset_description.json" "$p/" 2>/dev/null || true
  for f in "$src"/sub-01/sub-01_*desc-preproc_*; do ln -sf "$f" "$p/sub-01/"; done
  echo "$p"
}
one=(--subject 1 --sessions 1 --seed "$SEED" --backbone "$backbone" --epochs "${EPOCHS:-15}" --overwrite)
troi=("${one[@]}" --budget "$budget" --truth-mask "$truth" --no-flatmap ${TROI_OPTIONS:-})
export FMRIKIT_ROOT; FMRIKIT_ROOT=$(project nsd)
for variant in ${VARIANTS:-troi troiFT troiNoPT troiNoLPF troiNoLRR annotated annotatedFT oracleMask}; do
  case $variant in
    troi) fmrikit roi-train "${troi[@]}" --desc troi ;;
    troiFT) fmrikit roi-train "${troi[@]}" --unfreeze-backbone --desc troiFT ;;
    troiNoPT) fmrikit roi-train "${troi[@]}" --no-pretrained --desc troiNoPT ;;
    troiNoLPF) fmrikit roi-train "${troi[@]}" --no-lowpass --desc troiNoLPF ;;
    troiNoLRR) fmrikit roi-train "${troi[@]}" --no-rewind --desc troiNoLRR ;;
    annotated) fmrikit adapt-subject "${one[@]}" --roi nsdgeneral --desc annotated ;;
    annotatedFT) fmrikit adapt-subject "${one[@]}" --roi nsdgeneral --unfreeze-backbone --desc annotatedFT ;;
    oracleMask) fmrikit adapt-subject "${one[@]}" --mask "$truth" --desc oracleMask ;;
  esac > /dev/null
done
noisy=$FMRIKIT_ROOT
# the retrieval ceiling: the same backbone and training on subject 1's noise-free responses of the informative voxels
# (on the noise-free tree only they vary: preprocessing drops the others as constant, so there is nothing to select)
FMRIKIT_ROOT=$(project nsd-free)
fmrikit adapt-subject "${one[@]}" --roi brainmask --desc oracleFree > /dev/null

python - "$STUDY_RUN_DIR" "$STUDY_ROWS" "$noisy" "$FMRIKIT_ROOT" "$truth" <<'PY'
import json, sys
from pathlib import Path

import nibabel as nib
import numpy as np

from fmrikit.analysis.study import Row, write_rows

run, rows_path, noisy, free, truth = sys.argv[1], sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]), sys.argv[5]
informative = nib.load(truth).get_fdata() > 0
budget = int(informative.sum())
annotated_mask = noisy / "sub-01/sub-01_desc-preproc_mask.nii.gz"
rows = []
for label, root, desc, mask, oracle, versus in [
        ("TROI (pretrained, backbone frozen)", noisy, "troi", "troi", False, None),
        ("TROI, whole model trained", noisy, "troiFT", "troiFT", False, None),
        ("TROI w/o pretraining (whole model trained)", noisy, "troiNoPT", "troiNoPT", False,
         "TROI, whole model trained"),
        ("TROI w/o low-pass", noisy, "troiNoLPF", "troiNoLPF", False, None),
        ("TROI w/o rewinding", noisy, "troiNoLRR", "troiNoLRR", False, None),
        ("annotated ROI, backbone frozen", noisy, "annotated", None, False, None),
        ("annotated ROI, whole model fine-tuned", noisy, "annotatedFT", None, False, None),
        ("true informative voxels as the mask", noisy, "oracleMask", None, True, None),
        ("informative voxels, noise-free responses", free, "oracleFree", None, True, None)]:
    if not (root / f"sub-01/sub-01_desc-{desc}.json").is_file():
        continue  # a variant left out by VARIANTS
    fit = json.loads((root / f"sub-01/sub-01_desc-{desc}.json").read_text())
    chosen = nib.load(root / f"sub-01/sub-01_desc-{mask}_mask.nii.gz" if mask else
                      annotated_mask if "annotated" in desc else
                      free / "sub-01/sub-01_roi-brainmask_desc-preproc_mask.nii.gz" if desc == "oracleFree" else
                      truth).get_fdata() > 0
    hits = int((chosen & informative).sum())
    r = fit["retrieval"]
    rows.append(Row(label, {"voxels": int(chosen.sum()), "precision": hits / max(1, int(chosen.sum())),
                            "recall": hits / budget, "image_ret": r["image_retrieval"],
                            "brain_ret": r["brain_retrieval"], "candidates": r["n_candidates"]},
                    oracle=oracle, versus=versus))
write_rows(rows_path, rows, reference="TROI (pretrained, backbone frozen)",
           labels={"voxels": "voxels", "precision": "precision", "recall": "recall", "image_ret": "image ret.",
                   "brain_ret": "brain ret.", "candidates": "candidates"})
PY
