"""One run of the cluster study (see cluster_study.sh): do voxel embeddings separate what the voxels do?

On a simulated world (WORLD_SEED) the universal encoder is trained jointly on subjects 1 and 2 (SEED), then the voxels
are clustered several ways and scored against the truth with :func:`fmrikit.analysis.oracle.cluster_scores`:

* ``category`` (k = number of categories, category voxels only): ARI, purity, agreement of labels across subjects;
  and the ARI on the category voxels when every voxel (noise and early ones too) is clustered with k = 8 classes;
* ``early`` (k = 8, early voxels only): ARI against binned pRF position (4 polar-angle x 2 eccentricity bins) and
  against the visual area.

Spaces: the embeddings (L2, the paper's), the predicted response profiles over the shared images (fmrikit's default),
and baselines: each subject's measured response profiles over its training images (clustered per subject, so labels
cannot agree across subjects by construction: agreement is NaN), the measured responses to the shared images (joint),
the voxels' ridge weights on level-pooled features (joint); the oracle: the true noise-free profiles (joint).
Environment: ENC_EPOCHS, ENC_VPI (voxels per image), ENC_CHANNELS, ENC_EMBED, ENC_INIT (embedding init scale),
ENC_GRID, WORLD_OPTIONS.
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from sklearn.cluster import KMeans
from sklearn.linear_model import RidgeCV

from fmrikit.analysis.oracle import cluster_scores
from fmrikit.analysis.study import Row, write_rows
from fmrikit.data.world.truth import read_noise_free, read_truth, world_config
from fmrikit.engine.distributed import Distributed
from fmrikit.methods.encoder.clusters import response_profiles
from fmrikit.methods.encoder.fit import fit_encoder, predict
from fmrikit.methods.encoder.runs import load_encoder_data, new_encoder, subject_dataset
from fmrikit.methods.encoder.settings import encoder_preset

torch.set_num_threads(1)
env = os.environ
world_seed, seed = int(env["WORLD_SEED"]), int(env["SEED"])
work = Path(env.get("FMRIKIT_CLUSTER_STUDY", "./cluster_study")).resolve()
nsd = work / f"worlds/seed-{world_seed}/nsd"
root = Path(env["STUDY_RUN_DIR"]) / "derivatives/fmrikit"
size = env.get("WORLD_OPTIONS", "--subjects 2 --sessions 4 --trials-per-session 300 --shared 60").split()
fmrikit = [sys.executable, "-m", "fmrikit.cli.main"]
if not (nsd / "fmrikit_simulation.json").is_file():
    subprocess.run(fmrikit + ["simulate", "--out", str(nsd), *size, "--seed", str(world_seed), "--overwrite"],
                   check=True, stdout=subprocess.DEVNULL)
subjects = [1, 2]
for s in subjects:
    subprocess.run(fmrikit + ["preprocess", "--nsd-root", str(nsd), "--subject", str(s), "--no-flatmap",
                              "--overwrite", "--root", str(root)], check=True, stdout=subprocess.DEVNULL)

grid = int(env["ENC_GRID"]) if env.get("ENC_GRID") else None
preset = encoder_preset("small", grid=grid, epochs=int(env.get("ENC_EPOCHS", 30)), seed=seed,
                        voxels_per_image=int(env.get("ENC_VPI", 500)),
                        channels=int(env.get("ENC_CHANNELS", 32)), embed_dim=int(env.get("ENC_EMBED", 256)))
spec = {"name": preset.features, "image_model": None, **({"grid": grid} if grid else {})}
ctx = Distributed(0, 1, torch.device("cpu"))
data = [load_encoder_data(subject_dataset(root, s, "nsdgeneral"), s, spec, ctx, root=root, seed=seed)
        for s in subjects]
torch.manual_seed(seed)
model = new_encoder(data, preset.size)
with torch.no_grad():
    for p in model.voxel_embeddings.values():
        p.mul_(float(env.get("ENC_INIT", 1.0)))
init = {k: p.detach().clone().numpy() for k, p in model.voxel_embeddings.items()}
fit_encoder(model, data, preset.settings, ctx)

truths = [read_truth(nsd, s) for s in subjects]
CATEGORIES = [truths[0].voxel_classes.index(c) for c in ("face", "text", "scene", "food", "animal")]
EARLY = truths[0].voxel_classes.index("early")
classes, rows_of, prf_bin, area = [], [], [], []
for d, tr in zip(data, truths):
    where = {tuple(x): i for i, x in enumerate(tr.ijk)}
    row = np.array([where.get(tuple(x), -1) for x in d.info.ijk])
    c = np.zeros(len(row), int)
    c[row >= 0] = tr.voxel_class[row[row >= 0]]
    classes.append(c)
    rows_of.append(row)
    early = c == EARLY
    x, y = tr.prf[row[early], 0], tr.prf[row[early], 1]
    angle = (np.arctan2(y, x) // (np.pi / 2)).astype(int) % 4
    ecc = (np.hypot(x, y) > np.median(np.hypot(x, y))).astype(int)
    prf_bin.append(angle * 2 + ecc)
    area.append(tr.area[row[early]])


def centred(x):
    x = x - x.mean(1, keepdims=True)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


shared = data[0].test_stim  # the same images for every subject
spaces = {
    "embeddings (L2, paper)": [e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12) for e in
                               (model.voxel_embeddings[d.key].detach().numpy() for d in data)],
    "predicted profiles (fmrikit)": [response_profiles(predict(model, torch.cat([x.test_features for x in data] +
                                                                                  [x.train_features for x in data]),
                                                               d.key)) for d in data],
    "baseline: own responses, training images (per subject)": [centred(d.train_y.numpy().T) for d in data],
    "baseline: measured responses to the shared images": [centred(d.test_y.numpy().T) for d in data],
}
weights = []
for d in data:  # ridge on each level's patch-averaged features: (L * C) weights per voxel
    f = d.train_features.float().mean(2).flatten(1).numpy()
    f = (f - f.mean(0)) / (f.std(0) + 1e-6)
    ridge = RidgeCV(alphas=np.logspace(0, 5, 11), alpha_per_target=True).fit(f, d.train_y.numpy())
    weights.append(centred(ridge.coef_))
spaces["baseline: ridge weights (joint)"] = weights
c = world_config(nsd)
n_images = c["n_shared"] + c["n_subjects"] * (max(c["sessions"]) * c["trials_per_session"] // 3 - c["n_shared"])
images = np.sort(np.random.default_rng(seed).choice(n_images, min(1000, n_images), replace=False))
oracle = [centred(read_noise_free(nsd, s, images, d.info.ijk)[0].T.astype(np.float64))
          for s, d in zip(subjects, data)]
spaces["true noise-free profiles"] = oracle
per_subject = {"baseline: own responses, training images (per subject)"}

# how far training moved the embeddings from their random start (category voxels)
moved = [np.median(np.sum(init[d.key][np.isin(c, CATEGORIES)] * model.voxel_embeddings[d.key].detach().numpy()[
    np.isin(c, CATEGORIES)], 1) / (np.linalg.norm(init[d.key][np.isin(c, CATEGORIES)], axis=1) * np.linalg.norm(
    model.voxel_embeddings[d.key].detach().numpy()[np.isin(c, CATEGORIES)], axis=1))) for d, c in zip(data, classes)]


def kmeans(xs, masks, k, joint):
    if joint:
        lab = KMeans(k, n_init=10, random_state=seed).fit_predict(np.concatenate([x[m] for x, m in zip(xs, masks)]))
        return np.split(lab, np.cumsum([m.sum() for m in masks])[:-1])
    return [KMeans(k, n_init=10, random_state=seed).fit_predict(x[m]) for x, m in zip(xs, masks)]


rows = []
for name, xs in spaces.items():
    joint = name not in per_subject
    cat = [np.isin(c, CATEGORIES) for c in classes]
    labels = kmeans(xs, cat, len(CATEGORIES), joint)
    sc = cluster_scores(labels, [c[m] for c, m in zip(classes, cat)], CATEGORIES)
    early = [c == EARLY for c in classes]
    elab = kmeans(xs, early, 8, joint)
    ones = [np.ones(len(l), bool) for l in elab]
    prf = cluster_scores(elab, [np.zeros(len(l), int) for l in elab], [], early=ones, early_truth=prf_bin)
    ar = cluster_scores(elab, [np.zeros(len(l), int) for l in elab], [], early=ones, early_truth=area)
    everything = [np.ones(len(c), bool) for c in classes]  # all voxels, noise ones included, k = all classes
    alab = kmeans(xs, everything, len(truths[0].voxel_classes), joint)
    whole = cluster_scores(alab, classes, CATEGORIES)
    metrics = {"ari_cat": sc["ari_category"], "purity": sc["purity"], "ari_all": whole["ari_category"],
               "agree": sc["agreement"] if joint else float("nan"),
               "ari_prf": prf["ari_early"], "ari_area": ar["ari_early"]}
    if name.startswith("embeddings"):
        metrics["cos_init"] = float(np.mean(moved))
    rows.append(Row(name, metrics, oracle=name.startswith("true"),
                    versus=None if name.startswith(("predicted", "true")) else "predicted profiles (fmrikit)"))
# the encoder itself, against the oracle: r / oracle r on the shared test images, voxels with a true NC > 5 %
from fmrikit.analysis import metrics as M  # noqa: E402
from fmrikit.analysis.oracle import fraction_of_oracle  # noqa: E402

quality = {}
for s, d, tr, row in zip(subjects, data, truths, rows_of):
    measured = d.test_y.numpy()
    r = M.voxel_pearson(predict(model, d.test_features, d.key), measured)
    r_oracle = M.voxel_pearson(read_noise_free(nsd, s, d.test_stim, d.info.ijk)[0], measured)
    ncsnr = np.zeros(len(row))
    ncsnr[row >= 0] = tr.ncsnr[row[row >= 0]]
    frac = fraction_of_oracle(r, r_oracle, M.noise_ceiling_nsd(ncsnr, 3))
    quality.update({f"frac{s}": frac["median"], f"frac{s}_p75": frac["p75"], f"r{s}": float(np.nanmedian(r))})
rows.append(Row("encoder (subjects 1 + 2): r / oracle r", quality))
write_rows(env["STUDY_ROWS"], rows, reference="predicted profiles (fmrikit)",
           labels={"ari_cat": "category ARI (k = 5)", "ari_all": "category ARI, all voxels clustered (k = 8)", "purity": "category purity", "agree": "label agreement",
                   "ari_prf": "early ARI vs pRF bin (k = 8)", "ari_area": "early ARI vs area (k = 8)",
                   "cos_init": "cos(final, initial embedding)", "frac1": "sub-01 median r / oracle r",
                   "frac1_p75": "sub-01 p75 r / oracle r", "r1": "sub-01 median r (all voxels)",
                   "frac2": "sub-02 median r / oracle r", "frac2_p75": "sub-02 p75 r / oracle r",
                   "r2": "sub-02 median r (all voxels)"})
