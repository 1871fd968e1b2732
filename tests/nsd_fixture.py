"""A tiny NSD tree written straight from the format reference (../shared/docs/nsd-format.md).

It does not use fmrikit's simulator, so preprocess is checked against the format itself.
Grid (7, 8, 9) is non-cubic so axis-order bugs show.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import nibabel as nib
import numpy as np
import scipy.io

SHAPE = (7, 8, 9)
AFFINE = np.array([[-1.8, 0, 0, 10.0], [0, 1.8, 0, -20.0], [0, 0, 1.8, -5.0], [0, 0, 0, 1]])
TRIALS = 12          # per session
N_SESSIONS = 3       # in the design
N_SHARED = 4
SUBJECTS = {1: ("nifti", 3), 2: ("hdf5", 2)}  # format, sessions on disk
CONSTANT_VOXEL = (3, 4, 5)                     # inside subj01's ROI, zero in every session


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
    stimpattern = np.zeros((N_SESSIONS, 2, 8))
    stimpattern[:, :, :6] = 1  # 2 runs x 6 trials = 12 per session
    exp = root / "nsddata/experiments/nsd"
    exp.mkdir(parents=True)
    scipy.io.savemat(exp / "nsd_expdesign.mat", {"masterordering": master[None].astype(float),
                                                 "subjectim": subjectim.astype(float),
                                                 "sharedix": np.sort(ids[:N_SHARED])[None].astype(float),
                                                 "stimpattern": stimpattern})
    stim = root / "nsddata_stimuli/stimuli/nsd"
    stim.mkdir(parents=True)
    with h5py.File(stim / "nsd_stimuli.hdf5", "w") as f:
        f["imgBrick"] = rng.integers(0, 255, (n_images, 10, 10, 3), dtype=np.uint8)

    brain = np.zeros(SHAPE, bool)
    brain[1:6, 1:7, 1:8] = True
    for subject, (fmt, n_sess) in SUBJECTS.items():
        sdir = root / f"nsddata/ppdata/subj{subject:02d}"
        (sdir / "func1pt8mm/roi").mkdir(parents=True)
        (sdir / "behav").mkdir(parents=True)
        nib.save(nib.Nifti1Image(brain.astype(np.int16), AFFINE), sdir / "func1pt8mm/brainmask.nii.gz")
        roi = np.full(SHAPE, -1, np.int16)
        roi[brain] = 0
        roi[2:5, 2:6, 3:7] = 1
        nib.save(nib.Nifti1Image(roi, AFFINE), sdir / "func1pt8mm/roi/nsdgeneral.nii.gz")
        label_dir = root / f"nsddata/freesurfer/subj{subject:02d}/label"
        label_dir.mkdir(parents=True)
        (label_dir / "nsdgeneral.mgz.ctab").write_text("0 Unknown\n1 nsdgeneral\n")
        with open(sdir / "behav/responses.tsv", "w") as f:
            f.write("SUBJECT\tSESSION\tRUN\tTRIAL\t73KID\n")
            for t in range(n_sess * TRIALS):
                k = master[t]
                f.write(f"{subject}\t{t // TRIALS + 1}\t{t % TRIALS // 6 + 1}\t{t % 6 + 1}\t{subjectim[subject - 1, k - 1]}\n")
        bdir = root / f"nsddata_betas/ppdata/subj{subject:02d}/func1pt8mm/betas_fithrf_GLMdenoise_RR"
        bdir.mkdir(parents=True)
        for s in range(1, n_sess + 1):
            data = rng.normal(0.5 * s, 1.0 + 0.2 * s, SHAPE + (TRIALS,)) * 300
            data[~brain] = 0
            if subject == 1:
                data[CONSTANT_VOXEL] = 0
            data = np.rint(data).astype(np.int16)
            if fmt == "nifti":
                nib.save(nib.Nifti1Image(data, AFFINE), bdir / f"betas_session{s:02d}.nii.gz")
            else:  # MATLAB-written HDF5: h5py sees (T, Z, Y, X), one voxel per chunk
                with h5py.File(bdir / f"betas_session{s:02d}.hdf5", "w") as f:
                    f.create_dataset("betas", data=np.transpose(data, (3, 2, 1, 0)), chunks=(TRIALS, 1, 1, 1))
        nib.save(nib.Nifti1Image(rng.uniform(0, 1, SHAPE).astype(np.float32), AFFINE), bdir / "ncsnr.nii.gz")
    return root


def expected(root: Path, subject: int, exclude_shared: bool = False):
    """Preprocessed betas computed independently with nibabel/h5py + numpy.

    Returns (betas (n_trials, n_voxels) with constant voxels removed, stim_id, session, shared, ijk).
    """
    design = scipy.io.loadmat(root / "nsddata/experiments/nsd/nsd_expdesign.mat")
    master = design["masterordering"].ravel().astype(int)
    subjectim = design["subjectim"].astype(int)
    sharedix = design["sharedix"].ravel().astype(int)
    roi = nib.load(root / f"nsddata/ppdata/subj{subject:02d}/func1pt8mm/roi/nsdgeneral.nii.gz").get_fdata() > 0
    fmt, n_sess = SUBJECTS[subject]
    bdir = root / f"nsddata_betas/ppdata/subj{subject:02d}/func1pt8mm/betas_fithrf_GLMdenoise_RR"
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
