#!/usr/bin/env bash
# The universal encoder on ground truth (Universal Brain Encoder, Figs. 4a and 6 shape): a 4-subject simulated world
# with 300 shared images, ImageNet EfficientNet-Lite0 patch features.
#   1. encoder trained on subjects 1-3 jointly vs on subject 1 alone vs the per-subject ridge baseline, scored on
#      subject 1's held-out shared images (voxel r, noise-ceiling score, encoder retrieval);
#   2. transfer: held-out subject 4, embeddings-only adaptation with 25/50/100/all images vs a single-subject encoder
#      trained from scratch on the same images;
#   3. cluster-embeddings on subjects 1 and 2 vs the true voxel classes (adjusted Rand index).
# Oracle rows: the noise-free responses as the prediction (same scorer), and k-means on the true tuning.
# Every run is one world seed x one model seed; the seed helper (python -m fmrikit.analysis.study) prints one table.
#   bash examples/encoder_study.sh                                   (one world, one model seed)
#   WORLD_SEEDS=0,1,2 MODEL_SEEDS=0,1 bash examples/encoder_study.sh (the study)
#   WORLD_OPTIONS='--subjects 4 --sessions 2 --trials-per-session 150 --shared 40' ...  (a smaller world;
#   TRANSFER_STEPS=200 sets the optimiser steps of each transfer run)
set -euo pipefail
export HF_HUB_OFFLINE=1
WORK=${FMRIKIT_ENCODER_STUDY:-./encoder_study}
if [ -z "${STUDY_RUN_DIR:-}" ]; then
  exec python -m fmrikit.analysis.study run --world-seeds "${WORLD_SEEDS:-0}" --model-seeds "${MODEL_SEEDS:-0}" \
    --out "$WORK/runs" -- bash "$0"
fi

# one run: the world of WORLD_SEED (simulated once, shared by its runs), models of SEED
NSD="$(cd "$WORK" && pwd)/worlds/seed-$WORLD_SEED/nsd"
read -ra SIZE <<< "${WORLD_OPTIONS:---subjects 4 --sessions 6 --trials-per-session 300 --shared 300}"
[ -f "$NSD/fmrikit_simulation.json" ] || fmrikit simulate --out "$NSD" "${SIZE[@]}" --seed "$WORLD_SEED" --overwrite
export FMRIKIT_ROOT="$STUDY_RUN_DIR/derivatives/fmrikit"
RESULTS="$STUDY_RUN_DIR/results"
TRAIN=(--lr 3e-3 --voxels-per-image 2000 --seed "$SEED" --overwrite)
for subject in 1 2 3 4; do
  fmrikit preprocess --nsd-root "$NSD" --subject "$subject" --no-flatmap --overwrite > /dev/null
done

# 1. joint vs single-subject vs ridge, on subject 1; the oracle predicts the noise-free responses
fmrikit pretrain --model encoder --subjects 1,2,3 --features effnet-lite0 --epochs 20 "${TRAIN[@]}" > /dev/null
fmrikit adapt-subject --model encoder --subject 1 --no-pretrained --features effnet-lite0 --epochs 60 \
  --desc single "${TRAIN[@]}" > /dev/null
fmrikit pretrain --model ridge --subjects 1 --features effnet-lite0 --seed "$SEED" --overwrite > /dev/null
sub="$FMRIKIT_ROOT/sub-01"
fmrikit encode --shared --subject 1 --max-flatmaps 0 --overwrite > /dev/null
fmrikit encode --shared --subject 1 --model "$sub/sub-01_desc-single_encoder" --out "$sub/sub-01_encode-single" \
  --max-flatmaps 0 --overwrite > /dev/null
for subject in 1 4; do
  python -m fmrikit.analysis.oracle encoding --subject "$subject" --out "$RESULTS/oracle-$subject/pred" \
    --overwrite > /dev/null
done
declare -A preds=([universal]="$sub/sub-01_encode-shared/sub-01_pred.h5"
                  [single]="$sub/sub-01_encode-single/sub-01_pred.h5" [ridge]="$sub/sub-01_desc-ridge/sub-01_pred.h5"
                  [oracle-1]="$RESULTS/oracle-1/pred/sub-01_pred.h5" [oracle-4]="$RESULTS/oracle-4/pred/sub-04_pred.h5")
declare -A subject_of=([universal]=1 [single]=1 [ridge]=1 [oracle-1]=1 [oracle-4]=4)
for name in universal single ridge oracle-1 oracle-4; do
  fmrikit evaluate encoding --pred "${preds[$name]}" --subject "${subject_of[$name]}" --out "$RESULTS/$name" \
    --no-flatmap --overwrite > /dev/null
done

# 2. transfer to held-out subject 4: about TRANSFER_STEPS optimiser steps per run whatever the image count
data="$FMRIKIT_ROOT/sub-04/sub-04_desc-preproc_betas.h5"
all=$(python -c "import sys; from fmrikit.data.dataset import read_info; i = read_info(sys.argv[1]); \
print(len(set(i.stim_id[~i.shared])))" "$data")  # subject 4's training images
for n in 25 50 100 all; do
  [ "$n" != all ] && [ "$n" -ge "$all" ] && continue  # a smaller world
  count=(); [ "$n" != all ] && count=(--n-train "$n")
  images=${n/all/$all}
  epochs=$(( ${TRANSFER_STEPS:-200} / ((images + 31) / 32) )); [ "$epochs" -ge 1 ] || epochs=1
  fmrikit adapt-subject --model encoder --subject 4 "${count[@]}" --epochs "$epochs" --desc "n$n" \
    "${TRAIN[@]}" > /dev/null
  fmrikit adapt-subject --model encoder --subject 4 "${count[@]}" --epochs "$epochs" --desc "scratch$n" \
    --no-pretrained --features effnet-lite0 "${TRAIN[@]}" > /dev/null
done

# 3. functional clusters of subjects 1 and 2, and k-means on the true tuning
for k in 8 20; do
  fmrikit cluster-embeddings --k "$k" --subjects 1,2 --max-images 300 --seed "$SEED" --no-flatmap \
    --overwrite > /dev/null
  python -m fmrikit.analysis.oracle clusters --subjects 1,2 --k "$k" --seed "$SEED" --out "$RESULTS/oracle-k$k" \
    --overwrite > /dev/null
done

python - "$FMRIKIT_ROOT" "$RESULTS" "$NSD/truth" "$STUDY_ROWS" <<'PY'
import json, sys
from pathlib import Path

import nibabel as nib
import numpy as np
from sklearn.metrics import adjusted_rand_score

from fmrikit.analysis.study import Row, write_rows

root, results, truth, rows_path = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4]
rows = []
for label, name, oracle in [("universal (subjects 1-3)", "universal", False), ("single-subject", "single", False),
                            ("ridge", "ridge", False), ("noise-free responses as the prediction", "oracle-1", True)]:
    m = {k: v["value"] for k, v in json.loads((results / name / "results.json").read_text())["metrics"].items()}
    rows.append(Row(f"sub-01: {label}", {"r1": m["median_r"], "r1_p75": m["r_p75"], "nc1": m["nc_score_nsd"],
                                         "top1_1": m["retrieval_top1"], "top5_1": m["retrieval_top5"]}, oracle))
for n in ("25", "50", "100", "all"):
    for kind, desc in (("from scratch", f"scratch{n}"), ("adapted", f"n{n}")):
        run = root / f"sub-04/sub-04_desc-{desc}_encoder/run.json"
        if not run.is_file():  # fewer training images than n
            continue
        s = json.loads(run.read_text())["encoding"]["sub-04"]
        rows.append(Row(f"sub-04, {n} images: {kind}", {"r4": s["median_r"], "top1_4": s["retrieval_top1"]},
                        versus=f"sub-04, {n} images: from scratch" if kind == "adapted" else None))
m = {k: v["value"] for k, v in json.loads((results / "oracle-4/results.json").read_text())["metrics"].items()}
rows.append(Row("sub-04: noise-free responses as the prediction", {"r4": m["median_r"], "top1_4": m["retrieval_top1"]},
                oracle=True))


def ari(folder):
    lab, cls = [], []
    for s in (1, 2):
        labels = np.asarray(nib.load(folder / f"sub-0{s}_desc-clusters_dseg.nii.gz").dataobj)
        true = np.asarray(nib.load(truth / f"subj0{s}/voxel_class.nii.gz").dataobj)
        inside = labels > 0
        lab.append(labels[inside]); cls.append(true[inside].astype(int))
    lab, cls = np.concatenate(lab), np.concatenate(cls)
    return {"ari_inf": adjusted_rand_score(cls[cls > 0], lab[cls > 0]), "ari_all": adjusted_rand_score(cls, lab)}


for k in (8, 20):
    rows.append(Row(f"cluster-embeddings, k = {k}", ari(root / f"clusters/kmeans-k{k}")))
    rows.append(Row(f"k-means on the true tuning, k = {k}", ari(results / f"oracle-k{k}"), oracle=True))
write_rows(rows_path, rows, reference="sub-01: universal (subjects 1-3)",
           labels={"r1": "sub-01 median r", "r1_p75": "sub-01 p75 r", "nc1": "sub-01 NC score %",
                   "top1_1": "sub-01 top-1", "top5_1": "sub-01 top-5", "r4": "sub-04 median r",
                   "top1_4": "sub-04 top-1", "ari_inf": "ARI informative", "ari_all": "ARI nsdgeneral"})
PY
