"""A tiny NSD tree with fsaverage betas, and a tiny Algonauts 2023 folder, written from the format reference
(../shared/docs/nsd-format.md) without fmrikit.

The meshes are fsaverage's first ``N_VERTICES`` vertices per hemisphere (10,242: fsaverage5, which nilearn ships;
pass 163842 for full fsaverage). Every image has a brightness; vertices of the left hemisphere within
``PATCH_MM`` (straight-line distance on the pial surface) of the occipital pole respond to it, the rest is noise.
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import nibabel as nib
import numpy as np
import scipy.io
from nilearn import datasets

N_VERTICES = 10242
TRIALS = 24          # per session, 2 runs
N_SESSIONS = 3       # in the design
N_SHARED = 4
SUBJECTS = {1: 3, 2: 2}  # sessions on disk
IMAGE_SIZE = 32
PATCH_MM = 20.0
SIGNAL = 1.5         # % signal change per unit of brightness (sd of brightness ~0.23)
VISUAL_Y_MM = -70.0  # nsdgeneral of the fixture: pial y behind this
BETAS = "betas_fithrf_GLMdenoise_RR"


def pial(hemi: str) -> np.ndarray:
    """fsaverage5 pial coordinates from nilearn (independent of fmrikit's reader)."""
    mesh = datasets.load_fsaverage("fsaverage5")["pial"].parts["left" if hemi == "lh" else "right"]
    return np.asarray(mesh.coordinates, np.float64)


def patch_vertices(n_vertices: int = N_VERTICES) -> np.ndarray:
    """Left-hemisphere vertices of the responsive patch (among the first min(n, 10242))."""
    coords = pial("lh")
    pole = coords[np.argmin(coords[:, 1])]
    near = np.nonzero(np.linalg.norm(coords - pole, axis=1) < PATCH_MM)[0]
    return near[near < n_vertices]


def visual_labels(hemi: str, n_vertices: int = N_VERTICES) -> tuple[np.ndarray, np.ndarray]:
    """(nsdgeneral 0/1, prf-visualrois 0..7) of the fixture on the first n vertices."""
    coords = pial(hemi)
    general = np.zeros(n_vertices, np.int32)
    prf = np.zeros(n_vertices, np.int32)
    m = min(n_vertices, len(coords))
    inside = coords[:m, 1] < VISUAL_Y_MM
    general[:m] = inside
    pole = coords[np.argmin(coords[:, 1])]
    band = (np.linalg.norm(coords[:m] - pole, axis=1) // 10).astype(int)
    prf[:m] = np.where(inside & (band < 7), band + 1, 0)
    return general, prf


def _design(root: Path, rng):
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
    stimpattern[:, :, :TRIALS // 2] = 1
    exp = root / "nsddata/experiments/nsd"
    exp.mkdir(parents=True)
    scipy.io.savemat(exp / "nsd_expdesign.mat", {"masterordering": master[None].astype(float),
                                                 "subjectim": subjectim.astype(float),
                                                 "sharedix": np.sort(ids[:N_SHARED])[None].astype(float),
                                                 "stimpattern": stimpattern})
    brightness = rng.uniform(0.2, 1.0, n_images)
    images = (rng.uniform(0, 255, (n_images, IMAGE_SIZE, IMAGE_SIZE, 3)) * brightness[:, None, None, None])
    stim = root / "nsddata_stimuli/stimuli/nsd"
    (stim / "annotations").mkdir(parents=True)
    with h5py.File(stim / "nsd_stimuli.hdf5", "w") as f:
        f["imgBrick"] = images.astype(np.uint8)
    # nsd_stim_info_merged.csv (index column, nsdId 0-based, cocoId, cocoSplit) and COCO caption files
    coco = 1000 + np.arange(n_images)
    with open(exp / "nsd_stim_info_merged.csv", "w") as f:
        f.write(",cocoId,cocoSplit,nsdId\n")
        f.writelines(f"{k},{coco[k]},train2017,{k}\n" for k in range(n_images))
    words = ["a dark scene", "a dim room", "a bright field", "a sunny beach"]
    annotations = [{"id": int(k), "image_id": int(coco[k]), "caption": words[min(int(brightness[k] * 4), 3)]}
                   for k in range(n_images)]
    (stim / "annotations/captions_train2017.json").write_text(json.dumps({"annotations": annotations}))
    return master, subjectim, brightness


def write_tree(root: Path, seed: int = 0, n_vertices: int = N_VERTICES) -> Path:
    """NSD tree: design, stimuli, fsaverage labels, per-subject fsaverage betas (int16 x 300), subj01's ncsnr."""
    rng = np.random.default_rng(seed)
    master, subjectim, brightness = _design(root, rng)
    label_dir = root / "nsddata/freesurfer/fsaverage/label"
    label_dir.mkdir(parents=True)
    for hemi in ("lh", "rh"):
        general, prf = visual_labels(hemi, n_vertices)
        for atlas, values in (("nsdgeneral", general), ("prf-visualrois", prf)):
            nib.save(nib.MGHImage(values.reshape(-1, 1, 1), np.eye(4)), label_dir / f"{hemi}.{atlas}.mgz")
    (label_dir / "nsdgeneral.mgz.ctab").write_text("0 Unknown\n1 nsdgeneral\n")
    (label_dir / "prf-visualrois.mgz.ctab").write_text(
        "0 Unknown\n1 V1v\n2 V1d\n3 V2v\n4 V2d\n5 V3v\n6 V3d\n7 hV4\n")
    patch = patch_vertices(n_vertices)
    for subject, n_sess in SUBJECTS.items():
        sdir = root / f"nsddata/ppdata/subj{subject:02d}/behav"
        sdir.mkdir(parents=True)
        with open(sdir / "responses.tsv", "w") as f:
            f.write("SUBJECT\tSESSION\tRUN\tTRIAL\t73KID\n")
            for t in range(n_sess * TRIALS):
                f.write(f"{subject}\t{t // TRIALS + 1}\t{t % TRIALS // (TRIALS // 2) + 1}\t{t % (TRIALS // 2) + 1}\t"
                        f"{subjectim[subject - 1, master[t] - 1]}\n")
        bdir = root / f"nsddata_betas/ppdata/subj{subject:02d}/fsaverage/{BETAS}"
        bdir.mkdir(parents=True)
        for s in range(1, n_sess + 1):
            ids = np.array([subjectim[subject - 1, master[(s - 1) * TRIALS + t] - 1] for t in range(TRIALS)])
            for hemi in ("lh", "rh"):
                data = rng.normal(0.3 * s, 1.0 + 0.1 * s, (n_vertices, TRIALS))
                if hemi == "lh":
                    data[patch] += SIGNAL * brightness[ids - 1][None] / 0.23
                data = np.rint(data * 300).astype(np.int16)
                nib.save(nib.MGHImage(data.reshape(n_vertices, 1, 1, TRIALS), np.eye(4)),
                         bdir / f"{hemi}.betas_session{s:02d}.mgh")
        if subject == 1:
            for hemi in ("lh", "rh"):
                nc = rng.uniform(0, 1, n_vertices).astype(np.float32)
                nib.save(nib.MGHImage(nc.reshape(-1, 1, 1), np.eye(4)), bdir / f"{hemi}.ncsnr.mgh")
    return root


def expected(root: Path, subject: int, roi: str = "nsdgeneral"):
    """Preprocessed betas computed independently with nibabel + numpy: (betas, stim_id, session, shared, hemi,
    vertex), columns = left hemisphere's ROI vertices then the right's."""
    design = scipy.io.loadmat(root / "nsddata/experiments/nsd/nsd_expdesign.mat")
    master = design["masterordering"].ravel().astype(int)
    subjectim = design["subjectim"].astype(int)
    sharedix = design["sharedix"].ravel().astype(int)
    label_dir = root / "nsddata/freesurfer/fsaverage/label"
    sel = {h: np.nonzero(np.asarray(nib.load(label_dir / f"{h}.{roi}.mgz").dataobj).ravel() > 0)[0]
           for h in ("lh", "rh")}
    bdir = root / f"nsddata_betas/ppdata/subj{subject:02d}/fsaverage/{BETAS}"
    out, stim, sess = [], [], []
    for s in range(1, SUBJECTS[subject] + 1):
        x = np.concatenate([np.asarray(nib.load(bdir / f"{h}.betas_session{s:02d}.mgh").dataobj)[:, 0, 0, :][sel[h]].T
                            for h in ("lh", "rh")], axis=1) / 300.0
        out.append((x - x.mean(0)) / x.std(0))
        stim.append(np.array([subjectim[subject - 1, master[(s - 1) * TRIALS + t] - 1] for t in range(TRIALS)]) - 1)
        sess.append(np.full(TRIALS, s))
    stim_id = np.concatenate(stim)
    hemi = np.concatenate([np.zeros(len(sel["lh"]), int), np.ones(len(sel["rh"]), int)])
    return (np.concatenate(out), stim_id, np.concatenate(sess), np.isin(stim_id + 1, sharedix), hemi,
            np.concatenate([sel["lh"], sel["rh"]]))


def write_algonauts(root: Path, seed: int = 0, n_vertices: int = N_VERTICES, n_train: int = 20,
                    n_test: int = 6) -> Path:
    """Algonauts 2023 folder of one subject: training and test fMRI over the challenge vertices, PNG images named
    ``train-%04d_nsd-%05d.png``, the all-vertices mask, one ROI class with its mapping."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    sub = root / "subj01"
    masks = sub / "roi_masks"
    masks.mkdir(parents=True)
    ids = rng.choice(5000, n_train + n_test, replace=False)
    for hemi in ("lh", "rh"):
        general, prf = visual_labels(hemi, n_vertices)
        np.save(masks / f"{hemi}.all-vertices_fsaverage_space.npy", general)
        challenge = np.nonzero(general)[0]
        np.save(masks / f"{hemi}.prf-visualrois_challenge_space.npy", prf[challenge])
        np.save(masks / f"{hemi}.prf-visualrois_fsaverage_space.npy", prf)
        for split, word, rows in (("training_split", "training", slice(0, n_train)),
                                  ("test_split", "test", slice(n_train, None))):
            folder = sub / split / f"{word}_fmri"
            folder.mkdir(parents=True, exist_ok=True)
            n = len(ids[rows])
            np.save(folder / f"{hemi}_{word}_fmri.npy", rng.normal(0, 1, (n, len(challenge))).astype(np.float32))
    with open(masks / "mapping_prf-visualrois.npy", "wb") as f:  # a pickled dict, as the organisers wrote it
        np.save(f, np.array({0: "Unknown", 1: "V1v", 2: "V1d", 3: "V2v", 4: "V2d", 5: "V3v", 6: "V3d", 7: "hV4"},
                            dtype=object), allow_pickle=True)
    for split, word, prefix, rows in (("training_split", "training", "train", ids[:n_train]),
                                      ("test_split", "test", "test", ids[n_train:])):
        folder = sub / split / f"{word}_images"
        folder.mkdir(parents=True)
        for k, nsd_id in enumerate(rows):
            Image.fromarray(rng.integers(0, 255, (IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)).save(
                folder / f"{prefix}-{k + 1:04d}_nsd-{nsd_id:05d}.png")
    return root
