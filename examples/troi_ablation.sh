#!/usr/bin/env bash
# TROI on ground truth: a held-out subject with one session of training data, the voxel budget set to the true
# number of informative voxels, against the annotated ROI and the paper's ablations (Tables 1-2 shape), with the
# oracle rows: the true informative voxels as the mask, and the same TROI chain on the world's noise-free twin.
# Retrieval is among 300 shared images, as published. Every run is one world seed x one model seed; the seed helper
# (python -m fmrikit.analysis.study) runs them all and prints one table: mean +- sd, n, and the differences from
# full TROI that exceed 2 standard errors.
#   bash examples/troi_ablation.sh                                   (one world, one model seed)
#   WORLD_SEEDS=0,1,2 MODEL_SEEDS=0,1 bash examples/troi_ablation.sh (the study; each run takes the time of one)
#   WORLD_OPTIONS='--subjects 4 --sessions 2 --trials-per-session 150 --shared 40' ...  (a smaller world)
set -euo pipefail
export HF_HUB_OFFLINE=1
WORK=${FMRIKIT_ABLATION:-./troi_ablation}
if [ -z "${STUDY_RUN_DIR:-}" ]; then
  exec python -m fmrikit.analysis.study run --world-seeds "${WORLD_SEEDS:-0}" --model-seeds "${MODEL_SEEDS:-0}" \
    --out "$WORK/runs" -- bash "$0"
fi

# one run: the world of WORLD_SEED (simulated once, shared by its runs), models of SEED
WORLD="$(cd "$WORK" && pwd)/worlds/seed-$WORLD_SEED"
read -ra SIZE <<< "${WORLD_OPTIONS:---subjects 4 --sessions 4,8,8,8 --trials-per-session 400 --shared 300}"
SIM=("${SIZE[@]}" --seed "$WORLD_SEED" --overwrite)
[ -f "$WORLD/nsd/fmrikit_simulation.json" ] || fmrikit simulate --out "$WORLD/nsd" "${SIM[@]}"
[ -f "$WORLD/nsd-free/fmrikit_simulation.json" ] || fmrikit simulate --out "$WORLD/nsd-free" "${SIM[@]}" --noise-free
FEATURES=(--features effnet-lite0)
truth="$WORLD/nsd/truth/subj01/informative_mask.nii.gz"
budget=$(python -c "import nibabel as n; print(int((n.load('$truth').get_fdata() > 0).sum()))")
echo "held-out subject 1: session 1 only; budget = true informative voxels = $budget"

# the chain on one tree: preprocess, pretrain on subjects 2-4, select subject 1's voxels
chain() {  # tree, project, then the variants to train
  local nsd=$1; export FMRIKIT_ROOT=$2; shift 2
  for subject in 1 2 3 4; do
    fmrikit preprocess --nsd-root "$nsd" --subject "$subject" --no-flatmap --overwrite > /dev/null
  done
  fmrikit preprocess --nsd-root "$nsd" --subject 1 --roi brainmask --no-flatmap --overwrite > /dev/null
  fmrikit pretrain --subjects 2,3,4 "${FEATURES[@]}" --seed "$SEED" --overwrite > /dev/null
  local one=(--subject 1 --sessions 1 --seed "$SEED" --overwrite) troi=(--budget "$budget" --no-flatmap)
  for variant in "$@"; do
    case $variant in
      troi) fmrikit roi-train "${one[@]}" --budget "$budget" --desc troi > /dev/null ;;
      annotated) fmrikit adapt-subject "${one[@]}" --roi nsdgeneral --desc annotated > /dev/null ;;
      oracleMask) fmrikit adapt-subject "${one[@]}" --mask "$truth" --desc oracleMask > /dev/null ;;
      troiNoPT) fmrikit roi-train "${one[@]}" "${troi[@]}" --no-pretrained "${FEATURES[@]}" --desc troiNoPT \
                  > /dev/null ;;
      troiNoLPF) fmrikit roi-train "${one[@]}" "${troi[@]}" --no-lowpass --desc troiNoLPF > /dev/null ;;
      troiNoLRR) fmrikit roi-train "${one[@]}" "${troi[@]}" --no-rewind --desc troiNoLRR > /dev/null ;;
    esac
  done
  local sub="$FMRIKIT_ROOT/sub-01" desc mask
  for desc in "$@"; do
    case $desc in
      annotated) mask="$sub/sub-01_desc-preproc_mask.nii.gz" ;;
      oracleMask) mask="$truth" ;;
      *) mask="$sub/sub-01_desc-${desc}_mask.nii.gz" ;;
    esac
    fmrikit evaluate mask --mask "$mask" --reference "$truth" --out "$FMRIKIT_ROOT/results/$desc" \
      --overwrite > /dev/null
  done
}
chain "$WORLD/nsd" "$STUDY_RUN_DIR/noisy" troi annotated oracleMask troiNoPT troiNoLPF troiNoLRR
chain "$WORLD/nsd-free" "$STUDY_RUN_DIR/noise-free" troi

python - "$STUDY_RUN_DIR" "$STUDY_ROWS" <<'PY'
import json, sys
from pathlib import Path

from fmrikit.analysis.study import Row, write_rows

run, rows_path = Path(sys.argv[1]), sys.argv[2]
rows = []
for label, tree, desc, oracle in [("pretrained + TROI", "noisy", "troi", False),
                                  ("pretrained + annotated ROI", "noisy", "annotated", False),
                                  ("TROI w/o pretraining", "noisy", "troiNoPT", False),
                                  ("TROI w/o low-pass", "noisy", "troiNoLPF", False),
                                  ("TROI w/o rewinding", "noisy", "troiNoLRR", False),
                                  ("true informative voxels as the mask", "noisy", "oracleMask", True),
                                  ("pretrained + TROI on noise-free responses", "noise-free", "troi", True)]:
    root = run / tree
    fit = json.loads((root / f"sub-01/sub-01_desc-{desc}.json").read_text())
    results = json.loads((root / f"results/{desc}/results.json").read_text())["metrics"]
    mask = {k: m["value"] for k, m in results.items()}
    r = fit["retrieval"]
    rows.append(Row(label, {"voxels": fit["n_voxels"], "precision": mask["precision"], "recall": mask["recall"],
                            "dice": mask["dice"], "image_ret": r["image_retrieval"], "brain_ret": r["brain_retrieval"],
                            "candidates": r["n_candidates"]}, oracle=oracle))
write_rows(rows_path, rows, reference="pretrained + TROI",
           labels={"voxels": "voxels", "precision": "precision", "recall": "recall", "dice": "Dice",
                   "image_ret": "image ret.", "brain_ret": "brain ret.", "candidates": "candidates"})
PY
