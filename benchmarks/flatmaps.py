"""Benchmark of the NeuroPictor flatmap representation (`fmrikit.data.flatmaps`).

On N trials of one subject (default: a simulated subject, pycortex S1 / fullhead, one session of N trials):
* baseline: what a lab notebook does per trial: scatter the betas into a NaN volume,
  ``cortex.quickflat.make_flatmap_image``, crop to the bounding box, NaN -> 0, ``skimage.transform.resize``
  (order 1, its default antialiasing) to size x size, zero outside the mask (box and mask taken from fmrikit's
  mapping so the outputs compare);
* fmrikit ``flatmap_dataset``: the cache end to end (checksum, mapping, streamed projection, float16 HDF5);
* fmrikit ``to_flatmaps``: the sparse operator alone on the same trials (mapping built beforehand, not timed).

Each run is a fresh Python process, so its peak RSS is its own. Reported: seconds, trials/s, speed-up over
the baseline, peak RSS, and the max abs difference between outputs (the baseline resamples with skimage's
Gaussian-antialiased bilinear, fmrikit with Pillow's triangle filter, so they differ by the resamplers; the
same pycortex crops resized with Pillow give the exactness of the operator itself).

    python benchmarks/flatmaps.py [--trials 200] [--size 256] [--root DIR --subject N] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _memory import peak_mb  # benchmarks/ is on sys.path when a script runs


def child_baseline(root: str, subject: int, size: int, trials: int, work: str) -> dict:
    from PIL import Image
    from skimage.transform import resize

    from fmrikit.data.dataset import read_betas, read_info
    from fmrikit.data.flatmaps.cache import read_flatmap_info
    from fmrikit.project import preproc_betas_path
    from fmrikit.io.pycortex import FLATMAP_HEIGHT, import_cortex, quiet_pycortex

    cortex = import_cortex()
    info = read_info(preproc_betas_path(root, subject))
    ref = read_flatmap_info(Path(work) / "ours_cache.h5").mapping  # box and mask to compare like with like
    r0, r1, c0, c1 = ref.bbox
    t0 = time.perf_counter()
    betas = read_betas(info.path, slice(0, trials))
    out, crops = np.empty((len(betas), size, size), np.float32), []
    for k, x in enumerate(betas):
        vol = np.full(info.volume_shape, np.nan, np.float32)
        vol[tuple(info.ijk.T)] = x
        with quiet_pycortex():
            img, _ = cortex.quickflat.make_flatmap_image(
                cortex.Volume(np.ascontiguousarray(np.swapaxes(vol, 0, 2)), info.pycortex_subject, info.pycortex_xfm),
                height=FLATMAP_HEIGHT)
        crop = np.nan_to_num(img[r0:r1, c0:c1])
        out[k] = resize(crop, (size, size), order=1) * ref.mask
        crops.append(crop)
    seconds = time.perf_counter() - t0
    pillow = np.stack([np.asarray(Image.fromarray(c.astype(np.float32), mode="F").resize((size, size), Image.BILINEAR))
                       for c in crops]) * ref.mask
    np.save(Path(work) / "baseline.npy", out)
    np.save(Path(work) / "pillow.npy", pillow)
    return {"seconds": seconds, "n": len(betas), "peak_rss_mb": peak_mb()}


def child_dataset(root: str, subject: int, size: int, work: str) -> dict:
    import shutil

    from fmrikit.data.flatmaps.cache import flatmap_dataset, read_flatmap_info
    from fmrikit.io.pycortex import import_cortex

    import_cortex()  # imported before the clock starts, as in the baseline
    t0 = time.perf_counter()
    path = flatmap_dataset(subject, root=root, size=size, overwrite=True)
    seconds = time.perf_counter() - t0
    shutil.copy(path, Path(work) / "ours_cache.h5")
    return {"seconds": seconds, "n": read_flatmap_info(path).n_trials, "peak_rss_mb": peak_mb()}


def child_operator(root: str, subject: int, size: int, trials: int, work: str) -> dict:
    from fmrikit.data.dataset import read_betas, read_info
    from fmrikit.data.flatmaps.operator import flatmap_mapping
    from fmrikit.project import preproc_betas_path

    from fmrikit.io.pycortex import import_cortex

    import_cortex()
    info = read_info(preproc_betas_path(root, subject))
    t0 = time.perf_counter()
    mapping = flatmap_mapping(info, size)
    build = time.perf_counter() - t0
    betas = read_betas(info.path, slice(0, trials))
    t0 = time.perf_counter()
    out = mapping.to_flatmaps(betas)
    seconds = time.perf_counter() - t0
    np.save(Path(work) / "ours.npy", out)
    return {"seconds": seconds, "n": len(betas), "build_seconds": build, "peak_rss_mb": peak_mb(),
            "n_voxels": info.n_voxels, "bbox": list(mapping.bbox), "mask_pixels": int(mapping.mask.sum())}


def _run(*args) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    proc = subprocess.run([sys.executable, __file__, "--child", json.dumps(args)], check=True, capture_output=True,
                          text=True, env=env)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def child_simulate(work: str, trials: int) -> dict:
    from fmrikit.data.preprocess import preprocess_nsd
    from fmrikit.data.simulate import simulate
    from fmrikit.data.world.config import SimulationConfig

    root = Path(work) / "project"
    if not (root / "sub-01").exists():
        cfg = SimulationConfig(n_subjects=1, sessions=[1], trials_per_session=trials, runs_per_session=4,
                               n_shared=20, image_size=32, noise=1.0, formats=["nifti"], seed=0)
        simulate(Path(work) / "nsd", cfg)
        preprocess_nsd(Path(work) / "nsd", 1, root=root, flatmap=False)
    return {"root": str(root)}


CHILDREN = {"baseline": child_baseline, "dataset": child_dataset, "operator": child_operator,
            "simulate": child_simulate}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=200, help="trials projected by the baseline and the operator")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--root", type=Path, default=None, help="a project folder with a preprocessed subject")
    ap.add_argument("--subject", type=int, default=1)
    ap.add_argument("--work", type=Path, default=None, help="keep the simulated subject and outputs here")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        name, *rest = json.loads(args.child)
        print(json.dumps(CHILDREN[name](*rest)))
        return

    work = args.work or Path(tempfile.mkdtemp(prefix="fmrikit-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    if args.root is None:  # in a child, so this process's peak RSS stays small
        root = _run("simulate", str(work), args.trials)["root"]
    else:
        root = args.root
    root, w = str(root), str(work)
    dataset = _run("dataset", root, args.subject, args.size, w)
    operator = _run("operator", root, args.subject, args.size, args.trials, w)
    base = _run("baseline", root, args.subject, args.size, args.trials, w)

    ours, baseline, pillow = (np.load(work / f"{k}.npy") for k in ("ours", "baseline", "pillow"))
    import h5py

    with h5py.File(work / "ours_cache.h5") as f:
        cached = f["flatmaps"][:len(ours)].astype(np.float32)
    scale = float(np.abs(baseline).max())

    print(f"subject {args.subject}: {operator['n_voxels']} voxels, {operator['n']} trials, {args.size}x{args.size} "
          f"images (crop {operator['bbox']} of the 512-px pycortex flatmap, {operator['mask_pixels']} pixels in "
          f"the mask)")
    print(f"{'run':<44}{'trials':>8}{'seconds':>10}{'trials/s':>11}{'speed-up':>10}{'peak RSS MiB':>14}")
    rows = [("baseline: pycortex + crop + skimage resize", base),
            ("fmrikit flatmap_dataset (end to end)", dataset),
            ("fmrikit to_flatmaps (operator only)", operator)]
    base_rate = base["n"] / base["seconds"]
    for name, r in rows:
        rate = r["n"] / r["seconds"]
        print(f"{name:<44}{r['n']:>8}{r['seconds']:>10.3f}{rate:>11.0f}{rate / base_rate:>9.0f}x"
              f"{r['peak_rss_mb']:>14.0f}")
    print(f"mapping build (flatmap_mapping, once per dataset): {operator['build_seconds']:.2f} s")
    print(f"{f'difference between outputs (|values| up to {scale:.2f})':<50}{'max abs':>9}{'mean abs':>11}{'r':>9}")
    for name, a, b in [("to_flatmaps vs baseline (skimage resize)", ours, baseline),
                       ("to_flatmaps vs pycortex crops + Pillow resize", ours, pillow),
                       ("cached float16 vs to_flatmaps", cached, ours)]:
        diff = np.abs(a - b)
        r = np.corrcoef(a.ravel(), b.ravel())[0, 1]
        print(f"  {name:<48}{diff.max():>9.2e}{diff.mean():>11.2e}{r:>9.5f}")


if __name__ == "__main__":
    main()
