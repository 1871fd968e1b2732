#!/usr/bin/env bash
# The reconstruction study on the simulated world (the course report's Table 3 shape): the four fMRI-to-latent mappers
# (ridge = Takagi & Nishimoto's linear model, CNN, VAE, GCN) predict the embedded autoencoder's latents of subject 1's
# held-out shared images, from the early visual voxels (V1-hV4, as the report) and from all nsdgeneral voxels; the
# autoencoder decodes them. Per mapper: test MSE of the latents (and of predicting the training mean), PixCorr, SSIM
# and two-way identification on pixels and on EfficientNet-Lite0 features.
# Oracle rows: the autoencoder's own reconstruction of the true images (the ceiling of every mapper), and each mapper
# trained and tested on the world's noise-free twin (same seed, noise-free responses as betas).
# Every run is one world seed x one model seed; the seed helper (python -m fmrikit.analysis.study) prints one table.
#   bash examples/recon_mappers.sh                                   (one world, one model seed)
#   WORLD_SEEDS=0,1,2 MODEL_SEEDS=0,1 bash examples/recon_mappers.sh (the study)
#   WORLD_OPTIONS='--subjects 2 --sessions 2 --trials-per-session 150 --shared 40' ...  (a smaller world)
set -euo pipefail
export HF_HUB_OFFLINE=1
WORK=${FMRIKIT_STUDY:-./recon_study}
if [ -z "${STUDY_RUN_DIR:-}" ]; then
  exec python -m fmrikit.analysis.study run --world-seeds "${WORLD_SEEDS:-0}" --model-seeds "${MODEL_SEEDS:-0}" \
    --out "$WORK/runs" -- bash "$0"
fi

# one run: the world of WORLD_SEED and its noise-free twin (simulated once, shared by its runs), models of SEED
WORLD="$(cd "$WORK" && pwd)/worlds/seed-$WORLD_SEED"
read -ra SIZE <<< "${WORLD_OPTIONS:---subjects 2 --sessions 6 --trials-per-session 300 --shared 100}"
SIM=("${SIZE[@]}" --seed "$WORLD_SEED" --overwrite)
[ -f "$WORLD/nsd/fmrikit_simulation.json" ] || fmrikit simulate --out "$WORLD/nsd" "${SIM[@]}"
[ -f "$WORLD/nsd-free/fmrikit_simulation.json" ] || fmrikit simulate --out "$WORLD/nsd-free" "${SIM[@]}" --noise-free
BRICK="$WORLD/nsd/nsddata_stimuli/stimuli/nsd/nsd_stimuli.hdf5"
RESULTS="$STUDY_RUN_DIR/results"
AE="$STUDY_RUN_DIR/noisy/models/autoencoder"

# the autoencoder sees only images: trained once per run, used by both trees
export FMRIKIT_ROOT="$STUDY_RUN_DIR/noisy"
for subject in 1 2; do
  fmrikit preprocess --nsd-root "$WORLD/nsd" --subject "$subject" --no-flatmap --overwrite > /dev/null
done
fmrikit pretrain --model autoencoder --subjects 1,2 --epochs "${AE_EPOCHS:-20}" --seed "$SEED" --overwrite > /dev/null

# the ceiling: the autoencoder's reconstruction of the true test images
python - "$FMRIKIT_ROOT" "$RESULTS/ceiling" <<'EOF'
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from fmrikit.data.dataset import read_info, read_stimuli
from fmrikit.diffusion import decode_latents, encode_images, load_autoencoder

root, out = Path(sys.argv[1]), Path(sys.argv[2])
info = read_info(root / "sub-01/sub-01_desc-preproc_betas.h5")
ids = np.unique(info.stim_id[info.shared])
vae, _ = load_autoencoder(root / "models/autoencoder")
images = decode_latents(vae, encode_images(vae, read_stimuli(info, ids)))
(out / "images").mkdir(parents=True, exist_ok=True)
for i, im in zip(ids, images):
    Image.fromarray(im).save(out / "images" / f"stim-{i}.png")
EOF
fmrikit evaluate recon --pred "$RESULTS/ceiling/images" --truth "$BRICK" --out "$RESULTS/ceiling/eval" \
  --overwrite > /dev/null

for tree in noisy noise-free; do
  export FMRIKIT_ROOT="$STUDY_RUN_DIR/$tree"
  nsd="$WORLD/nsd"; [ "$tree" = noise-free ] && nsd="$WORLD/nsd-free"
  if [ "$tree" = noise-free ]; then
    for subject in 1 2; do
      fmrikit preprocess --nsd-root "$nsd" --subject "$subject" --no-flatmap --overwrite > /dev/null
    done
  fi
  for design in early nsdgeneral; do
    roi=(); [ "$design" = nsdgeneral ] && roi=(--image-roi nsdgeneral)
    for mapper in ridge cnn vae gcn; do
      [ "$design" = nsdgeneral ] && [ "$mapper" = gcn ] && continue  # GCN nodes are V1 / V2 / V3+hV4
      out="$RESULTS/$tree/$design/$mapper"
      fmrikit pretrain --model latent-mapper --subject 1 --mapper "$mapper" "${roi[@]}" --autoencoder "$AE" \
        --seed "$SEED" --out "$out/mapper" --overwrite > /dev/null
      fmrikit reconstruct --subject 1 --trials shared --model "$out/mapper" --out "$out/recon" --overwrite > /dev/null
      fmrikit evaluate recon --pred "$out/recon/images" --truth "$BRICK" --out "$out/eval" --overwrite > /dev/null
    done
  done
done

python - "$RESULTS" "$STUDY_ROWS" <<'EOF'
import json
import sys
from pathlib import Path

from fmrikit.analysis.study import Row, write_rows

results, rows_path = Path(sys.argv[1]), sys.argv[2]
keys = ("pixcorr", "ssim", "pixel_two_way", "effnet_lite0_two_way")


def metrics(folder):
    m = json.loads((folder / "results.json").read_text())["metrics"]
    return {k: m[k].get("value") for k in keys}


rows = [Row("autoencoder on the true images (ceiling)", metrics(results / "ceiling/eval"), oracle=True)]
for tree in ("noisy", "noise-free"):
    for design, label in (("early", "V1-hV4"), ("nsdgeneral", "nsdgeneral")):
        for mapper in ("ridge", "cnn", "vae", "gcn"):
            folder = results / tree / design / mapper
            if not folder.is_dir():
                continue
            s = json.loads((folder / "mapper/run.json").read_text())["scores"]["image"]
            name = f"{label} {mapper}" + (" on noise-free responses" if tree == "noise-free" else "")
            values = {"voxels": s["n_voxels"], "mse": s["test_mse"], "mse_mean": s["baseline_mse_train_mean"]}
            rows.append(Row(name, {**values, **metrics(folder / "eval")}, oracle=tree == "noise-free"))
write_rows(rows_path, rows, reference=next(r.variant for r in rows if not r.oracle),
           labels={"voxels": "voxels", "mse": "latent MSE", "mse_mean": "MSE of the train mean", "pixcorr": "PixCorr",
                   "ssim": "SSIM", "pixel_two_way": "pixel two-way", "effnet_lite0_two_way": "EffNet-Lite0 two-way"})
EOF
