"""A tiny NSD tree written straight from the format reference (../shared/docs/nsd-format.md).

It does not use fmrikit's simulator, and names no pycortex subject, so every command is checked against the
format itself, the way a lab's data reaches it. Grids are non-cubic ((7, 8, 9) at 1.8 mm, (11, 13, 14) at 1 mm)
so axis-order bugs show.

- subj01: NIfTI betas (3 sessions) in func1pt8mm and func1mm; ``T1_to_func1pt8mm.nii.gz``; atlases
  nsdgeneral, prf-visualrois (V1v..hV4) and streams with their label names.
- subj02: HDF5 betas (2 of the design's 3 sessions, so fewer shared images have all 3 repeats);
  ``mean.nii.gz``; nsdgeneral only.
- ``nsd_stim_info_merged.csv`` and COCO ``captions_*.json`` for every image.
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import nibabel as nib
import numpy as np
import scipy.io

SHAPE = (7, 8, 9)
AFFINE = np.array([[-1.8, 0, 0, 10.0], [0, 1.8, 0, -20.0], [0, 0, 1.8, -5.0], [0, 0, 0, 1]])
SHAPE_1MM = (11, 13, 14)
AFFINE_1MM = np.array([[-1.0, 0, 0, 10.0], [0, 1.0, 0, -20.0], [0, 0, 1.0, -5.0], [0, 0, 0, 1]])
TRIALS = 24          # per session: 2 runs of 12
N_SESSIONS = 3       # in the design
N_SHARED = 5
SUBJECTS = {1: ("nifti", 3), 2: ("hdf5", 2)}  # format, sessions on disk
CONSTANT_VOXEL = (3, 4, 5)                     # inside subj01's ROI, zero in every session
#: Atlases of subj01 beyond nsdgeneral: name -> label names (1..N), as in NSD's .ctab files.
ATLASES = {"prf-visualrois": ["V1v", "V1d", "V2v", "V2d", "V3v", "V3d", "hV4"],
           "streams": ["early", "midventral", "midlateral", "midparietal", "ventral", "lateral", "parietal"]}
BETAS = "betas_fithrf_GLMdenoise_RR"


def write_tree(root: Path, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    n_per = N_SESSIONS * TRIALS // 3
    n_images = N_SHARED + len(SUBJECTS) * (n_per - N_SHARED)
    ids = rng.permutation(n_images) + 1
    subjectim = np.zeros((len(SUBJECTS), n_per), dtype=np.int64)
    subjectim[:, :N_SHARED] = ids[:N_SHARED]
    for s in range(len(SUBJECTS)):
        lo = N_SHARED + s * (n_per - N_SHARED)
        subjectim[s, N_SHARED:] = ids[lo:lo + n_per - N_SHARED]
    master = rng.permutation(np.repeat(np.arange(1, n_per + 1), 3))
    stimpattern = np.zeros((N_SESSIONS, 2, TRIALS // 2 + 2))
    stimpattern[:, :, :TRIALS // 2] = 1  # 2 runs x 12 trials per session
    exp = root / "nsddata/experiments/nsd"
    exp.mkdir(parents=True)
    scipy.io.savemat(exp / "nsd_expdesign.mat", {"masterordering": master[None].astype(float),
                                                 "subjectim": subjectim.astype(float),
                                                 "sharedix": np.sort(ids[:N_SHARED])[None].astype(float),
                                                 "stimpattern": stimpattern})
    _write_stimuli(root, n_images, rng)

    for subject, (fmt, n_sess) in SUBJECTS.items():
        sdir = root / f"nsddata/ppdata/subj{subject:02d}"
        (sdir / "behav").mkdir(parents=True)
        label_dir = root / f"nsddata/freesurfer/subj{subject:02d}/label"
        label_dir.mkdir(parents=True)
        (label_dir / "nsdgeneral.mgz.ctab").write_text("0 Unknown\n1 nsdgeneral\n")
        with open(sdir / "behav/responses.tsv", "w") as f:
            f.write("SUBJECT\tSESSION\tRUN\tTRIAL\t73KID\n")
            for t in range(n_sess * TRIALS):
                k = master[t]
                f.write(f"{subject}\t{t // TRIALS + 1}\t{t % TRIALS // (TRIALS // 2) + 1}\t{t % (TRIALS // 2) + 1}\t"
                        f"{subjectim[subject - 1, k - 1]}\n")
        spaces = {"func1pt8mm": (SHAPE, AFFINE), "func1mm": (SHAPE_1MM, AFFINE_1MM)} if subject == 1 else \
            {"func1pt8mm": (SHAPE, AFFINE)}
        for space, (shape, affine) in spaces.items():
            brain, roi = _masks(shape)
            func = sdir / space
            (func / "roi").mkdir(parents=True)
            nib.save(nib.Nifti1Image(brain.astype(np.int16), affine), func / "brainmask.nii.gz")
            nib.save(nib.Nifti1Image(roi, affine), func / "roi/nsdgeneral.nii.gz")
            reference = np.where(brain, rng.uniform(500, 1500, shape), 0).astype(np.float32)
            nib.save(nib.Nifti1Image(reference, affine),
                     func / (f"T1_to_{space}.nii.gz" if subject == 1 else "mean.nii.gz"))
            if subject == 1 and space == "func1pt8mm":
                for atlas, names in ATLASES.items():
                    labels = np.where(roi > 0, 1 + np.arange(roi.size).reshape(shape) % len(names), roi)
                    nib.save(nib.Nifti1Image(labels.astype(np.int16), affine), func / f"roi/{atlas}.nii.gz")
                    (label_dir / f"{atlas}.mgz.ctab").write_text(
                        "0 Unknown\n" + "".join(f"{k} {n}\n" for k, n in enumerate(names, 1)))
            bdir = root / f"nsddata_betas/ppdata/subj{subject:02d}/{space}/{BETAS}"
            bdir.mkdir(parents=True)
            for s in range(1, n_sess + 1):
                data = rng.normal(0.5 * s, 1.0 + 0.2 * s, shape + (TRIALS,)) * 300
                data[~brain] = 0
                if subject == 1 and space == "func1pt8mm":
                    data[CONSTANT_VOXEL] = 0
                data = np.rint(data).astype(np.int16)
                if fmt == "nifti":
                    nib.save(nib.Nifti1Image(data, affine), bdir / f"betas_session{s:02d}.nii.gz")
                else:  # MATLAB-written HDF5: h5py sees (T, Z, Y, X), one voxel per chunk
                    with h5py.File(bdir / f"betas_session{s:02d}.hdf5", "w") as f:
                        f.create_dataset("betas", data=np.transpose(data, (3, 2, 1, 0)), chunks=(TRIALS, 1, 1, 1))
            nib.save(nib.Nifti1Image(rng.uniform(0, 1, shape).astype(np.float32), affine), bdir / "ncsnr.nii.gz")
    return root


def _masks(shape: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Brainmask (bool) and nsdgeneral (-1 outside the brain, 0 cortex, 1 inside) of a grid, at the same relative
    place on every grid."""
    brain = np.zeros(shape, bool)
    brain[tuple(slice(1, n - 1) for n in shape)] = True
    roi = np.full(shape, -1, np.int16)
    roi[brain] = 0
    inside = (slice(2, 5), slice(2, 6), slice(3, 7)) if shape == SHAPE else tuple(slice(n // 4, 3 * n // 4)
                                                                                   for n in shape)
    roi[inside] = 1
    return brain, roi


def _write_stimuli(root: Path, n_images: int, rng) -> None:
    """``imgBrick``, ``nsd_stim_info_merged.csv`` (nsdId 0-based) and COCO captions of every image."""
    stim = root / "nsddata_stimuli/stimuli/nsd"
    (stim / "annotations").mkdir(parents=True)
    with h5py.File(stim / "nsd_stimuli.hdf5", "w") as f:
        f["imgBrick"] = rng.integers(0, 255, (n_images, 10, 10, 3), dtype=np.uint8)
    coco = 1000 + np.arange(n_images)
    split = np.where(np.arange(n_images) % 2, "train2017", "val2017")
    lines = [",cocoId,cocoSplit,nsdId"] + [f"{i},{coco[i]},{split[i]},{i}" for i in range(n_images)]
    (root / "nsddata/experiments/nsd/nsd_stim_info_merged.csv").write_text("\n".join(lines) + "\n")
    for name in ("train2017", "val2017"):
        annotations = [{"image_id": int(coco[i]), "id": int(i), "caption": f"image {i}, caption {c}"}
                       for i in range(n_images) if split[i] == name for c in range(2)]
        (stim / f"annotations/captions_{name}.json").write_text(json.dumps({"annotations": annotations}))


def expected(root: Path, subject: int, exclude_shared: bool = False, space: str = "func1pt8mm"):
    """Preprocessed betas computed independently with nibabel/h5py + numpy.

    Returns (betas (n_trials, n_voxels) with constant voxels removed, stim_id, session, shared, ijk).
    """
    design = scipy.io.loadmat(root / "nsddata/experiments/nsd/nsd_expdesign.mat")
    master = design["masterordering"].ravel().astype(int)
    subjectim = design["subjectim"].astype(int)
    sharedix = design["sharedix"].ravel().astype(int)
    roi = nib.load(root / f"nsddata/ppdata/subj{subject:02d}/{space}/roi/nsdgeneral.nii.gz").get_fdata() > 0
    fmt, n_sess = SUBJECTS[subject]
    bdir = root / f"nsddata_betas/ppdata/subj{subject:02d}/{space}/{BETAS}"
    out, stim, sess, shared = [], [], [], []
    for s in range(1, n_sess + 1):
        if fmt == "nifti":
            vol = nib.load(bdir / f"betas_session{s:02d}.nii.gz").get_fdata()
        else:
            with h5py.File(bdir / f"betas_session{s:02d}.hdf5") as f:
                vol = np.transpose(f["betas"][:], (3, 2, 1, 0)).astype(float)
        x = vol[roi].T / 300.0  # (T, V), voxels in C order over (X, Y, Z)
        ids = np.array([subjectim[subject - 1, master[(s - 1) * TRIALS + t] - 1] for t in range(TRIALS)])
        is_shared = np.isin(ids, sharedix)
        fit = x[~is_shared] if exclude_shared else x
        with np.errstate(invalid="ignore", divide="ignore"):
            out.append((x - fit.mean(0)) / fit.std(0))
        stim.append(ids - 1)
        sess.append(np.full(TRIALS, s))
        shared.append(is_shared)
    betas = np.concatenate(out)
    keep = np.isfinite(betas).all(0)
    return betas[:, keep], np.concatenate(stim), np.concatenate(sess), np.concatenate(shared), np.argwhere(roi)[keep]


def shared_repeats(root: Path, subject: int) -> tuple[np.ndarray, np.ndarray]:
    """0-based ids of the shared images the subject saw in the sessions on disk, and how often it saw each
    (counted from responses.tsv, independently of fmrikit)."""
    design = scipy.io.loadmat(root / "nsddata/experiments/nsd/nsd_expdesign.mat")
    sharedix = design["sharedix"].ravel().astype(int)
    table = np.loadtxt(root / f"nsddata/ppdata/subj{subject:02d}/behav/responses.tsv", skiprows=1, dtype=int)
    seen = table[:, 4][np.isin(table[:, 4], sharedix)]
    ids, counts = np.unique(seen, return_counts=True)
    return ids - 1, counts
