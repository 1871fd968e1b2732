"""Benchmark of the fsaverage flatmap operator (`fmrikit.data.flatmaps.fsaverage`) against a per-trial loop.

On N trials of a surface dataset (default: a synthetic full-fsaverage subject: 163,842 vertices per hemisphere,
columns = the cortex behind y = -30 mm on fsaverage5 plus enough finer vertices to make an nsdgeneral-sized
dataset, random betas; or ``--root DIR --subject N``, a preprocessed surface dataset):

* baseline: what a lab notebook does per trial: scatter the trial's betas onto each hemisphere's fsaverage5 flat
  mesh, ``matplotlib.tri.LinearTriInterpolator`` at the same 3 x 3 sample points per pixel (values and a
  coverage indicator, so the image is the mean over the dataset's vertices), average per pixel, zero where
  less than half a pixel is covered: the same image by definition;
* fmrikit: ``flatmap_mapping`` once (timed separately), then ``to_flatmaps``: one sparse product for all trials.

Reported: seconds and trials/s of each, the speed-up, the operator's build time, and the max abs difference.

    python benchmarks/fsaverage_flatmaps.py [--trials 750] [--loop-trials 100] [--size 256] [--root DIR --subject N]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def synthetic(trials: int, n_columns: int, seed: int = 0):
    """A full-fsaverage DatasetInfo and random z-scored betas (trials, columns)."""
    from fmrikit.data.dataset import DatasetInfo
    from fmrikit.io.fsaverage import FSAVERAGE5_VERTICES, FSAVERAGE_VERTICES, VISUAL_Y_MM, fsaverage5_mesh

    rng = np.random.default_rng(seed)
    hemi, vertex = [], []
    for h, name in enumerate(("lh", "rh")):
        pial, _ = fsaverage5_mesh("pial", name)
        coarse = np.nonzero(pial[:, 1] < VISUAL_Y_MM)[0]
        fine = rng.choice(np.arange(FSAVERAGE5_VERTICES, FSAVERAGE_VERTICES), n_columns // 2 - len(coarse), replace=False)
        v = np.sort(np.concatenate([coarse, fine]))
        hemi.append(np.full(len(v), h))
        vertex.append(v)
    hemi, vertex = np.concatenate(hemi), np.concatenate(vertex)
    ijk = np.stack([hemi, vertex, np.zeros_like(vertex)], 1)
    info = DatasetInfo(path=None, subject=1, stim_id=np.zeros(trials, np.int64), session=np.ones(trials, np.int16),
                       shared=np.zeros(trials, bool), ijk=ijk, affine=None, volume_shape=(2, FSAVERAGE_VERTICES, 1),
                       stimuli_path="", stimuli_dataset="", pycortex_subject="", pycortex_xfm="", ncsnr=None,
                       space="fsaverage", mesh="fsaverage")
    return info, rng.standard_normal((trials, len(ijk))).astype(np.float32)


def per_trial_loop(info, betas: np.ndarray, size: int, supersample: int = 3) -> np.ndarray:
    import matplotlib.tri as mtri

    from fmrikit.io.fsaverage import FSAVERAGE5_VERTICES, flat_layout, visual_crop

    x0, x1, y0, y1 = visual_crop()
    step = (np.arange(size * supersample) + 0.5) / (size * supersample)
    sx, sy = np.meshgrid(x0 + step * (x1 - x0), y1 - step * (y1 - y0))
    meshes = []
    for h, name in enumerate(("lh", "rh")):
        xy, faces = flat_layout()[name]
        cols = np.nonzero((info.hemi == h) & (info.vertex < FSAVERAGE5_VERTICES))[0]
        meshes.append((mtri.Triangulation(xy[:, 0], xy[:, 1], faces), cols, info.vertex[cols]))
    shape = (size, supersample, size, supersample)
    out = np.empty((len(betas), size, size), np.float32)
    for k, trial in enumerate(betas):
        value = np.zeros(sx.shape)
        cover = np.zeros(sx.shape)
        for triangulation, cols, vertex in meshes:
            full, have = np.zeros(FSAVERAGE5_VERTICES), np.zeros(FSAVERAGE5_VERTICES)
            full[vertex], have[vertex] = trial[cols], 1.0
            value += mtri.LinearTriInterpolator(triangulation, full)(sx, sy).filled(0)
            cover += mtri.LinearTriInterpolator(triangulation, have)(sx, sy).filled(0)
        value, cover = value.reshape(shape).mean((1, 3)), cover.reshape(shape).mean((1, 3))
        out[k] = np.where(cover >= 0.5, value / np.where(cover > 0, cover, 1), 0)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=750, help="trials projected by the operator")
    parser.add_argument("--loop-trials", type=int, default=100, help="trials of the per-trial loop (the first ones)")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--columns", type=int, default=40000, help="synthetic dataset: vertex columns")
    parser.add_argument("--root", help="project folder with a preprocessed surface dataset")
    parser.add_argument("--subject", type=int, default=1)
    args = parser.parse_args()

    from fmrikit.data.flatmaps.operator import flatmap_mapping

    if args.root:
        from fmrikit.data.dataset import read_betas, read_info
        from fmrikit.project import preproc_betas_path

        info = read_info(preproc_betas_path(args.root, args.subject))
        betas = read_betas(info.path, slice(0, args.trials))
    else:
        info, betas = synthetic(args.trials, args.columns)
    t0 = time.perf_counter()
    mapping = flatmap_mapping(info, args.size)
    build = time.perf_counter() - t0
    t0 = time.perf_counter()
    ours = mapping.to_flatmaps(betas)
    seconds = time.perf_counter() - t0
    n_loop = min(args.loop_trials, len(betas))
    t0 = time.perf_counter()
    loop = per_trial_loop(info, betas[:n_loop], args.size)
    loop_seconds = time.perf_counter() - t0
    report = {
        "columns": int(info.n_voxels), "size": args.size, "mask_pixels": int(mapping.mask.sum()),
        "operator": {"build_seconds": round(build, 2), "trials": len(betas), "seconds": round(seconds, 3),
                     "trials_per_s": round(len(betas) / seconds, 1)},
        "per_trial_loop": {"trials": n_loop, "seconds": round(loop_seconds, 2),
                           "trials_per_s": round(n_loop / loop_seconds, 2)},
        "speedup": round((len(betas) / seconds) / (n_loop / loop_seconds), 1),
        "max_abs_difference": float(np.abs(ours[:n_loop] - loop).max()),
        "max_abs_value": float(np.abs(loop).max()),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
