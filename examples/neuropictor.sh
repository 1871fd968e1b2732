#!/usr/bin/env bash
# NeuroPictor on the simulated world, what a CPU can show, over seeds:
#   - the flatmap autoencoder (calibrated encoding, --preset small) trained on subjects 1-2's repeat-averaged
#     training images (the paper's default) and on their single trials, scored on the held-out shared images:
#     masked MSE as a ratio to the mean training flatmap, and Pearson r of each reconstruction with the measured
#     (repeat-averaged) test flatmap and with the noise-free one (the signal the world put there);
#   - its oracle: the same autoencoder trained and tested on the world's noise-free twin, and the measured test
#     flatmaps' own r with the noise-free ones;
#   - cross-subject alignment (same pixel = same cortex?): per pixel the true visual areas, pRF centres and noise-free
#     responses of subjects 1 and 2 compared (fmrikit.data.flatmaps.alignment), and the same-pixel correlation of the
#     two subjects' measured test flatmaps.
# No Stable Diffusion weights are here, so NeuroPictor's diffusion stages are not scored: CHAIN=1 also runs them
# from the CLI on a tiny Stable Diffusion 2.1-shaped pipeline with random weights (16-px images: it checks that the
# whole chain runs; its images are noise and its metrics sit at chance). SD21=<diffusers folder of Stable Diffusion
# 2.1(-base)> uses real weights instead (on a GPU); AE_PRESET=paper trains the paper's 24 x 1024 flatmap autoencoder
# on 256-px flatmaps (a GPU model).
#   bash examples/neuropictor.sh                        (one world)
#   WORLD_SEEDS=0,1,2 bash examples/neuropictor.sh      (the study)
# WORLDS: a folder of simulated worlds shared with examples/recon_mappers.sh (same WORLD_OPTIONS).
set -euo pipefail
export HF_HUB_OFFLINE=1
REPO=$(cd "$(dirname "$0")/.." && pwd)
WORK=${FMRIKIT_NEUROPICTOR:-./neuropictor_study}
if [ -z "${STUDY_RUN_DIR:-}" ]; then
  exec python -m fmrikit.cli.study run --world-seeds "${WORLD_SEEDS:-0}" --model-seeds "${MODEL_SEEDS:-0}" \
    --out "$WORK/runs" -- bash "$0"
fi

mkdir -p "${WORLDS:-$WORK/worlds}"
WORLD="$(cd "${WORLDS:-$WORK/worlds}" && pwd)/seed-$WORLD_SEED"
read -ra SIZE <<< "${WORLD_OPTIONS:---subjects 2 --sessions 6 --trials-per-session 300 --shared 100}"
SIM=("${SIZE[@]}" --seed "$WORLD_SEED" --overwrite)
[ -f "$WORLD/nsd/fmrikit_simulation.json" ] || fmrikit simulate --out "$WORLD/nsd" "${SIM[@]}" > /dev/null
[ -f "$WORLD/nsd-free/fmrikit_simulation.json" ] || \
  fmrikit simulate --out "$WORLD/nsd-free" "${SIM[@]}" --noise-free > /dev/null
AE=(--preset "${AE_PRESET:-small}" --seed "$SEED" --overwrite)
for tree in noisy noise-free; do
  nsd="$WORLD/nsd"; [ "$tree" = noise-free ] && nsd="$WORLD/nsd-free"
  export FMRIKIT_ROOT="$STUDY_RUN_DIR/$tree"
  for subject in 1 2; do
    fmrikit preprocess --nsd-root "$nsd" --subject "$subject" --no-flatmap --overwrite > /dev/null
  done
  fmrikit pretrain flatmap-ae --subjects 1,2 "${AE[@]}" > /dev/null  # repeat-averaged images (the default)
done
FMRIKIT_ROOT="$STUDY_RUN_DIR/noisy" fmrikit pretrain flatmap-ae --subjects 1,2 --single-trials \
  --out "$STUDY_RUN_DIR/noisy/models/flatmap-ae-single" "${AE[@]}" > /dev/null

python - <<'EOF'
import json
import os
from pathlib import Path

import numpy as np

from fmrikit.analysis.study import Row, write_rows
from fmrikit.data.flatmaps import read_flatmap_info, test_flatmaps
from fmrikit.data.flatmaps.alignment import flatmap_alignment
from fmrikit.data.dataset import read_info
from fmrikit.methods.neuropictor.flatmap_ae import masked_scores, reconstruct_flatmaps
from fmrikit.methods.neuropictor.flatmap_ae_model import FlatmapAutoencoder

run = Path(os.environ["STUDY_RUN_DIR"])
trees = {"noisy": run / "noisy", "noise-free": run / "noise-free"}


def caches(model: Path) -> list[Path]:
    return [Path(v["path"]) for k, v in sorted(json.loads((model / "config.json").read_text())["flatmaps"].items())]


def r_with(model: Path | None, maps: list[tuple], truth: list[tuple]) -> float:
    """Mean per-image Pearson r (inside each subject's mask) of a model's reconstructions, or of the maps
    themselves without a model, with the truth maps."""
    rs = []
    for (ids, x, mask), (ids_t, t, _) in zip(maps, truth):
        assert np.array_equal(ids, ids_t)
        pred = x if model is None else reconstruct_flatmaps(FlatmapAutoencoder.from_pretrained(model), x)
        rs.append(masked_scores(pred, t, mask)[1])
    return float(np.nanmean(np.concatenate(rs)))


def tests(model: Path) -> list[tuple]:
    return [(*test_flatmaps(p), read_flatmap_info(p).mapping.mask) for p in caches(model)]


models = {"averaged": trees["noisy"] / "models/flatmap-ae", "single": trees["noisy"] / "models/flatmap-ae-single",
          "oracle": trees["noise-free"] / "models/flatmap-ae"}
measured, clean = tests(models["averaged"]), tests(models["oracle"])
rows = []
for key, name in (("averaged", "flatmap AE, repeat-averaged training (paper, default)"),
                  ("single", "flatmap AE, single-trial training"),
                  ("oracle", "flatmap AE trained and tested on noise-free flatmaps")):
    s = json.loads((models[key] / "run.json").read_text())["scores"]["overall"]
    data = clean if key == "oracle" else measured
    record = json.loads((models[key] / "run.json").read_text())
    rows.append(Row(name, {"mse_ratio": s["mse_ratio"], "r_measured": s["r"],
                           "r_truth": r_with(models[key], data, clean), "train_samples": record["n_train_samples"]},
                    oracle=key == "oracle",
                    versus="flatmap AE, repeat-averaged training (paper, default)" if key == "single" else None))
rows.append(Row("measured test flatmaps themselves (no model)", {"r_truth": r_with(None, measured, clean)},
                oracle=True))

# same pixel = same cortex? The truth of subjects 1 and 2 on their own flatmap operators, and their measured maps
info = read_info(trees["noisy"] / "sub-01/sub-01_desc-preproc_betas.h5")
ops = [read_flatmap_info(p).mapping for p in caches(models["averaged"])]
align = flatmap_alignment(info.nsd_root, [1, 2], ops, measured[0][0])["sub-01~sub-02"]
both = measured[0][2] & measured[1][2]
a, b = measured[0][1][:, both], measured[1][1][:, both]
a, b = a - a.mean(0), b - b.mean(0)
denom = np.sqrt((a ** 2).sum(0) * (b ** 2).sum(0))
r_pixels = np.divide((a * b).sum(0), denom, out=np.full(denom.shape, np.nan), where=denom > 0)
rows.append(Row("cross-subject alignment (truth: subjects 1 and 2)",
                {"area_agreement": align["area_agreement"], "area_chance": align["area_agreement_chance"],
                 "same_pixel_r": align["response_r"], "best_shift_px": float(np.abs(align["best_shift"]).sum()),
                 "prf_distance_deg": align["prf_distance_deg"]}, oracle=True))
rows.append(Row("cross-subject same-pixel r of the measured test flatmaps",
                {"same_pixel_r": float(np.nanmedian(r_pixels))}))
(run / "alignment.json").write_text(json.dumps(align, indent=1))
write_rows(os.environ["STUDY_ROWS"], rows, reference="flatmap AE, repeat-averaged training (paper, default)",
           labels={"mse_ratio": "held-out MSE / mean map", "r_measured": "r with measured test map",
                   "r_truth": "r with noise-free test map", "train_samples": "training samples",
                   "area_agreement": "same true area", "area_chance": "same area by chance",
                   "same_pixel_r": "same-pixel response r", "best_shift_px": "best shift (px)",
                   "prf_distance_deg": "pRF distance (deg)"})
EOF

[ "${CHAIN:-0}" = 1 ] || exit 0
# the diffusion stages from the CLI, on subject 2 (pretraining) and subject 1 (refining)
export FMRIKIT_ROOT="$STUDY_RUN_DIR/noisy"
BRICK="$WORLD/nsd/nsddata_stimuli/stimuli/nsd/nsd_stimuli.hdf5"
if [ -z "${SD21:-}" ]; then
  SD21="$STUDY_RUN_DIR/tiny-sd21"
  echo "SD21 not set: a tiny Stable Diffusion 2.1-shaped pipeline with random weights in $SD21"
  PYTHONPATH="$REPO" python -c "import sys; from tests.tiny_diffusion import save_tiny_sd21; \
save_tiny_sd21(sys.argv[1])" "$SD21"
fi
# paper: AdamW 1e-4, lambda 0.1, 5% unconditional, repeat-averaged images; --preset paper for its schedule
fmrikit pretrain neuropictor --subjects 2 --pipeline "$SD21" --epochs "${EPOCHS:-2}" --seed "$SEED" --overwrite
fmrikit adapt-subject neuropictor --subject 1 --epochs "${EPOCHS:-2}" --seed "$SEED" --overwrite
for scale in 0 1; do
  out="$STUDY_RUN_DIR/recon/control-$scale"
  fmrikit reconstruct --subject 1 --method neuropictor --trials shared --control-scale "$scale" --steps 4 \
    --out "$out" --overwrite > /dev/null
  fmrikit evaluate recon --pred "$out/images" --truth "$BRICK" --out "$STUDY_RUN_DIR/results/control-$scale" \
    --overwrite > /dev/null
done
# the semantics of trial 8 on the structure of trials 0-7 (paper Fig. 2)
fmrikit reconstruct --subject 1 --method neuropictor --trials 0-7 --high-level-from 8 --steps 4 \
  --out "$STUDY_RUN_DIR/recon/swap" --overwrite > /dev/null
