#!/usr/bin/env bash
# The reconstruction study on the simulated world (the course report's Table 3 shape): the four
# fMRI-to-latent mappers (ridge = Takagi & Nishimoto's linear model, CNN, VAE, GCN) predict the embedded
# autoencoder's latents of subject 1's held-out shared images, from the early visual voxels (V1-hV4, as the
# report) and from all nsdgeneral voxels; the autoencoder decodes them. Per mapper: test MSE of the latents
# (and of predicting the training mean), PixCorr, SSIM and two-way identification on pixels and on
# EfficientNet-Lite0 features; the autoencoder's own reconstruction of the true images is the ceiling.
set -euo pipefail
export HF_HUB_OFFLINE=1
WORK=${FMRIKIT_STUDY:-./recon_study}
export FMRIKIT_ROOT="$WORK/derivatives/fmrikit"
NSD="$WORK/nsd"
BRICK="$NSD/nsddata_stimuli/stimuli/nsd/nsd_stimuli.hdf5"

fmrikit simulate --out "$NSD" --subjects 2 --sessions 6 --trials-per-session 300 --shared 100 --overwrite
for subject in 1 2; do
  fmrikit preprocess --nsd-root "$NSD" --subject "$subject" --no-flatmap --overwrite
done
fmrikit pretrain --model autoencoder --subjects 1,2 --epochs ${AE_EPOCHS:-20} --overwrite

# the ceiling: the autoencoder's reconstruction of the true test images
python - "$FMRIKIT_ROOT" "$WORK/results/ceiling" <<'EOF'
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
fmrikit evaluate recon --pred "$WORK/results/ceiling/images" --truth "$BRICK" --out "$WORK/results/ceiling/eval" \
  --overwrite > /dev/null

for design in early nsdgeneral; do
  roi=(); [ "$design" = nsdgeneral ] && roi=(--image-roi nsdgeneral)
  for mapper in ridge cnn vae gcn; do
    [ "$design" = nsdgeneral ] && [ "$mapper" = gcn ] && continue  # GCN nodes are V1 / V2 / V3+hV4
    model="$WORK/results/$design/$mapper/mapper"
    fmrikit pretrain --model latent-mapper --subject 1 --mapper "$mapper" "${roi[@]}" --out "$model" --overwrite
    fmrikit reconstruct --subject 1 --trials shared --model "$model" --out "$WORK/results/$design/$mapper/recon" \
      --overwrite > /dev/null
    fmrikit evaluate recon --pred "$WORK/results/$design/$mapper/recon/images" --truth "$BRICK" \
      --out "$WORK/results/$design/$mapper/eval" --overwrite > /dev/null
  done
done

python - "$WORK/results" <<'EOF'
import json
import sys
from pathlib import Path

results = Path(sys.argv[1])
print("| voxels | mapper | latent MSE | MSE of the train mean | PixCorr | SSIM | pixel two-way | EffNet-Lite0 two-way |")
print("|---|---|---|---|---|---|---|---|")
def metrics(folder):
    m = json.loads((folder / "results.json").read_text())["metrics"]
    return [m[k].get("value") for k in ("pixcorr", "ssim", "pixel_two_way", "effnet_lite0_two_way")]
fmt = lambda v: "-" if v is None else f"{v:.3f}"
print("| - | autoencoder on the true images (ceiling) | - | - | " + " | ".join(map(fmt, metrics(results / "ceiling/eval"))) + " |")
for design in ("early", "nsdgeneral"):
    for mapper in ("ridge", "cnn", "vae", "gcn"):
        folder = results / design / mapper
        if not folder.is_dir():
            continue
        s = json.loads((folder / "mapper/run.json").read_text())["scores"]["image"]
        label = "V1-hV4" if design == "early" else "nsdgeneral"
        print(f"| {label} ({s['n_voxels']}) | {mapper} | {s['test_mse']:.4f} | {s['baseline_mse_train_mean']:.4f} | "
              + " | ".join(map(fmt, metrics(folder / "eval"))) + " |")
EOF
echo "contact sheets: $(ls "$WORK"/results/*/*/recon/contact_sheet.png | tr '\n' ' ')"
