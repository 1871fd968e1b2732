"""Benchmark of the universal encoder on CPU.

* ``encode`` throughput: images per second of :func:`fmrikit.methods.encoder.predict.encode_images` (batch 32,
  no flatmaps) on a folder of 64x64 images, with a default-size encoder (C = 64, E = 256) over
  ``--voxels`` voxels and EfficientNet-Lite0 patch features (the quickstart's), end to end
  (image reading, features, prediction, HDF5 and 4D NIfTI writing);
* training throughput: (image, voxel) samples per second of :func:`fmrikit.methods.encoder.fit.fit_encoder`
  (32 images x 5000 voxels per step);
* peak memory of training steps vs the subject's voxel count (10k to 400k voxels): each count runs
  in a fresh process; the peak RSS above the RSS before training, less the Adam state of the
  embeddings (2 x V x E x 4 bytes), should not grow with V (the baseline: the same steps with
  every voxel in each step instead of a 5000-voxel sample, run up to 20k voxels: at 100k it
  needs more than 24 GiB);
* ridge baseline fit time: himalaya ``RidgeCV`` (:func:`fmrikit.engine.ridge.fit_ridge`, 5-fold CV, one
  alpha per voxel) vs scikit-learn ``RidgeCV(alpha_per_target=True)`` (efficient leave-one-out)
  on the same data and alphas.

    python benchmarks/encoder.py [--voxels 15000] [--images 96] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _memory import peak_mb, rss_mb  # benchmarks/ is on sys.path when a script runs

LEVELS, PATCHES, CHANNELS = 5, 49, 192  # EfficientNet-Lite0 patch features


def _data(n_voxels: int, n_images: int, seed: int = 0):
    import torch

    from fmrikit.data.dataset import DatasetInfo
    from fmrikit.methods.encoder.fit import EncoderData

    rng = np.random.default_rng(seed)
    feats = torch.from_numpy(rng.normal(size=(n_images, LEVELS, PATCHES, CHANNELS)).astype(np.float16))
    y = torch.from_numpy(rng.normal(size=(n_images, n_voxels)).astype(np.float32))
    info = DatasetInfo(path=None, subject=1, stim_id=np.zeros(0), session=np.zeros(0), shared=np.zeros(0, bool),
                       ijk=np.zeros((n_voxels, 3), int), affine=np.eye(4), volume_shape=(1, 1, 1), stimuli_path="",
                       stimuli_dataset="", pycortex_subject="", pycortex_xfm="", ncsnr=None)
    return EncoderData(key="sub-01", info=info, train_stim=np.arange(n_images), train_y=y, train_features=feats,
                       test_stim=np.zeros(0, np.int64), test_y=y[:0], test_features=feats[:0])


def child_train(n_voxels: int, voxels_per_image: int, steps: int) -> dict:
    """Train ``steps`` steps of 32 images on one subject of ``n_voxels`` voxels; time and memory."""
    import torch

    from fmrikit.methods.encoder.model import UniversalEncoder
    from fmrikit.engine.distributed import Distributed
    from fmrikit.methods.encoder.fit import fit_encoder
    from fmrikit.methods.encoder.settings import EncoderSettings

    data = _data(n_voxels, 32 * steps)
    torch.manual_seed(0)
    model = UniversalEncoder({"sub-01": n_voxels}, LEVELS, PATCHES, CHANNELS)
    before = rss_mb()
    t0 = time.perf_counter()
    fit_encoder(model, [data], EncoderSettings(epochs=1, batch_images=32, voxels_per_image=voxels_per_image),
                Distributed(0, 1, torch.device("cpu")))
    seconds = time.perf_counter() - t0
    adam_mb = 2 * sum(p.numel() for p in model.parameters()) * 4 / 2 ** 20
    return {"n_voxels": n_voxels, "voxels_per_image": min(voxels_per_image, n_voxels), "steps": steps,
            "seconds": seconds, "samples_per_s": steps * 32 * min(voxels_per_image, n_voxels) / seconds,
            "step_memory_mb": peak_mb() - before - adam_mb, "adam_mb": adam_mb}


def child_encode(work: Path, n_voxels: int, n_images: int) -> dict:
    import torch
    from PIL import Image

    from fmrikit.methods.encoder.predict import encode_images
    from fmrikit.data.preprocess import preprocess_nsd
    from fmrikit.data.simulate import simulate
    from fmrikit.data.world.config import SimulationConfig
    from fmrikit.methods.encoder.model import UniversalEncoder
    from fmrikit.methods.encoder.runs import write_encoder
    from fmrikit.features.registry import feature_spec

    nsd = simulate(work / "nsd", SimulationConfig(n_subjects=1, sessions=[1], trials_per_session=60, n_shared=8),
                   overwrite=True)
    root = work / "proj"
    preprocess_nsd(nsd, 1, root=root, flatmap=False, overwrite=True)
    torch.manual_seed(0)
    model = UniversalEncoder({"sub-01": n_voxels}, LEVELS, PATCHES, CHANNELS)
    grid = (81, 104, 83)  # NSD func1pt8mm
    entry = {"dataset": "", "n_voxels": n_voxels, "affine": np.eye(4).tolist(), "volume_shape": list(grid),
             "pycortex_subject": ""}
    rng = np.random.default_rng(0)
    flat = rng.choice(int(np.prod(grid)), n_voxels, replace=False)
    model.voxel_index["sub-01"].ijk.copy_(torch.from_numpy(np.stack(np.unravel_index(flat, grid), 1)))
    out = work / "encoder"
    write_encoder(out, model, {"sub-01": entry}, spec=feature_spec("effnet-lite0", None), roi="nsdgeneral",
                  history=[], scores={}, command="benchmark", parameters={}, inputs=[], seed=0, run_id="bench",
                  overwrite=True)
    images = work / "images"
    images.mkdir(exist_ok=True)
    for k in range(n_images):
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(images / f"img_{k:04d}.png")
    encode_images(images, 1, model=out, root=root, out=work / "warm", max_flatmaps=0, device="cpu", overwrite=True)
    t0 = time.perf_counter()
    encode_images(images, 1, model=out, root=root, out=work / "enc", max_flatmaps=0, batch_size=32, device="cpu",
                  overwrite=True)
    seconds = time.perf_counter() - t0
    return {"n_images": n_images, "n_voxels": n_voxels, "seconds": seconds, "images_per_s": n_images / seconds}


def child_ridge(n: int, d: int, v: int, which: str) -> dict:
    from fmrikit.engine.ridge import DEFAULT_ALPHAS, fit_ridge

    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, d)).astype(np.float32)
    y = (x[:, :50] @ rng.normal(size=(50, v)) + 5 * rng.normal(size=(n, v))).astype(np.float32)
    t0 = time.perf_counter()
    if which == "himalaya":
        fit_ridge(x, y, cv=5)
    else:
        from sklearn.linear_model import RidgeCV

        z = (x - x.mean(0)) / x.std(0)
        RidgeCV(alphas=DEFAULT_ALPHAS, alpha_per_target=True).fit(z, y)
    return {"which": which, "seconds": time.perf_counter() - t0, "n": n, "d": d, "v": v}


def _run(*args) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", json.dumps(args)], check=True, capture_output=True,
                         text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--voxels", type=int, default=15000, help="voxels of the encode benchmark")
    parser.add_argument("--images", type=int, default=96, help="images of the encode benchmark")
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        name, *rest = json.loads(args.child)
        if name == "encode":
            rest[0] = Path(rest[0])
        print(json.dumps({"train": child_train, "encode": child_encode, "ridge": child_ridge}[name](*rest)))
        return
    work = args.work or Path(tempfile.mkdtemp(prefix="fmrikit-bench-encoder-"))
    enc = _run("encode", str(work), args.voxels, args.images)
    print(f"encode: {enc['images_per_s']:.2f} images/s ({enc['n_images']} images, {enc['n_voxels']} voxels, "
          f"batch 32, end to end)")
    train = _run("train", 20000, 5000, 4)
    print(f"training: {train['samples_per_s']:.0f} (image, voxel) samples/s, {train['seconds'] / 4:.2f} s per step "
          f"(32 images x 5000 voxels)")
    print("\npeak step memory (MB, peak RSS above the pre-training RSS, less Adam state) vs voxels per subject:")
    print(f"{'voxels':>8} {'sampled 5000':>13} {'all voxels per step (baseline)':>31}")
    sampled, full = {}, {}
    for v in (10000, 20000, 100000, 400000):
        sampled[v] = _run("train", v, 5000, 2)["step_memory_mb"]
        full[v] = _run("train", v, v, 2)["step_memory_mb"] if v <= 20000 else float("nan")  # 100k: out of memory
        print(f"{v:>8} {sampled[v]:>13.0f} {full[v]:>31.0f}")
    print(f"ratio 400k / 10k voxels, sampled: {sampled[400000] / sampled[10000]:.2f}; "
          f"baseline 20k / 10k: {full[20000] / full[10000]:.2f}")
    print("\nridge baseline fit (500 images, 2000 features, 5000 voxels, 17 alphas):")
    him, skl = _run("ridge", 500, 2000, 5000, "himalaya"), _run("ridge", 500, 2000, 5000, "sklearn")
    print(f"  himalaya RidgeCV, 5-fold CV:             {him['seconds']:.2f} s")
    print(f"  scikit-learn RidgeCV(alpha_per_target), LOO: {skl['seconds']:.2f} s")
    print(f"  ratio scikit-learn / himalaya: {skl['seconds'] / him['seconds']:.2f}")


if __name__ == "__main__":
    main()
