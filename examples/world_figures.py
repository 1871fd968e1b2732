"""The simulated world's own figures (issue 17), computed with numpy / scikit-learn on the NSD files it writes:
the ncsnr distribution inside nsdgeneral, how well a plain ridge decodes pixels from early visual betas, and how
much the category-selective voxels of two subjects overlap. One run per world seed, through the seed helper:

    python -m fmrikit.cli.study run --world-seeds 0,1,2 --model-seeds 0 --out study/world \\
        -- python examples/world_figures.py

Each run simulates a world of ``WORLD_SEED`` (2 subjects x 3 sessions of 200 trials, 40 shared images, 32-px
images) in ``STUDY_RUN_DIR`` and writes its rows to ``STUDY_ROWS``; the helper prints mean +- sd over worlds.
The "oracle" rows score the same pixel decoder trained on the noise-free responses of the same world.
"""

from __future__ import annotations

import os
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import stats
from sklearn.linear_model import RidgeCV

from fmrikit.analysis.study import Row, write_rows
from fmrikit.data.simulate import simulate
from fmrikit.data.world.config import SimulationConfig
from fmrikit.io.nsd_access import NSDAccess

CONFIG = dict(n_subjects=2, sessions=[3], trials_per_session=200, runs_per_session=4, n_shared=40, image_size=32,
              formats=["hdf5"])
CATEGORIES = ("face", "scene", "animal")
ALPHAS = np.logspace(1, 5, 9)


def zscored_average(nsd: NSDAccess, subject: int, mask: str | np.ndarray, labels=None):
    """Betas z-scored per session, averaged over each image's trials: (stim ids, (n_images, n_voxels))."""
    b = nsd.betas(subject, mask=mask, labels=labels)
    x = b.values
    for s in np.unique(b.design.session):
        rows = b.design.session == s
        sd = x[rows].std(0)
        x[rows] = (x[rows] - x[rows].mean(0)) / np.where(sd > 0, sd, 1)
    ids, inverse = np.unique(b.design.stim_id, return_inverse=True)
    avg = np.zeros((len(ids), x.shape[1]))
    np.add.at(avg, inverse, x)
    return ids, avg / np.bincount(inverse)[:, None], np.isin(ids, b.design.stim_id[b.design.shared])


def two_way(truth: np.ndarray, pred: np.ndarray) -> float:
    """Two-way identification (Pearson; ties fail), chance 0.5."""
    n = len(truth)
    r = np.corrcoef(truth, pred)[:n, n:]
    return float(np.mean([(r[:, j] < r[j, j]).sum() / (n - 1) for j in range(n)]))


def pixel_decoding(nsd: NSDAccess) -> dict[str, float]:
    """Ridge from subject 1's V1-hV4 betas (prf-visualrois 1-7) to RGB pixels: held-out two-way and PixCorr."""
    ids, avg, test = zscored_average(nsd, 1, "prf-visualrois", labels=list(range(1, 8)))
    pixels = nsd.images(ids).reshape(len(ids), -1) / 255.0
    pred = RidgeCV(alphas=ALPHAS).fit(avg[~test], pixels[~test]).predict(avg[test])
    shuffled = RidgeCV(alphas=ALPHAS).fit(avg[~test], np.random.default_rng(0).permutation(pixels[~test]))
    pixcorr = np.mean([np.corrcoef(a, b)[0, 1] for a, b in zip(pixels[test], pred)])
    return {"pixel_two_way": two_way(pixels[test], pred), "pixcorr": float(pixcorr),
            "pixel_two_way_shuffled": two_way(pixels[test], shuffled.predict(avg[test]))}


def main() -> None:
    seed, run_dir = int(os.environ["WORLD_SEED"]), Path(os.environ["STUDY_RUN_DIR"])
    root = simulate(run_dir / "nsd", SimulationConfig(**CONFIG, seed=seed))
    clean = simulate(run_dir / "nsd_clean", SimulationConfig(**CONFIG, seed=seed, noise_free=True))
    nsd = NSDAccess(root)

    metrics: dict[str, float] = {}
    for subject in (1, 2):  # 3-trial noise ceilings (NSD's formula) of the files' ncsnr, inside nsdgeneral
        folder = nsd.layout.session_file(subject, "func1pt8mm", nsd.betas_version, 1).parent
        ncsnr = np.asarray(nib.load(folder / "ncsnr.nii.gz").dataobj, dtype=np.float64)[nsd.mask(subject)]
        nc = 100 * ncsnr ** 2 / (ncsnr ** 2 + 1 / 3)
        for name, value in (("nc_median", np.median(nc)), ("nc_p5", np.percentile(nc, 5)),
                            ("nc_p99_5", np.percentile(nc, 99.5)), ("frac_nc_ge_10", (nc >= 10).mean())):
            metrics[name] = metrics.get(name, 0.0) + float(value) / 2
    metrics.update(pixel_decoding(nsd))

    import h5py

    with h5py.File(root / "simulation_truth.h5") as f:
        category, names = f["images/category"][:], list(f.attrs["categories"])
    selective = {}
    for subject in (1, 2):  # t > 5 for the category vs the rest, over nsdgeneral (one template grid)
        ids, avg, _ = zscored_average(nsd, subject, "nsdgeneral")
        cat = category[ids]
        for name in CATEGORIES:
            c = names.index(name)
            selective[subject, name] = stats.ttest_ind(avg[cat == c], avg[cat != c]).statistic > 5
    for name in CATEGORIES:
        a, b = selective[1, name], selective[2, name]
        metrics[f"dice_{name}"] = float(2 * (a & b).sum() / max(a.sum() + b.sum(), 1))
        metrics[f"n_{name}_voxels"] = float((a.sum() + b.sum()) / 2)

    oracle = pixel_decoding(NSDAccess(clean))
    write_rows(os.environ["STUDY_ROWS"], [
        Row("world v2 (noisy betas)", metrics),
        Row("noise-free betas", {k: v for k, v in oracle.items() if k != "pixel_two_way_shuffled"},
            oracle=True)],
        labels={"nc_median": "median NC % (nsdgeneral)", "nc_p5": "NC p5 %", "nc_p99_5": "NC p99.5 %",
                "frac_nc_ge_10": "fraction NC >= 10 %", "pixel_two_way": "pixel two-way (ridge, V1-hV4)",
                "pixcorr": "PixCorr (ridge)", "pixel_two_way_shuffled": "pixel two-way, shuffled pairs",
                **{f"dice_{n}": f"Dice {n} voxels, sub 1 vs 2" for n in CATEGORIES}})


if __name__ == "__main__":
    main()
