"""NSD at its real sizes (issue 16), on synthetic files of NSD's exact layout; every ratio against a floor
measured in the same run, every measurement in a fresh process (peak RSS is that process's own).

Files (written once under ``--work``): subject 1's grid 81 x 104 x 83, 750 trials per session, int16 betas
(N(0.5, 1.5) % signal change x 300, 0 outside the brainmask), as ``.nii.gz`` (subj01) and as HDF5 ``/betas``
(750, 83, 104, 81) with NSD's chunks (750, 1, 1, 1) (subj02, the same values); a brainmask of about 290,000
voxels (a liberal 1.7 L mask at 1.8 mm; NSD's exact count is not published) holding an nsdgeneral ROI of
exactly 15,724 voxels; ``nsd_expdesign.mat``, ``responses.tsv`` and a small stimulus brick.

Parts (``--parts``):

* ``preprocess``: seconds per session and peak RSS of ``preprocess`` (nsdgeneral) over 1 and N sessions, NIfTI
  and HDF5, against the physical floor measured on the same files (NIfTI: ``gzip -dc > /dev/null`` and a zlib
  stream in Python; HDF5: reading exactly the masked voxels' chunks) and against the naive nibabel script
  (``get_fdata``, mask, z-score); the brainmask (roi-train's coarse region) over 1 session.
* ``troi``: TROI stage 1 over the brainmask at hidden 256 and at MindEye2's 4096: seconds per epoch (one NSD
  session of training trials, batch 24) and peak RSS, with the bytes of the input layer (+ gate, gradients,
  AdamW state) and of the data; where a size does not fit, a measured extrapolation from voxel subsets.
* ``encoder``: ``pretrain encoder`` steps over 8 subjects x 15,000 voxels vs 8 x 1,500 (memory flat in voxels).
* ``flatmaps``: the flatmap cache of 30,000 trials x 15,724 voxels at 256 px, built by fmrikit's cache builder
  (a synthetic pixel-voxel operator stands in for pycortex's): file size, seconds, peak RSS.

    python benchmarks/nsd_scale.py [--quick] [--sessions 4] [--parts preprocess,troi,encoder,flatmaps]
                                   [--work DIR] [--keep]

``--quick`` runs every part at a small size (75 trials per session, 2 sessions, fewer steps) in a few minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _memory import peak_mb, rss_mb  # benchmarks/ is on sys.path when a script runs

GRID = (81, 104, 83)
AFFINE = np.array([[-1.8, 0, 0, 72.0], [0, 1.8, 0, -93.6], [0, 0, 1.8, -74.7], [0, 0, 0, 1]])
NSDGENERAL = 15_724
BRAINMASK = 290_000
BETAS = "betas_fithrf_GLMdenoise_RR"
N_IMAGES = 10_000  # the subject's images; 1,000 shared


# -- the synthetic NSD tree ------------------------------------------------------------------------------------

def masks() -> tuple[np.ndarray, np.ndarray]:
    """Brainmask (an ellipsoid of about BRAINMASK voxels) and nsdgeneral (the NSDGENERAL brainmask voxels
    nearest a posterior point: one compact region, like the visual cortex)."""
    centre = (np.array(GRID) - 1) / 2
    grid = np.stack(np.meshgrid(*[np.arange(n) for n in GRID], indexing="ij"), -1).astype(np.float64)
    d = (grid - centre) / (np.array(GRID) / 2)
    r = np.sqrt((d ** 2).sum(-1))
    brain = r <= np.quantile(r, BRAINMASK / r.size)
    point = centre + np.array([0, -0.55, -0.1]) * np.array(GRID) / 2
    dist = np.where(brain, np.linalg.norm(grid - point, axis=-1), np.inf)
    roi = np.zeros(GRID, bool)
    roi.flat[np.argsort(dist, axis=None)[:NSDGENERAL]] = True
    return brain, roi


def make_tree(root: Path, sessions: int, trials: int, seed: int = 0) -> None:
    """Write the synthetic tree (run in a child process: the parent stays small)."""
    import gzip

    import h5py
    import nibabel as nib
    import scipy.io

    rng = np.random.default_rng(seed)
    brain, roi = masks()
    n_design = 40
    runs = 12
    master = np.concatenate([rng.permutation(np.arange(1, N_IMAGES + 1)) for _ in range(3)])
    master = np.resize(master, n_design * trials)
    subjectim = np.tile(np.arange(1, N_IMAGES + 1), (8, 1))
    stimpattern = np.zeros((n_design, runs, -(-trials // runs) + 1))
    per_run = np.full(runs, trials // runs) + (np.arange(runs) < trials % runs)
    for r, n in enumerate(per_run):
        stimpattern[:, r, :n] = 1
    exp = root / "nsddata/experiments/nsd"
    exp.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(exp / "nsd_expdesign.mat", {"masterordering": master[None].astype(float),
                                                 "subjectim": subjectim.astype(float),
                                                 "sharedix": np.arange(1, 1001)[None].astype(float),
                                                 "stimpattern": stimpattern})
    stim = root / "nsddata_stimuli/stimuli/nsd"
    stim.mkdir(parents=True, exist_ok=True)
    with h5py.File(stim / "nsd_stimuli.hdf5", "w") as f:  # small images: their bytes are not what is measured
        f["imgBrick"] = rng.integers(0, 255, (N_IMAGES, 8, 8, 3), dtype=np.uint8)
    index = np.nonzero(brain.ravel(order="F"))[0]
    for subject, fmt in ((1, "nifti"), (2, "hdf5")):
        sdir = root / f"nsddata/ppdata/subj{subject:02d}"
        (sdir / "func1pt8mm/roi").mkdir(parents=True, exist_ok=True)
        (sdir / "behav").mkdir(exist_ok=True)
        nib.save(nib.Nifti1Image(brain.astype(np.int16), AFFINE), sdir / "func1pt8mm/brainmask.nii.gz")
        nib.save(nib.Nifti1Image(np.where(roi, 1, np.where(brain, 0, -1)).astype(np.int16), AFFINE),
                 sdir / "func1pt8mm/roi/nsdgeneral.nii.gz")
        with open(sdir / "behav/responses.tsv", "w") as f:
            f.write("SUBJECT\tSESSION\tRUN\tTRIAL\t73KID\n")
            for t in range(sessions * trials):
                f.write(f"{subject}\t{t // trials + 1}\t1\t{t % trials + 1}\t{master[t]}\n")
        bdir = root / f"nsddata_betas/ppdata/subj{subject:02d}/func1pt8mm/{BETAS}"
        bdir.mkdir(parents=True, exist_ok=True)
        for s in range(1, sessions + 1):
            vol_rng = np.random.default_rng([seed, s])  # the same values in both formats
            if fmt == "nifti":
                header = nib.Nifti1Header()
                header.set_data_shape((*GRID, trials))
                header.set_data_dtype(np.int16)
                header.set_qform(AFFINE, code=1)
                header.set_sform(AFFINE, code=1)
                header["vox_offset"] = 352
                with gzip.open(bdir / f"betas_session{s:02d}.nii.gz", "wb", compresslevel=6) as out:
                    header.write_to(out)
                    for block in _volumes(vol_rng, index, trials):
                        out.write(block.tobytes(order="F"))
            else:
                with h5py.File(bdir / f"betas_session{s:02d}.hdf5", "w") as f:
                    ds = f.create_dataset("betas", (trials, *GRID[::-1]), np.int16, chunks=(trials, 1, 1, 1))
                    data = np.concatenate(list(_volumes(vol_rng, index, trials)), axis=3)  # (X, Y, Z, T)
                    for z in range(GRID[2]):  # (T, Z, Y, X) in h5py order
                        ds[:, z] = np.transpose(data[:, :, z], (2, 1, 0))
                    del data


def _volumes(rng, index: np.ndarray, trials: int, block: int = 50):
    """Blocks of volumes (X, Y, Z, n) int16, zero outside the brain."""
    for start in range(0, trials, block):
        n = min(block, trials - start)
        flat = np.zeros((np.prod(GRID), n), np.int16)
        flat[index] = np.rint(rng.normal(0.5, 1.5, (len(index), n)) * 300).astype(np.int16)
        yield flat.reshape(*GRID, n, order="F")


# -- children -------------------------------------------------------------------------------------------------

def anon_mb() -> float:
    """Anonymous resident memory of this process (MiB): what cannot be paged out on a machine without swap
    (file-backed pages, such as a memory-mapped file's, can)."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) / 1024 for line in f if line.startswith("RssAnon"))


def reset_peak() -> None:
    """Start a new peak-RSS window (Linux: VmHWM, see proc(5) clear_refs)."""
    Path("/proc/self/clear_refs").write_text("5")


def window_peak_mb() -> float:
    """Peak RSS since :func:`reset_peak` (MiB)."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) / 1024 for line in f if line.startswith("VmHWM"))


def step_times(module) -> list[float]:
    """Time stamps of the end of each optimiser step of a training loop (``module`` is where the loop imported
    ``optimizer_step``): steps are timed apart from the per-epoch work (selection, checkpoint)."""
    stamps: list[float] = []
    original = module.optimizer_step

    def timed(*args, **kwargs):
        original(*args, **kwargs)
        stamps.append(time.perf_counter())

    module.optimizer_step = timed
    return stamps


def session_file(root: Path, subject: int, session: int) -> Path:
    ext = "nii.gz" if subject == 1 else "hdf5"
    return root / f"nsddata_betas/ppdata/subj{subject:02d}/func1pt8mm/{BETAS}/betas_session{session:02d}.{ext}"


def child_floor_gzip(root: Path, sessions: int) -> dict:
    t0 = time.perf_counter()
    for s in range(1, sessions + 1):
        subprocess.run(f"gzip -dc {session_file(root, 1, s)} > /dev/null", shell=True, check=True)
    return {"seconds": time.perf_counter() - t0}


def child_floor_zlib(root: Path, sessions: int, module: str = "zlib") -> dict:
    """Decompress the session files in 1 MiB blocks with ``zlib`` (the floor) or ISA-L (``isal``), no other work."""
    from importlib import import_module

    inflate = import_module("isal.isal_zlib" if module == "isal" else "zlib")
    t0 = time.perf_counter()
    for s in range(1, sessions + 1):
        d = inflate.decompressobj(31)
        with open(session_file(root, 1, s), "rb") as f:
            for block in iter(lambda: f.read(2 ** 20), b""):
                d.decompress(block)
    return {"seconds": time.perf_counter() - t0}


def child_floor_h5(root: Path, sessions: int, roi: str = "nsdgeneral") -> dict:
    """Read exactly the chunks of the ROI's voxels (one chunk per voxel), raw."""
    import h5py

    ijk = np.argwhere(masks()[1 if roi == "nsdgeneral" else 0])
    t0 = time.perf_counter()
    for s in range(1, sessions + 1):
        with h5py.File(session_file(root, 2, s), "r") as f:
            dsid = f["betas"].id
            for x, y, z in ijk:
                dsid.read_direct_chunk((0, int(z), int(y), int(x)))
    return {"seconds": time.perf_counter() - t0}


def child_preprocess(root: Path, sessions: int, subject: int, roi: str, keep: str = "") -> dict:
    """``preprocess`` of the first sessions into a temporary project (or ``keep``)."""
    from fmrikit.data.preprocess import preprocess_nsd

    before = rss_mb()
    with tempfile.TemporaryDirectory(dir=root) as out:
        t0 = time.perf_counter()
        res = preprocess_nsd(root, subject, root=keep or out, sessions=list(range(1, sessions + 1)), roi=roi,
                             flatmap=False, overwrite=True)
        seconds = time.perf_counter() - t0
    return {"seconds": seconds, "rss_before_mb": before, "n_voxels": res.n_voxels}


def child_naive(root: Path, sessions: int) -> dict:
    """What a lab notebook does: the whole volume as float64, mask, z-score."""
    import nibabel as nib

    roi = nib.load(root / "nsddata/ppdata/subj01/func1pt8mm/roi/nsdgeneral.nii.gz").get_fdata() > 0
    t0 = time.perf_counter()
    blocks = []
    for s in range(1, sessions + 1):
        x = nib.load(session_file(root, 1, s)).get_fdata()[roi].T / 300
        blocks.append(((x - x.mean(0)) / x.std(0)).astype(np.float32))
    return {"seconds": time.perf_counter() - t0}


def child_troi(root: Path, hidden: int, fraction: float, steps: int, sessions: int = 1,
               in_memory_bytes: int | None = None) -> dict:
    """TROI stage 1 over the brainmask dataset of the first ``sessions`` sessions (``fraction`` of its voxels):
    ``steps`` steps of 24 trials; ``in_memory_bytes`` overrides where the training betas are memory-mapped."""
    import torch

    import fmrikit.data.splits as splits
    import fmrikit.methods.mindeye.loop as loop
    from fmrikit.data.splits import load_subject_data
    from fmrikit.engine.distributed import distributed
    from fmrikit.methods.mindeye.model import MindEyeDecoder
    from fmrikit.methods.mindeye.settings import TrainSettings
    from fmrikit.methods.troi.settings import TroiSettings
    from fmrikit.methods.troi.stages import _restrict, _stage1

    torch.set_num_threads(2)
    dataset = next(Path(root, "troi-proj/sub-01").glob("*brainmask*_betas.h5"))
    if in_memory_bytes is not None:
        splits.IN_MEMORY_BYTES = in_memory_bytes
    t0 = time.perf_counter()
    data = load_subject_data(dataset, "sub-01", sessions=list(range(1, sessions + 1)))
    load_seconds = time.perf_counter() - t0
    anon = [anon_mb()]
    n_train, n_all = len(data.train_x), data.n_voxels
    if fraction < 1:
        keep = np.sort(np.random.default_rng(0).choice(n_all, int(n_all * fraction), replace=False))
        data = _restrict(data, keep)
    data_mb = data.train_x.numel() * 4 / 2 ** 20
    rows = np.arange(min(steps * 24, n_train))
    timed = type(data)(key=data.key, info=data.info, columns=data.columns, train_x=data.train_x[rows],
                       train_stim=data.train_stim[rows], test_x=data.test_x, test_stim=data.test_stim)
    embed = 1536  # gabor's pooled embedding
    model = MindEyeDecoder({}, embed_dim=embed, hidden=hidden, n_blocks=2, proj_hidden=hidden)
    targets = torch.randn(len(rows), embed)
    troi = TroiSettings(budget=3000, stage1_epochs=1, warmup_epochs=0)
    stamps = step_times(loop)
    before = rss_mb()
    reset_peak()  # the training's peak, not the loading's
    with tempfile.TemporaryDirectory(dir=root) as ckpt, distributed("cpu") as ctx:
        _stage1(model, timed, targets, troi, TrainSettings(batch_size=24, epochs=1), ctx, False, Path(ckpt),
                resume=False)
        end = time.perf_counter()
        anon.append(anon_mb())
    per_step = float(np.median(np.diff(stamps)))
    per_epoch_work = end - stamps[-1]  # the epoch's low-pass selection and checkpoint
    v = data.n_voxels
    return {"hidden": hidden, "n_voxels": v, "n_voxels_brainmask": n_all, "n_train": n_train,
            "load_seconds": load_seconds, "anon_mb": max(anon), "train_peak_mb": window_peak_mb(),
            "s_per_step": per_step, "s_per_epoch": per_step * -(-n_train // 24) + per_epoch_work,
            "rss_before_mb": before, "data_mb": data_mb,
            "input_layer_mb": (v * hidden + hidden + 2 * v) * 4 * 4 / 2 ** 20}  # weights, grads, 2 AdamW states


def child_encoder(n_subjects: int, n_voxels: int, n_images: int, steps: int) -> dict:
    """``steps`` steps of the universal encoder over ``n_subjects`` subjects of ``n_voxels`` voxels."""
    import torch

    import fmrikit.methods.encoder.fit as fit
    from fmrikit.data.dataset import DatasetInfo
    from fmrikit.engine.distributed import distributed
    from fmrikit.methods.encoder.fit import EncoderData, fit_encoder
    from fmrikit.methods.encoder.model import UniversalEncoder
    from fmrikit.methods.encoder.settings import EncoderSettings

    torch.set_num_threads(2)
    levels, patches, channels = 5, 49, 192  # EfficientNet-Lite0 patch features
    rng = np.random.default_rng(0)
    data = []
    for s in range(n_subjects):
        info = DatasetInfo(path=None, subject=s + 1, stim_id=np.zeros(0), session=np.zeros(0),
                           shared=np.zeros(0, bool), ijk=np.zeros((n_voxels, 3), int), affine=np.eye(4),
                           volume_shape=(1, 1, 1), stimuli_path="", stimuli_dataset="", pycortex_subject="",
                           pycortex_xfm="", ncsnr=None)
        feats = torch.from_numpy(rng.normal(size=(n_images, levels, patches, channels)).astype(np.float16))
        y = torch.from_numpy(rng.normal(size=(n_images, n_voxels)).astype(np.float32))
        data.append(EncoderData(key=f"sub-{s + 1:02d}", info=info, train_stim=np.arange(n_images), train_y=y,
                                train_features=feats, test_stim=np.zeros(0, np.int64), test_y=y[:0],
                                test_features=feats[:0]))
    torch.manual_seed(0)
    model = UniversalEncoder({d.key: n_voxels for d in data}, levels, patches, channels)
    batch = 32
    settings = EncoderSettings(epochs=1, batch_images=batch, voxels_per_image=5000)
    for d in data:  # one epoch = ``steps`` steps
        n = steps * batch // n_subjects
        d.train_y, d.train_features = d.train_y[:n], d.train_features[:n]
    stamps = step_times(fit)
    before = rss_mb()
    with distributed("cpu") as ctx:
        fit_encoder(model, data, settings, ctx)
    state_mb = 4 * sum(p.numel() for p in model.parameters()) * 4 / 2 ** 20  # weights, gradients, 2 Adam states
    return {"n_subjects": n_subjects, "n_voxels": n_voxels, "s_per_step": float(np.median(np.diff(stamps))),
            "rss_before_mb": before, "state_mb": state_mb,
            "data_mb": n_subjects * n_images * (n_voxels * 4 + levels * patches * channels * 2) / 2 ** 20}


def child_flatmaps(root: Path, trials: int, size: int) -> dict:
    """fmrikit's flatmap cache builder on a ``trials`` x NSDGENERAL dataset, with a synthetic operator."""
    import h5py
    from scipy import sparse

    import fmrikit.data.flatmaps.cache as cache
    from fmrikit.data.flatmaps.operator import FlatmapMapping

    proj = root / "flatmap-proj"
    sub = proj / "sub-01"
    sub.mkdir(parents=True, exist_ok=True)
    dataset = sub / "sub-01_desc-preproc_betas.h5"
    ijk = np.argwhere(masks()[1]).astype(np.int32)
    rng = np.random.default_rng(0)
    with h5py.File(dataset, "w") as f:  # the dataset contract, written directly (preprocess is measured above)
        ds = f.create_dataset("betas", (trials, len(ijk)), np.float32, chunks=(max(1, 2 ** 21 // (4 * len(ijk))),
                                                                               len(ijk)))
        for s in range(0, trials, 1000):
            ds[s:s + 1000] = rng.normal(size=(min(1000, trials - s), len(ijk))).astype(np.float32)
        f["trials/stim_id"] = np.arange(trials) % N_IMAGES
        f["trials/session"] = (np.arange(trials) // 750 + 1).astype(np.int16)
        f["trials/shared"] = np.arange(trials) % N_IMAGES < 1000
        f["voxels/ijk"] = ijk
        f.attrs.update({"subject": 1, "affine": AFFINE, "volume_shape": np.array(GRID), "stimuli_path": "",
                        "stimuli_dataset": "", "pycortex_subject": "synthetic", "pycortex_xfm": "synthetic"})
    # a flatmap operator like pycortex's over nsdgeneral: ~60% of the pixels covered, each averaging 3 voxels
    pixels = np.nonzero(rng.random(size * size) < 0.6)[0]
    cols = rng.integers(0, len(ijk), (len(pixels), 3))
    matrix = sparse.csr_matrix((np.full(cols.size, 1 / 3, np.float32), (np.repeat(pixels, 3), cols.ravel())),
                               shape=(size * size, len(ijk)))
    mask = np.zeros(size * size, bool)
    mask[pixels] = True
    mapping = FlatmapMapping(matrix=matrix, mask=mask.reshape(size, size), ijk=ijk, size=size, bbox=(0, 1, 0, 1),
                             height=1024, pycortex_subject="synthetic", pycortex_xfm="synthetic")
    cache.flatmap_mapping = lambda *args, **kwargs: mapping  # pycortex's pixel map is what is not available
    before = rss_mb()
    t0 = time.perf_counter()
    path = cache.flatmap_dataset(1, root=proj, size=size)
    seconds = time.perf_counter() - t0
    result = {"trials": trials, "size": size, "seconds": seconds, "bytes": path.stat().st_size,
              "dataset_bytes": dataset.stat().st_size, "rss_before_mb": before}
    shutil.rmtree(proj)
    return result


CHILDREN = {"make": make_tree, "floor_gzip": child_floor_gzip, "floor_zlib": child_floor_zlib,
            "floor_h5": child_floor_h5, "preprocess": child_preprocess, "naive": child_naive, "troi": child_troi,
            "encoder": child_encoder, "flatmaps": child_flatmaps}


def measure(name: str, **kwargs) -> dict:
    """Run one child in a fresh process; its result with ``peak_rss_mb``."""
    proc = subprocess.run([sys.executable, __file__, "--child", name, "--kwargs", json.dumps(kwargs, default=str)],
                          capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    if proc.returncode:
        raise SystemExit(f"{name} {kwargs} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _child(name: str, kwargs: dict) -> None:
    for key in ("root",):
        if key in kwargs:
            kwargs[key] = Path(kwargs[key])
    result = CHILDREN[name](**kwargs) or {}
    print(json.dumps({**result, "peak_rss_mb": peak_mb()}))


# -- the report -------------------------------------------------------------------------------------------------

def part_preprocess(root: Path, sessions: int, trials: int) -> list[str]:
    lines = []
    r = 2  # best of two rounds, each running every measurement once (interleaved: the machine is shared)
    specs = {"gz": ("floor_gzip", dict(sessions=sessions)), "zl": ("floor_zlib", dict(sessions=sessions)),
             "isal": ("floor_zlib", dict(sessions=sessions, module="isal")),
             "h5": ("floor_h5", dict(sessions=sessions)), "h5_brain": ("floor_h5", dict(sessions=1, roi="brainmask")),
             "nii1": ("preprocess", dict(sessions=1, subject=1, roi="nsdgeneral")),
             "niin": ("preprocess", dict(sessions=sessions, subject=1, roi="nsdgeneral")),
             "h51": ("preprocess", dict(sessions=1, subject=2, roi="nsdgeneral")),
             "h5n": ("preprocess", dict(sessions=sessions, subject=2, roi="nsdgeneral")),
             "brain": ("preprocess", dict(sessions=1, subject=1, roi="brainmask")),
             "brain_h5": ("preprocess", dict(sessions=1, subject=2, roi="brainmask"))}
    rounds = [{k: measure(name, root=root, **kw) for k, (name, kw) in specs.items()} for _ in range(r)]
    best = {k: {**min((run[k] for run in rounds), key=lambda x: x["seconds"]),
                "peak_rss_mb": max(run[k]["peak_rss_mb"] for run in rounds)} for k in specs}
    gz, zl, isal, h5, h5_brain, nii1, niin, h51, h5n, brain, brain_h5 = (best[k] for k in specs)
    naive = measure("naive", root=root, sessions=1)
    floor_nii = min(gz["seconds"], zl["seconds"]) / sessions
    floor_h5 = h5["seconds"] / sessions
    per = lambda r, n: r["seconds"] / n  # noqa: E731
    added = lambda one, many: (many["seconds"] - one["seconds"]) / max(1, sessions - 1)  # noqa: E731
    size = session_file(root, 1, 1).stat().st_size / 2 ** 20
    lines.append(f"preprocess, best of {r} runs (nsdgeneral {NSDGENERAL} voxels; {trials} trials/session; .nii.gz "
                 f"{size:.0f} MiB, HDF5 {session_file(root, 2, 1).stat().st_size / 2 ** 20:.0f} MiB per session)")
    lines.append(f"  {'run':<46}{'s/session':>10}{'x floor':>9}{'peak RSS MiB':>14}")
    rows = [("floor NIfTI: gzip -dc > /dev/null", gz["seconds"] / sessions, None, None),
            ("floor NIfTI: zlib stream in Python", zl["seconds"] / sessions, None, zl["peak_rss_mb"]),
            ("decompression alone with ISA-L (isal)", isal["seconds"] / sessions,
             isal["seconds"] / sessions / floor_nii, isal["peak_rss_mb"]),
            ("fmrikit NIfTI, 1 session", per(nii1, 1), per(nii1, 1) / floor_nii, nii1["peak_rss_mb"]),
            (f"fmrikit NIfTI, {sessions} sessions", per(niin, sessions), per(niin, sessions) / floor_nii,
             niin["peak_rss_mb"]),
            ("fmrikit NIfTI, each session after the first", added(nii1, niin), added(nii1, niin) / floor_nii, None),
            ("naive nibabel script, 1 session", per(naive, 1), per(naive, 1) / floor_nii, naive["peak_rss_mb"]),
            (f"fmrikit NIfTI brainmask ({brain['n_voxels']} voxels), 1 session", per(brain, 1),
             per(brain, 1) / floor_nii, brain["peak_rss_mb"]),
            ("floor HDF5: the masked voxels' chunks", h5["seconds"] / sessions, None, h5["peak_rss_mb"]),
            ("fmrikit HDF5, 1 session", per(h51, 1), per(h51, 1) / floor_h5, h51["peak_rss_mb"]),
            (f"fmrikit HDF5, {sessions} sessions", per(h5n, sessions), per(h5n, sessions) / floor_h5,
             h5n["peak_rss_mb"]),
            ("fmrikit HDF5, each session after the first", added(h51, h5n), added(h51, h5n) / floor_h5, None),
            ("floor HDF5 brainmask: its voxels' chunks", h5_brain["seconds"], None, h5_brain["peak_rss_mb"]),
            ("fmrikit HDF5 brainmask, 1 session", per(brain_h5, 1), per(brain_h5, 1) / h5_brain["seconds"],
             brain_h5["peak_rss_mb"])]
    for name, s, ratio, rss in rows:
        lines.append(f"  {name:<46}{s:>10.2f}{'' if ratio is None else f'{ratio:.2f}':>9}"
                     f"{'' if rss is None else f'{rss:.0f}':>14}")
    lines.append(f"  peak RSS {sessions} sessions / 1 session: NIfTI {niin['peak_rss_mb'] / nii1['peak_rss_mb']:.2f}, "
                 f"HDF5 {h5n['peak_rss_mb'] / h51['peak_rss_mb']:.2f} (flat: ~1); RSS after imports "
                 f"{nii1['rss_before_mb']:.0f} MiB")
    return lines


def part_troi(root: Path, sessions: int, quick: bool) -> list[str]:
    measure("preprocess", root=root, sessions=sessions, subject=1, roi="brainmask", keep=str(root / "troi-proj"))
    steps = 3 if quick else 4
    runs = [measure("troi", root=root, hidden=256, fraction=1.0, steps=steps)]
    fractions = (1 / 32, 1 / 8) if quick else (1 / 16, 1 / 4)
    runs += [measure("troi", root=root, hidden=4096, fraction=f, steps=steps) for f in fractions]
    lines = ["TROI stage 1 over the brainmask (1 session of training trials, batch 24, frozen backbone, 2 threads)",
             f"  {'hidden':>6}{'voxels':>9}{'s/step':>9}{'s/epoch':>9}{'input layer MiB':>17}{'data MiB':>10}"
             f"{'training peak RSS MiB':>23}"]
    for r in runs:
        lines.append(f"  {r['hidden']:>6}{r['n_voxels']:>9}{r['s_per_step']:>9.2f}{r['s_per_epoch']:>9.1f}"
                     f"{r['input_layer_mb']:>17.0f}{r['data_mb']:>10.0f}{r['train_peak_mb']:>23.0f}")
    a, b = runs[1], runs[2]  # linear in voxels: extrapolate 4096 to the whole brainmask
    n = a["n_voxels_brainmask"]
    slope = lambda k: (b[k] - a[k]) / (b["n_voxels"] - a["n_voxels"])  # noqa: E731
    full = {k: a[k] + slope(k) * (n - a["n_voxels"]) for k in ("s_per_epoch", "train_peak_mb")}
    data = runs[0]["data_mb"]  # the 4096 runs hold a share of the voxels' betas: the whole session's here
    layer = (n * 4096 + 4096 + 2 * n) * 16 / 2 ** 20
    lines.append(f"  4096 over all {n} voxels (extrapolated, linear in voxels): {full['s_per_epoch']:.0f} s/epoch, "
                 f"training peak {(full['train_peak_mb'] + data * (1 - b['n_voxels'] / n)) / 1024:.1f} GiB (input "
                 f"layer + gate with gradients and AdamW state: {layer / 1024:.1f} GiB)")
    ram, mapped = (measure("troi", root=root, hidden=256, fraction=1.0, steps=steps, sessions=sessions,
                           in_memory_bytes=limit) for limit in (2 ** 40, 0))
    lines.append(f"  all {sessions} sessions at hidden 256 ({ram['n_train']} training trials, {ram['data_mb']:.0f} MiB "
                 f"of betas): in memory {ram['anon_mb']:.0f} MiB anonymous ({ram['train_peak_mb']:.0f} peak RSS), "
                 f"{ram['s_per_step']:.2f} s/step, loaded in {ram['load_seconds']:.0f} s; memory-mapped "
                 f"{mapped['anon_mb']:.0f} MiB anonymous ({mapped['train_peak_mb']:.0f} peak RSS, the rest page cache "
                 f"the kernel may drop), {mapped['s_per_step']:.2f} s/step, loaded in {mapped['load_seconds']:.0f} s")
    per_trial = ram["data_mb"] / ram["n_train"]
    lines.append(f"  40 sessions (27,000 training trials): {27000 * per_trial / 1024:.1f} GiB of betas, memory-mapped "
                 f"(above 4 GiB), so the run needs about {mapped['anon_mb'] / 1024:.1f} GiB of memory of its own")
    return lines


def part_encoder(quick: bool) -> list[str]:
    steps, images = (4, 128) if quick else (6, 256)
    runs = [measure("encoder", n_subjects=8, n_voxels=v, n_images=images, steps=steps) for v in (15000, 60000)]
    lines = ["pretrain encoder: 8 subjects, 32 images x 5000 sampled voxels per step (EfficientNet-Lite0 patches, "
             "2 threads)", f"  {'voxels/subject':>15}{'s/step':>9}{'model+Adam MiB':>16}"
             f"{'step MiB (peak - before - model+Adam)':>39}{'peak RSS MiB':>14}"]
    step = [r["peak_rss_mb"] - r["rss_before_mb"] - r["state_mb"] for r in runs]
    for r, m in zip(runs, step):
        lines.append(f"  {r['n_voxels']:>15}{r['s_per_step']:>9.2f}{r['state_mb']:>16.0f}{m:>39.0f}"
                     f"{r['peak_rss_mb']:>14.0f}")
    full = 8 * 9000 * (15000 * 4 + 5 * 49 * 192 * 2) / 2 ** 30
    lines.append(f"  step memory at 60k / 15k voxels per subject: {step[1] / max(step[0], 1):.2f} (flat: ~1); one "
                 f"epoch of 8 x 9,000 images: {8 * 9000 / 32 * runs[0]['s_per_step'] / 3600:.1f} h on this CPU; the "
                 f"data (8 x 9,000 images x 15k voxels + patches) {full:.1f} GiB in RAM")
    return lines


def part_flatmaps(root: Path, quick: bool) -> list[str]:
    trials = 3000 if quick else 30000
    r = measure("flatmaps", root=root, trials=trials, size=256)
    return [f"flatmap cache, {trials} trials x {NSDGENERAL} voxels at 256 px: {r['bytes'] / 2 ** 30:.2f} GiB "
            f"({r['bytes'] / trials / 1024:.0f} KiB per trial; the dataset is {r['dataset_bytes'] / 2 ** 30:.2f} GiB), "
            f"{r['seconds']:.0f} s ({r['seconds'] / trials * 1000:.1f} ms per trial), "
            f"peak RSS {r['peak_rss_mb']:.0f} MiB"
            + ("" if not quick else f"; 30,000 trials: {r['bytes'] / trials * 30000 / 2 ** 30:.1f} GiB")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes: a few minutes")
    ap.add_argument("--sessions", type=int, default=None, help="sessions per subject [default: 4, quick 2]")
    ap.add_argument("--parts", default="preprocess,troi,encoder,flatmaps")
    ap.add_argument("--work", type=Path, default=None, help="keep the synthetic tree here (reused when present)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary tree")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--kwargs", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(args.child, json.loads(args.kwargs))
        return
    sessions = args.sessions or (2 if args.quick else 4)
    trials = 75 if args.quick else 750
    work = args.work or Path(tempfile.mkdtemp(prefix="fmrikit-nsd-scale-", dir=os.environ.get("TMPDIR")))
    root = work / f"nsd-{sessions}x{trials}"
    t0 = time.perf_counter()
    if not (root / "nsddata").is_dir():
        measure("make", root=root, sessions=sessions, trials=trials)
        print(f"synthetic NSD tree written in {time.perf_counter() - t0:.0f} s: {root}")
    parts = args.parts.split(",")
    lines = [f"NSD at real size: grid {GRID}, {trials} trials x {sessions} sessions, {os.cpu_count()} CPUs"]
    try:
        if "preprocess" in parts:
            lines += part_preprocess(root, sessions, trials)
        if "troi" in parts:
            lines += part_troi(root, sessions, args.quick)
        if "encoder" in parts:
            lines += part_encoder(args.quick)
        if "flatmaps" in parts:
            lines += part_flatmaps(root, args.quick)
    finally:
        if args.work is None and not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
