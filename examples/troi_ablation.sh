#!/usr/bin/env bash
# TROI on ground truth: a held-out subject with one session of data, the voxel budget set to the true
# number of informative voxels, against the annotated ROI and the paper's ablations (Tables 1-2 shape).
#   bash examples/troi_ablation.sh            (about 10 minutes on 2 CPU cores)
set -euo pipefail
export HF_HUB_OFFLINE=1
WORK=${FMRIKIT_ABLATION:-./troi_ablation}
export FMRIKIT_ROOT="$WORK/derivatives/fmrikit"
NSD="$WORK/nsd"
SEED=${SEED:-0}
FEATURES=(--features effnet-lite0)

fmrikit simulate --out "$NSD" --subjects 4 --sessions 3 --trials-per-session 300 --shared 100 --overwrite
for subject in 1 2 3 4; do
  fmrikit preprocess --nsd-root "$NSD" --subject "$subject" --no-flatmap --overwrite > /dev/null
done
fmrikit preprocess --nsd-root "$NSD" --subject 1 --roi brainmask --no-flatmap --overwrite > /dev/null
budget=$(python -c "import nibabel as n; print(int((n.load('$NSD/truth/subj01/informative_mask.nii.gz').get_fdata() > 0).sum()))")
echo "held-out subject 1: session 1 only; budget = true informative voxels = $budget"

fmrikit pretrain --subjects 2,3,4 "${FEATURES[@]}" --seed "$SEED" --overwrite > /dev/null
one=(--subject 1 --sessions 1 --seed "$SEED" --overwrite)
fmrikit roi-train "${one[@]}" --budget "$budget" --desc troi > /dev/null
fmrikit adapt-subject "${one[@]}" --roi nsdgeneral --desc annotated > /dev/null
fmrikit roi-train "${one[@]}" --budget "$budget" --no-pretrained "${FEATURES[@]}" --desc troiNoPT --no-flatmap > /dev/null
fmrikit roi-train "${one[@]}" --budget "$budget" --no-lowpass --desc troiNoLPF --no-flatmap > /dev/null
fmrikit roi-train "${one[@]}" --budget "$budget" --no-rewind --desc troiNoLRR --no-flatmap > /dev/null

sub="$FMRIKIT_ROOT/sub-01"
for desc in troi troiNoPT troiNoLPF troiNoLRR; do
  fmrikit evaluate mask --mask "$sub/sub-01_desc-${desc}_mask.nii.gz" \
    --reference "$NSD/truth/subj01/informative_mask.nii.gz" --out "$WORK/results/$desc" --overwrite > /dev/null
done
fmrikit evaluate mask --mask "$sub/sub-01_desc-preproc_mask.nii.gz" \
  --reference "$NSD/truth/subj01/informative_mask.nii.gz" --out "$WORK/results/annotated" --overwrite > /dev/null

python - "$sub" "$WORK/results" <<'PY'
import json, sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

sub, results = Path(sys.argv[1]), Path(sys.argv[2])
rows = [("pretrained + TROI", "troi"), ("pretrained + annotated ROI", "annotated"),
        ("TROI w/o pretraining", "troiNoPT"), ("TROI w/o low-pass", "troiNoLPF"),
        ("TROI w/o rewinding", "troiNoLRR")]
table = Table(title="TROI ablation on the simulated world (subject 1, one session)")
for col in ("variant", "voxels", "precision", "recall", "Dice", "image ret.", "brain ret.", "candidates"):
    table.add_column(col, justify="left" if col == "variant" else "right")
for label, desc in rows:
    run = json.loads((sub / f"sub-01_desc-{desc}.json").read_text())
    mask = {k: m["value"] for k, m in json.loads((results / desc / "results.json").read_text())["metrics"].items()}
    r = run["retrieval"]
    table.add_row(label, str(run["n_voxels"]), f"{mask['precision']:.3f}", f"{mask['recall']:.3f}",
                  f"{mask['dice']:.3f}", f"{r['image_retrieval']:.1%}", f"{r['brain_retrieval']:.1%}",
                  str(r["n_candidates"]))
Console(width=130).print(table)
PY
