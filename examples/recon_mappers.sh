#!/usr/bin/env bash
# The mapper study on the simulated world (the course report's Table 3 shape): the four fMRI-to-latent mappers
# (ridge = Takagi & Nishimoto's linear model, CNN, VAE, GCN; --preset small) predict the embedded autoencoder's
# latents of subject 1's held-out shared images from its early visual voxels (V1-hV4: prf-visualrois 1-7, the GCN's
# nodes V1 / V2 / V3 + hV4); the autoencoder decodes them. Per mapper: the latent MSE in standardised units and as a
# ratio to predicting the training mean (the goal: <= 0.8), PixCorr, SSIM and pixel two-way identification
# (fmrikit evaluate recon).
# Rows beyond the four mappers:
#   - "mean predictor": the training mean latent decoded (MSE ratio 1 by definition; its image metrics are chance);
#   - "<mapper>, 2 of 6 sessions": trained on a third of the data (data size: does the nonlinear-linear gap move?);
#   - oracle "<mapper> on noise-free responses": the same mapper trained and tested on the world's noise-free twin
#     (fmrikit simulate --noise-free): what the mapper reaches without measurement noise;
#   - oracle "autoencoder ceiling": the autoencoder's own reconstruction of the true test images.
# Every run is one world seed x one model seed; the seed helper (python -m fmrikit.cli.study) prints one table
# with mean +- sd and the differences from ridge (or from ridge on the same data) beyond 2 standard errors.
#   bash examples/recon_mappers.sh                                   (one world, one model seed)
#   WORLD_SEEDS=0,1,2 bash examples/recon_mappers.sh                 (the study)
#   WORLD_OPTIONS='--subjects 2 --sessions 18 --trials-per-session 300 --shared 100' FRACTION= ORACLE=0 ...
#                                                                    (3x the training data)
# Knobs: MAPPERS (default "ridge cnn vae gcn"), FRACTION (sessions of the reduced-data rows, default 1,2; empty
# skips them), EXTRA_MAPPERS (the mappers of the reduced-data and noise-free rows, default "ridge gcn"), ORACLE (1:
# the noise-free rows), EPOCHS (most epochs of the torch mappers, default 20: the CNN's validation loss is flat by
# then on this world and an epoch of it takes ~30 s on a shared CPU), AE_SIZE / AE_EPOCHS (the autoencoder: 32 px,
# 8 epochs, sized for a CPU), WORLDS (a folder of simulated worlds shared with examples/neuropictor.sh).
# The issue-18 study: WORLD_SEEDS=0 MODEL_SEEDS=<s> for s in 0 1 2 (one world, three model seeds: the autoencoder,
# the mappers' initialisation and folds), then python -m fmrikit.cli.study table over the three run folders;
# ~40 min a run on 2 shared cores.
set -euo pipefail
export HF_HUB_OFFLINE=1
WORK=${FMRIKIT_STUDY:-./recon_study}
if [ -z "${STUDY_RUN_DIR:-}" ]; then
  exec python -m fmrikit.cli.study run --world-seeds "${WORLD_SEEDS:-0}" --model-seeds "${MODEL_SEEDS:-0}" \
    --out "$WORK/runs" -- bash "$0"
fi

# one run: the world of WORLD_SEED and its noise-free twin (simulated once, shared by its runs), models of SEED
mkdir -p "${WORLDS:-$WORK/worlds}"
WORLD="$(cd "${WORLDS:-$WORK/worlds}" && pwd)/seed-$WORLD_SEED"
read -ra SIZE <<< "${WORLD_OPTIONS:---subjects 2 --sessions 6 --trials-per-session 300 --shared 100}"
SIM=("${SIZE[@]}" --seed "$WORLD_SEED" --overwrite)
[ -f "$WORLD/nsd/fmrikit_simulation.json" ] || fmrikit simulate --out "$WORLD/nsd" "${SIM[@]}" > /dev/null
[ -f "$WORLD/nsd-free/fmrikit_simulation.json" ] || [ "${ORACLE:-1}" = 0 ] || \
  fmrikit simulate --out "$WORLD/nsd-free" "${SIM[@]}" --noise-free > /dev/null
for tree in noisy noise-free; do
  nsd="$WORLD/nsd"; [ "$tree" = noise-free ] && nsd="$WORLD/nsd-free"
  [ "$tree" = noise-free ] && [ "${ORACLE:-1}" = 0 ] && continue
  fmrikit preprocess --nsd-root "$nsd" --subject 1 --no-flatmap --root "$STUDY_RUN_DIR/$tree" --overwrite > /dev/null
done

# the autoencoder (trained once per run on subject 1's training images), the mappers, their reconstructions and
# scores: one process, the library functions the commands call (fmrikit pretrain autoencoder / latent-mapper,
# reconstruct, evaluate recon)
MAPPERS="${MAPPERS:-ridge cnn vae gcn}" EXTRA_MAPPERS="${EXTRA_MAPPERS:-ridge gcn}" FRACTION="${FRACTION-1,2}" \
  ORACLE="${ORACLE:-1}" EPOCHS="${EPOCHS:-20}" \
  BRICK="$WORLD/nsd/nsddata_stimuli/stimuli/nsd/nsd_stimuli.hdf5" python - <<'EOF'
import os
import time
from pathlib import Path

import numpy as np
from PIL import Image

from fmrikit.analysis.evaluate import evaluate_recon
from fmrikit.analysis.study import Row, write_rows
from fmrikit.data.dataset import read_info, read_stimuli
from fmrikit.diffusion import decode_latents, encode_images, load_autoencoder
from fmrikit.engine.settings import SupervisedSettings
from fmrikit.methods.latent.autoencoder import pretrain_autoencoder
from fmrikit.methods.latent.settings import AutoencoderSize
from fmrikit.methods.latent.train import pretrain_latent_mapper
from fmrikit.pipelines.reconstruct import reconstruct

run, seed, brick = Path(os.environ["STUDY_RUN_DIR"]), int(os.environ["SEED"]), os.environ["BRICK"]
mappers, extra = os.environ["MAPPERS"].split(), os.environ["EXTRA_MAPPERS"].split()
fraction = [int(s) for s in os.environ["FRACTION"].split(",") if s]
trees = {"noisy": run / "noisy"} | ({"noise-free": run / "noise-free"} if os.environ["ORACLE"] == "1" else {})
image_keys = ("pixcorr", "ssim", "pixel_two_way")


def scores(images: Path, out: Path) -> dict:
    m = evaluate_recon(images, brick, out, offline_network=False, device="cpu", overwrite=True)["metrics"]
    return {k: m[k].get("value") for k in image_keys}


size = AutoencoderSize(image_size=int(os.environ.get("AE_SIZE", 32)), channels=(16, 32))
ae = pretrain_autoencoder([1], root=trees["noisy"], out=run / "autoencoder", size=size, device="cpu",
                          settings=SupervisedSettings(epochs=int(os.environ.get("AE_EPOCHS", 8)), batch_size=32,
                                                      lr=2e-3, patience=None, seed=seed), overwrite=True)
info = read_info(trees["noisy"] / "sub-01/sub-01_desc-preproc_betas.h5")
ids = np.unique(info.stim_id[info.shared])
vae, _ = load_autoencoder(ae)
ceiling = run / "results/ceiling"
(ceiling / "images").mkdir(parents=True, exist_ok=True)
for i, im in zip(ids, decode_latents(vae, encode_images(vae, read_stimuli(info, ids), size=size.image_size))):
    Image.fromarray(im).save(ceiling / "images" / f"stim-{i}.png")
rows = [Row("autoencoder ceiling (its reconstruction of the true images)",
            {"mse_ratio": 0.0, **scores(ceiling / "images", ceiling / "eval")}, oracle=True)]
# the mean predictor: every test image gets the training images' mean latent (as each mapper standardises with it)
train_ids = np.unique(info.stim_id[~info.shared])
z_train = encode_images(vae, read_stimuli(info, train_ids), size=size.image_size)
mean_dir = run / "results/mean"
(mean_dir / "images").mkdir(parents=True, exist_ok=True)
mean_image = Image.fromarray(decode_latents(vae, z_train.mean(0, keepdims=True))[0])
for i in ids:
    mean_image.save(mean_dir / "images" / f"stim-{i}.png")
# one image for all: two-way identification is at chance (0.5) by definition (every comparison a tie)
rows.append(Row("mean predictor (training mean latent)",
                {"mse_ratio": 1.0, **scores(mean_dir / "images", mean_dir / "eval"), "pixel_two_way": 0.5}))

n_sessions = len(np.unique(info.session))
part = f", {len(fraction)} of {n_sessions} sessions" if fraction else ""
variants = [("noisy", m, None) for m in mappers] + [("noisy", m, fraction) for m in extra if fraction]
variants += [("noise-free", m, None) for m in extra if "noise-free" in trees]
for tree, mapper, sessions in variants:
    tag = f"{tree}/{mapper}" + ("-fraction" if sessions else "")
    out = run / "results" / tag
    start = time.time()
    result = pretrain_latent_mapper(1, mapper=mapper, root=trees[tree], autoencoder=ae, sessions=sessions,
                                    preset="small", overrides={"seed": seed, "epochs": int(os.environ["EPOCHS"])}, device="cpu",
                                    out=out / "mapper",
                                    overwrite=True)
    seconds = time.time() - start
    reconstruct(1, trials="shared", model=out / "mapper", root=trees[tree], device="cpu", out=out / "recon",
                overwrite=True)
    s = result.scores["image"]
    values = {"mse_ratio": s["mse_ratio_to_mean"], "mse_std": s["test_mse_standardised"],
              **scores(out / "recon/images", out / "eval"), "train_trials": s["n_train_trials"],
              "seconds": seconds}
    name = mapper + (part if sessions else "")
    versus = "ridge" + part if sessions and mapper != "ridge" else None
    rows.append(Row(name + (" on noise-free responses" if tree == "noise-free" else ""), values,
                    oracle=tree == "noise-free", versus=versus))
write_rows(os.environ["STUDY_ROWS"], rows, reference="ridge",
           labels={"mse_ratio": "latent MSE / mean predictor", "mse_std": "latent MSE (standardised)",
                   "pixcorr": "PixCorr", "ssim": "SSIM", "pixel_two_way": "pixel two-way",
                   "train_trials": "training trials", "seconds": "training s"})
EOF
