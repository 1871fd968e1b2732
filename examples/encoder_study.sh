#!/usr/bin/env bash
# The universal encoder on ground truth (Universal Brain Encoder, Figs. 4a and 6 shape): a 4-subject simulated world,
# the small preset (EfficientNet-Lite0 patch features, Adam 1e-3, the paper's loss).
#   1. encoder trained on subjects 1-3 jointly vs on subject 1 alone vs the per-subject ridge baseline, scored on
#      subject 1's held-out shared images (voxel r, noise-ceiling score, encoder retrieval) and against the oracle:
#      median and p75 of r / oracle r over the voxels whose true noise ceiling exceeds 5 %; FINE_GRID=14 adds the
#      joint encoder on a 14 x 14 patch grid (finer receptive fields);
#   2. transfer: held-out subject 4, embeddings-only adaptation with 25/50/100/all images vs a single-subject encoder
#      trained from scratch on the same images;
#   3. cluster-embeddings on subjects 1 and 2 vs the true voxel classes (adjusted Rand index).
# Oracle rows: the noise-free responses as the prediction (same scorer), and k-means on the true tuning.
# Every run is one world seed x one model seed; the seed helper (python -m fmrikit.cli.study) prints one table.
#   bash examples/encoder_study.sh                                   (one world, one model seed)
#   WORLD_SEEDS=0,1,2 MODEL_SEEDS=0,1 bash examples/encoder_study.sh (the study)
#   WORLD_OPTIONS='--subjects 4 --sessions 2 --trials-per-session 150 --shared 40' ...  (a smaller world;
#   TRANSFER_STEPS=200 sets the optimiser steps of each transfer run; ENC_OPTIONS='--voxels-per-image 300' adds
#   options to every encoder run; PRETRAIN_EPOCHS (default: the library's), SINGLE_EPOCHS)
set -euo pipefail
export HF_HUB_OFFLINE=1
WORK=${FMRIKIT_ENCODER_STUDY:-./encoder_study}
if [ -z "${STUDY_RUN_DIR:-}" ]; then
  exec python -m fmrikit.cli.study run --world-seeds "${WORLD_SEEDS:-0}" --model-seeds "${MODEL_SEEDS:-0}" \
    --out "$WORK/runs" -- bash "$0"
fi

# one run: the world of WORLD_SEED (simulated once, shared by its runs), models of SEED
NSD="$(cd "$WORK" && pwd)/worlds/seed-$WORLD_SEED/nsd"
read -ra SIZE <<< "${WORLD_OPTIONS:---subjects 4 --sessions 4 --trials-per-session 300 --shared 60}"
[ -f "$NSD/fmrikit_simulation.json" ] || fmrikit simulate --out "$NSD" "${SIZE[@]}" --seed "$WORLD_SEED" --overwrite
export FMRIKIT_ROOT="$STUDY_RUN_DIR/derivatives/fmrikit"
RESULTS="$STUDY_RUN_DIR/results"
read -ra EXTRA <<< "${ENC_OPTIONS:-}"
TRAIN=(--preset small "${EXTRA[@]}" --seed "$SEED" --overwrite)
for subject in 1 2 3 4; do
  fmrikit preprocess --nsd-root "$NSD" --subject "$subject" --no-flatmap --overwrite > /dev/null
done

# 1. joint vs single-subject vs ridge, on subject 1; the oracle predicts the noise-free responses
fmrikit pretrain --model encoder --subjects 1,2,3 ${PRETRAIN_EPOCHS:+--epochs "$PRETRAIN_EPOCHS"} "${TRAIN[@]}" > /dev/null
fmrikit adapt-subject --model encoder --subject 1 --no-pretrained --epochs "${SINGLE_EPOCHS:-60}" \
  --desc single "${TRAIN[@]}" > /dev/null
fmrikit pretrain --model ridge --subjects 1 --features effnet-lite0 --seed "$SEED" --overwrite > /dev/null
sub="$FMRIKIT_ROOT/sub-01"
fmrikit encode --shared --subject 1 --max-flatmaps 0 --overwrite > /dev/null
fmrikit encode --shared --subject 1 --model "$sub/sub-01_desc-single_encoder" --out "$sub/sub-01_encode-single" \
  --max-flatmaps 0 --overwrite > /dev/null
names=(universal single ridge oracle-1 oracle-4)
if [ -n "${FINE_GRID:-}" ]; then
  fmrikit pretrain --model encoder --subjects 1,2,3 --grid "$FINE_GRID" ${PRETRAIN_EPOCHS:+--epochs "$PRETRAIN_EPOCHS"} \
    --out "$FMRIKIT_ROOT/models/encoder-fine" "${TRAIN[@]}" > /dev/null
  fmrikit encode --shared --subject 1 --model "$FMRIKIT_ROOT/models/encoder-fine" --out "$sub/sub-01_encode-fine" \
    --max-flatmaps 0 --overwrite > /dev/null
  names+=(fine)
fi
for subject in 1 4; do
  python -m fmrikit.cli.oracle encoding --subject "$subject" --out "$RESULTS/pred-oracle-$subject" \
    --overwrite > /dev/null
done
declare -A preds=([universal]="$sub/sub-01_encode-shared/sub-01_pred.h5"
                  [single]="$sub/sub-01_encode-single/sub-01_pred.h5" [ridge]="$sub/sub-01_desc-ridge/sub-01_pred.h5"
                  [oracle-1]="$RESULTS/pred-oracle-1/sub-01_pred.h5" [oracle-4]="$RESULTS/pred-oracle-4/sub-04_pred.h5"
                  [fine]="$sub/sub-01_encode-fine/sub-01_pred.h5")
declare -A subject_of=([universal]=1 [single]=1 [ridge]=1 [oracle-1]=1 [oracle-4]=4 [fine]=1)
for name in "${names[@]}"; do
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
    --no-pretrained "${TRAIN[@]}" > /dev/null
done

# 3. functional clusters of subjects 1 and 2 (both spaces), and k-means on the true tuning
for k in 8 20; do
  for space in response embedding; do
    fmrikit cluster-embeddings --k "$k" --subjects 1,2 --space "$space" --max-images 300 --seed "$SEED" \
      --no-flatmap --out "$FMRIKIT_ROOT/clusters/$space-k$k" --overwrite > /dev/null
  done
  python -m fmrikit.cli.oracle clusters --subjects 1,2 --k "$k" --seed "$SEED" --out "$RESULTS/oracle-k$k" \
    --overwrite > /dev/null
done

python - "$FMRIKIT_ROOT" "$RESULTS" "$NSD/truth" "$STUDY_ROWS" <<'PY'
import json, sys
from pathlib import Path

import nibabel as nib
import numpy as np
from sklearn.metrics import adjusted_rand_score

from fmrikit.analysis.oracle import fraction_of_oracle
from fmrikit.analysis.study import Row, write_rows

root, results, truth, rows_path = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4]


def volume(path):
    return np.asarray(nib.load(path).dataobj, dtype=np.float64)


nc1 = volume(truth / "subj01/noise_ceiling.nii.gz")
r_oracle = volume(results / "oracle-1/sub-01_r.nii.gz")
inside = volume(results / "oracle-1/sub-01_r.nii.gz") != 0
rows = []
for label, name, oracle in [("universal (subjects 1-3)", "universal", False), ("single-subject", "single", False),
                            ("ridge", "ridge", False), ("universal, finer patch grid", "fine", False),
                            ("noise-free responses as the prediction", "oracle-1", True)]:
    if not (results / name / "results.json").is_file():
        continue
    m = {k: v["value"] for k, v in json.loads((results / name / "results.json").read_text())["metrics"].items()}
    frac = fraction_of_oracle(volume(results / name / "sub-01_r.nii.gz")[inside], r_oracle[inside], nc1[inside])
    rows.append(Row(f"sub-01: {label}", {"f1": frac["median"], "f1_p75": frac["p75"], "r1": m["median_r"],
                                         "nc1": m["nc_score_nsd"], "top1_1": m["retrieval_top1"],
                                         "top5_1": m["retrieval_top5"]}, oracle))
m = {k: v["value"] for k, v in json.loads((results / "oracle-4/results.json").read_text())["metrics"].items()}
oracle4 = m["median_r"]
for n in ("25", "50", "100", "all"):
    for kind, desc in (("from scratch", f"scratch{n}"), ("adapted", f"n{n}")):
        run = root / f"sub-04/sub-04_desc-{desc}_encoder/run.json"
        if not run.is_file():  # fewer training images than n
            continue
        s = json.loads(run.read_text())["encoding"]["sub-04"]
        rows.append(Row(f"sub-04, {n} images: {kind}", {"r4": s["median_r"], "r4_frac": s["median_r"] / oracle4,
                                                         "top1_4": s["retrieval_top1"]},
                        versus=f"sub-04, {n} images: from scratch" if kind == "adapted" else None))
if (root / "sub-04/sub-04_desc-n100_encoder/run.json").is_file():  # the paper's Fig. 6 shape
    s = json.loads((root / "sub-04/sub-04_desc-n100_encoder/run.json").read_text())["encoding"]["sub-04"]
    rows.append(Row("sub-04, 100 images adapted (vs from scratch on all)",
                    {"r4": s["median_r"], "r4_frac": s["median_r"] / oracle4, "top1_4": s["retrieval_top1"]},
                    versus="sub-04, all images: from scratch"))
rows.append(Row("sub-04: noise-free responses as the prediction", {"r4": oracle4, "r4_frac": 1.0,
                                                                    "top1_4": m["retrieval_top1"]}, oracle=True))


def ari(folder):
    lab, cls = [], []
    for s in (1, 2):
        labels = np.asarray(nib.load(folder / f"sub-0{s}_desc-clusters_dseg.nii.gz").dataobj)
        true = np.asarray(nib.load(truth / f"subj0{s}/voxel_class.nii.gz").dataobj)
        inside = labels > 0
        lab.append(labels[inside]); cls.append(true[inside].astype(int))
    lab, cls = np.concatenate(lab), np.concatenate(cls)
    category = (cls >= 2) & (cls <= 6)  # face, text, scene, food, animal
    return {"ari_cat": adjusted_rand_score(cls[category], lab[category]), "ari_all": adjusted_rand_score(cls, lab)}


for k in (8, 20):
    for space in ("response", "embedding"):
        rows.append(Row(f"cluster-embeddings --space {space}, k = {k}", ari(root / f"clusters/{space}-k{k}")))
    rows.append(Row(f"k-means on the true tuning, k = {k}", ari(results / f"oracle-k{k}"), oracle=True))
write_rows(rows_path, rows, reference="sub-01: universal (subjects 1-3)",
           labels={"f1": "sub-01 median r / oracle r (NC > 5 %)", "f1_p75": "sub-01 p75 r / oracle r",
                   "r1": "sub-01 median r", "nc1": "sub-01 NC score % (NSD)", "top1_1": "sub-01 top-1",
                   "top5_1": "sub-01 top-5", "r4": "sub-04 median r", "r4_frac": "sub-04 median r / oracle's",
                   "top1_4": "sub-04 top-1", "ari_cat": "ARI category voxels", "ari_all": "ARI nsdgeneral"})
PY
