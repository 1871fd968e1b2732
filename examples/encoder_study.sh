#!/usr/bin/env bash
# The universal encoder on ground truth (Universal Brain Encoder, Figs. 4a and 6 shape): a 4-subject
# simulated world, ImageNet EfficientNet-Lite0 patch features.
#   1. encoder trained on subjects 1-3 jointly vs on subject 1 alone vs the per-subject ridge baseline,
#      scored on subject 1's held-out shared images (voxel r, noise-ceiling score, encoder retrieval);
#   2. transfer: held-out subject 4, embeddings-only adaptation with 25/50/100/all images vs a
#      single-subject encoder trained from scratch on the same images;
#   3. cluster-embeddings on subjects 1 and 2 vs the true voxel classes.
#   bash examples/encoder_study.sh            (about 45 minutes on 2 CPU cores)
set -euo pipefail
export HF_HUB_OFFLINE=1
WORK=${FMRIKIT_ENCODER_STUDY:-./encoder_study}
export FMRIKIT_ROOT="$WORK/derivatives/fmrikit"
NSD="$WORK/nsd"
SEED=${SEED:-0}
TRAIN=(--lr 3e-3 --voxels-per-image 2000 --seed "$SEED" --overwrite)

fmrikit simulate --out "$NSD" --subjects 4 --sessions 3 --trials-per-session 300 --shared 100 --overwrite
for subject in 1 2 3 4; do
  fmrikit preprocess --nsd-root "$NSD" --subject "$subject" --no-flatmap --overwrite > /dev/null
done

# 1. joint vs single-subject vs ridge, on subject 1
fmrikit pretrain --model encoder --subjects 1,2,3 --features effnet-lite0 --epochs 20 "${TRAIN[@]}" > /dev/null
fmrikit adapt-subject --model encoder --subject 1 --no-pretrained --features effnet-lite0 --epochs 60 \
  --desc single "${TRAIN[@]}" > /dev/null
fmrikit pretrain --model ridge --subjects 1 --features effnet-lite0 --seed "$SEED" --overwrite > /dev/null
sub="$FMRIKIT_ROOT/sub-01"
fmrikit encode --shared --subject 1 --max-flatmaps 2 --overwrite > /dev/null
fmrikit encode --shared --subject 1 --model "$sub/sub-01_desc-single_encoder" --out "$sub/sub-01_encode-single" \
  --max-flatmaps 0 --overwrite > /dev/null
declare -A preds=([universal]="$sub/sub-01_encode-shared/sub-01_pred.h5"
                  [single]="$sub/sub-01_encode-single/sub-01_pred.h5" [ridge]="$sub/sub-01_desc-ridge/sub-01_pred.h5")
results=()
for name in universal single ridge; do
  fmrikit evaluate encoding --pred "${preds[$name]}" --subject 1 --out "$WORK/results/$name" --overwrite > /dev/null
  results+=("$WORK/results/$name/results.json")
done
echo
echo "1. Subject 1, 100 held-out shared images: universal (subjects 1-3) | single-subject | ridge"
fmrikit evaluate --compare "${results[@]}"

# 2. transfer to held-out subject 4: about 200 optimiser steps per run whatever the image count
for n in 25 50 100 all; do
  count=(); [ "$n" != all ] && count=(--n-train "$n")
  images=${n/all/200}
  epochs=$(( 200 / ((images + 31) / 32) ))
  fmrikit adapt-subject --model encoder --subject 4 "${count[@]}" --epochs "$epochs" --desc "n$n" \
    "${TRAIN[@]}" > /dev/null
  fmrikit adapt-subject --model encoder --subject 4 "${count[@]}" --epochs "$epochs" --desc "scratch$n" \
    --no-pretrained --features effnet-lite0 "${TRAIN[@]}" > /dev/null
done
echo
echo "2. Held-out subject 4 (100 shared test images): embeddings-only adaptation vs from scratch"
python - "$FMRIKIT_ROOT/sub-04" <<'EOF'
import json, sys
from pathlib import Path
sub = Path(sys.argv[1])
print(f"{'train images':>12} | {'adapted median r':>16} {'p75 r':>6} {'top-1':>6} | {'scratch median r':>16} {'p75 r':>6} {'top-1':>6}")
for n in ("25", "50", "100", "all"):
    row = [n]
    for desc in (f"n{n}", f"scratch{n}"):
        s = json.loads((sub / f"sub-04_desc-{desc}_encoder/run.json").read_text())["encoding"]["sub-04"]
        row += [f"{s['median_r']:16.3f}", f"{s['p75_r']:6.3f}", f"{s['retrieval_top1']:6.2f}"]
    print(f"{row[0]:>12} | {' '.join(row[1:4])} | {' '.join(row[4:])}")
EOF

# 3. functional clusters of subjects 1 and 2 vs the simulation's voxel classes
for k in 7 20; do
  fmrikit cluster-embeddings --k "$k" --subjects 1,2 --max-images 300 --seed "$SEED" --overwrite > /dev/null
done
echo
echo "3. cluster-embeddings (k-means on L2-normalised embeddings, subjects 1 and 2 jointly) vs true voxel classes"
python - "$FMRIKIT_ROOT/clusters" "$NSD/truth" <<'EOF'
import sys
from pathlib import Path
import nibabel as nib
import numpy as np
from sklearn.metrics import adjusted_rand_score
clusters, truth = Path(sys.argv[1]), Path(sys.argv[2])
classes = ["noise", "early", "face", "text", "scene", "food", "animal"]
for k in (7, 20):
    lab, cls, subj = [], [], []
    for s in (1, 2):
        labels = np.asarray(nib.load(clusters / f"kmeans-k{k}/sub-0{s}_desc-clusters_dseg.nii.gz").dataobj)
        true = np.asarray(nib.load(truth / f"subj0{s}/voxel_class.nii.gz").dataobj)
        inside = labels > 0
        lab.append(labels[inside]); cls.append(true[inside].astype(int)); subj.append(np.full(inside.sum(), s))
    lab, cls, subj = map(np.concatenate, (lab, cls, subj))
    inf = cls > 0
    print(f"k = {k}: ARI on informative voxels {adjusted_rand_score(cls[inf], lab[inf]):.3f}, "
          f"on all nsdgeneral voxels {adjusted_rand_score(cls, lab):.3f}")
    for c in range(2, len(classes)):
        own = []
        for s in (1, 2):
            mine = lab[(cls == c) & (subj == s)]
            top = np.bincount(mine).argmax()
            members = cls[(lab == top) & (subj == s) & inf]
            own.append((top, (mine == top).mean(), (members == c).mean()))
        same = own[0][0] == own[1][0]
        print(f"  {classes[c]:>6}: cluster {own[0][0]:>2} / {own[1][0]:>2} (same: {'yes' if same else 'no'}); holds "
              f"{own[0][1]:.0%} / {own[1][1]:.0%} of the patch; patch is {own[0][2]:.0%} / {own[1][2]:.0%} of the "
              f"cluster's informative voxels")
EOF
echo "cluster flatmaps: $(ls "$FMRIKIT_ROOT"/clusters/kmeans-k20/sub-0*_desc-clusters.png | tr '\n' ' ')"
