"""A simulated world in NSD's exact on-disk formats, generated from a known forward model.

Anatomy is pycortex's subject S1 (shared by every simulated subject); the functional layout
differs per subject:

* early visual voxels (around each hemisphere's occipital pole on the flatmap) have
  Gaussian population receptive fields whose centres vary smoothly with flatmap position
  (polar angle around the pole, eccentricity with distance) and respond to local contrast
  energy;
* one patch per stimulus category and hemisphere, at subject-specific flatmap positions,
  responds to images of its category (more to larger objects);
* every other brain voxel carries noise only.

Trials add Gaussian noise, a per-session offset and a per-session gain drift; each image is
shown three times; a shared image set is seen by every subject. The annotated ROI
``nsdgeneral`` covers every informative voxel and about as many uninformative ones, as a
hand-drawn ROI does. Ground truth is written beside the tree (``simulation_truth.h5``).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from fmrikit._progress import track
from fmrikit.data.anatomy import PYCORTEX_SUBJECT, PYCORTEX_XFM, Anatomy, load_anatomy
from fmrikit.data.preprocess import NSD_BETA_SCALE, SIMULATION_MARKER
from fmrikit.data.stimuli import CATEGORIES, make_stimuli
from fmrikit.errors import InputError
from fmrikit.io.atomic import claim_outputs, one_run, staged_dir
from fmrikit.io.nifti import save_nifti
from fmrikit.io.provenance import new_run_id, write_sidecar
from fmrikit.checks import check_number, check_option

VOXEL_CLASSES = ("noise", "early") + tuple(f"category:{c}" for c in CATEGORIES)
#: NSD floc atlases that the category patches are written into: (atlas, label, names).
FLOC_ATLASES = {
    "face": ("floc-faces", 2, ["OFA", "FFA-1", "FFA-2", "mTL-faces", "aTL-faces"]),
    "text": ("floc-words", 2, ["OWFA", "VWFA-1", "VWFA-2", "mfs-words", "mTL-words"]),
    "scene": ("floc-places", 2, ["OPA", "PPA", "RSC"]),
    "animal": ("floc-bodies", 1, ["EBA", "FBA-1", "FBA-2", "mTL-bodies"]),
}
PRF_ROIS = ["V1v", "V1d", "V2v", "V2d", "V3v", "V3d", "hV4"]
ENERGY_GRID = 16  # contrast energy is pooled on a 16 x 16 grid of the image


@dataclass
class SimulationConfig:
    """Sizes and noise of a simulated world.

    Attributes
    ----------
    n_subjects : int
    sessions : list of int
        Sessions per subject (a shorter list repeats its last value).
    trials_per_session : int
    runs_per_session : int
    n_shared : int
        Images every subject sees.
    image_size : int
        Stimulus width and height (pixels).
    noise : float
        Trial noise sd in % signal change; informative voxels have signal sd 0.5-1.5 %.
    formats : list of str
        Betas format per subject, cycled: "nifti", "hdf5" or "both".
    seed : int
    """

    n_subjects: int = 4
    sessions: list[int] = field(default_factory=lambda: [4])
    trials_per_session: int = 150
    runs_per_session: int = 5
    n_shared: int = 60
    image_size: int = 64
    noise: float = 1.5
    formats: list[str] = field(default_factory=lambda: ["nifti"])
    seed: int = 0

    def sessions_of(self, subject: int) -> int:
        return self.sessions[min(subject - 1, len(self.sessions) - 1)]

    def format_of(self, subject: int) -> str:
        return self.formats[(subject - 1) % len(self.formats)]

    def validate(self) -> None:
        """Refuse values out of range (NaN and infinities included), naming the command-line option.

        Raises
        ------
        InputError
        """
        check_number("--subjects", self.n_subjects, low=1)
        if not self.sessions:
            raise InputError("--sessions lists no session", expected="a count per subject, e.g. 4 or 4,4,3",
                             found="none")
        check_number("--sessions", min(self.sessions), low=1)
        check_number("--trials-per-session", self.trials_per_session, low=6)
        check_number("--runs", self.runs_per_session, low=1)
        check_number("--image-size", self.image_size, low=16)
        check_number("--noise", self.noise, low=0)
        for f in self.formats:
            check_option("betas format", f, ("nifti", "hdf5", "both"))
        n_per = max(self.sessions) * self.trials_per_session // 3
        check_number("--shared", self.n_shared, low=0, high=n_per, low_open=True, high_open=True)


@one_run
def simulate(out: str | os.PathLike, config: SimulationConfig | None = None, overwrite: bool = False) -> Path:
    """Write a miniature NSD tree and its ground truth.

    Parameters
    ----------
    out : path-like
        Folder to create; it receives ``nsddata/``, ``nsddata_betas/``, ``nsddata_stimuli/``,
        ``simulation_truth.h5``, ``truth/subjNN/*.nii.gz`` (informative mask, voxel class
        with values 0 noise, 1 early, 2.. categories; noise ceiling) and ``fmrikit_simulation.json``.
    config : SimulationConfig, optional
    overwrite : bool
        Replace an existing folder.

    Returns
    -------
    Path
        ``out``.
    """
    config = config or SimulationConfig()
    config.validate()
    out = Path(out)
    claim_outputs([out], kind="simulate", overwrite=overwrite)
    rng = np.random.default_rng(config.seed)
    anat = load_anatomy()
    with staged_dir(out, overwrite=overwrite, kind="simulate") as tree:
        design = _write_design(tree, config, rng)
        stimuli = make_stimuli(design["n_images"], config.image_size, rng)
        _write_stimuli(tree, stimuli, design, rng)
        energy = contrast_energy(stimuli.images)
        import h5py

        with h5py.File(tree / "simulation_truth.h5", "w") as truth:
            truth.attrs.update({"categories": list(CATEGORIES), "voxel_classes": list(VOXEL_CLASSES),
                                "pycortex_subject": PYCORTEX_SUBJECT, "pycortex_xfm": PYCORTEX_XFM,
                                "config": json.dumps(asdict(config))})
            truth.create_dataset("images/category", data=stimuli.category)
            truth.create_dataset("images/object_size", data=stimuli.object_size)
            truth.create_dataset("images/object_xy", data=stimuli.object_xy)
            for subject in track(range(1, config.n_subjects + 1), "simulate subjects"):
                layout = _functional_layout(anat, rng)
                _write_subject(tree, truth, subject, config, anat, layout, design, stimuli, energy, rng)
        (tree / SIMULATION_MARKER).write_text(json.dumps({
            "generator": "fmrikit simulate", "pycortex_subject": PYCORTEX_SUBJECT, "pycortex_xfm": PYCORTEX_XFM,
            "config": asdict(config)}, indent=2) + "\n")
        write_sidecar(tree / "simulation.json", command="simulate", parameters=asdict(config), inputs=[],
                      seed=config.seed, run_id=new_run_id(),
                      extra={"n_images": design["n_images"], "space": "func1pt8mm (pycortex S1 grid)"})
    return out


# -- design and stimuli ---------------------------------------------------------------------

def _write_design(tree: Path, cfg: SimulationConfig, rng) -> dict:
    """Write ``nsd_expdesign.mat``: every subject shares masterordering, as in NSD."""
    import scipy.io

    n_sess, n_trials = max(cfg.sessions), cfg.trials_per_session
    n_per = n_sess * n_trials // 3
    n_images = cfg.n_shared + cfg.n_subjects * (n_per - cfg.n_shared)
    ids73 = rng.permutation(n_images) + 1  # 1-based ids; shared images scattered over the brick
    subjectim = np.empty((cfg.n_subjects, n_per), dtype=np.int64)
    subjectim[:, :cfg.n_shared] = ids73[:cfg.n_shared]
    for s in range(cfg.n_subjects):
        lo = cfg.n_shared + s * (n_per - cfg.n_shared)
        subjectim[s, cfg.n_shared:] = ids73[lo:lo + n_per - cfg.n_shared]
    total = n_sess * n_trials
    master = np.concatenate([np.repeat(np.arange(1, n_per + 1), 3),
                             rng.integers(1, n_per + 1, total - 3 * n_per)])
    master = rng.permutation(master)
    slots = -(-n_trials // cfg.runs_per_session) + 2  # a couple of blank slots per run
    stimpattern = np.zeros((n_sess, cfg.runs_per_session, slots), dtype=np.uint8)
    for s in range(n_sess):
        flat = np.zeros(cfg.runs_per_session * slots, dtype=np.uint8)
        flat[rng.choice(flat.size, n_trials, replace=False)] = 1
        stimpattern[s] = flat.reshape(cfg.runs_per_session, slots)
    folder = tree / "nsddata/experiments/nsd"
    folder.mkdir(parents=True)
    scipy.io.savemat(folder / "nsd_expdesign.mat", {
        "masterordering": master[None, :].astype(np.float64), "subjectim": subjectim.astype(np.float64),
        "sharedix": np.sort(ids73[:cfg.n_shared])[None, :].astype(np.float64),
        "stimpattern": stimpattern.astype(np.float64), "basiccnt": np.zeros((3, n_sess))})
    return {"master": master, "subjectim": subjectim, "stimpattern": stimpattern, "n_images": n_images,
            "shared_ids": np.sort(ids73[:cfg.n_shared])}


def _write_stimuli(tree: Path, stimuli, design: dict, rng) -> None:
    """``nsd_stimuli.hdf5`` (imgBrick, row = 73k id - 1) and COCO-style captions."""
    import h5py

    folder = tree / "nsddata_stimuli/stimuli/nsd"
    (folder / "annotations").mkdir(parents=True)
    n = len(stimuli.images)
    with h5py.File(folder / "nsd_stimuli.hdf5", "w") as f:
        f.create_dataset("imgBrick", data=stimuli.images, chunks=(1,) + stimuli.images.shape[1:])
    coco_ids = rng.choice(np.arange(1, 600_000), n, replace=False)
    split = np.where(rng.random(n) < 0.9, "train2017", "val2017")
    for name in ("train2017", "val2017"):
        rows = np.nonzero(split == name)[0]
        doc = {"info": {"description": "fmrikit simulated captions (COCO format)"},
               "images": [{"id": int(coco_ids[r]), "file_name": f"{coco_ids[r]:012d}.jpg",
                           "height": stimuli.images.shape[1], "width": stimuli.images.shape[2]} for r in rows],
               "annotations": [{"id": int(r) + 1, "image_id": int(coco_ids[r]), "caption": stimuli.captions[r]}
                               for r in rows]}
        (folder / "annotations" / f"captions_{name}.json").write_text(json.dumps(doc))
    design["coco_ids"], design["coco_split"] = coco_ids, split


def contrast_energy(images: np.ndarray, grid: int = ENERGY_GRID) -> np.ndarray:
    """Local contrast energy of images, pooled on a coarse grid.

    Parameters
    ----------
    images : ndarray of uint8, shape (n_images, H, W, 3)
    grid : int
        Output grid size.

    Returns
    -------
    ndarray of float64, shape (n_images, grid, grid)
        Mean squared band-pass luminance per cell.
    """
    from scipy import ndimage

    lum = images.astype(np.float64) @ np.array([0.299, 0.587, 0.114]) / 255.0
    band = lum - ndimage.gaussian_filter(lum, sigma=(0, 1.5, 1.5))
    energy = ndimage.gaussian_filter(band ** 2, sigma=(0, 1.0, 1.0))
    n, h, w = energy.shape
    hh, ww = h - h % grid, w - w % grid
    return energy[:, :hh, :ww].reshape(n, grid, hh // grid, grid, ww // grid).mean((2, 4))


# -- functional layout and responses -------------------------------------------------------

@dataclass
class _Layout:
    vclass: np.ndarray      # (n_cortex,) index into VOXEL_CLASSES
    patch_weight: np.ndarray  # (n_cortex,) weight of the category patch
    prf: np.ndarray         # (n_cortex, 3) x, y, sigma in image units [-1, 1]; NaN if not early
    roi: np.ndarray         # (n_cortex,) bool, nsdgeneral
    prf_label: np.ndarray   # (n_cortex,) 0 none, 1..7 PRF_ROIS
    angle_rank: np.ndarray  # (n_cortex,) polar-angle rank in [0, 1] around the pole
    dist: np.ndarray        # (n_cortex,) flatmap distance from the pole / early radius


def _functional_layout(anat: Anatomy, rng) -> _Layout:
    """Retinotopy around each occipital pole and subject-specific category patches."""
    n = len(anat.cortex_ijk)
    vclass = np.zeros(n, dtype=np.int64)
    weight = np.zeros(n)
    prf = np.full((n, 3), np.nan)
    roi = np.zeros(n, dtype=bool)
    prf_label = np.zeros(n, dtype=np.int64)
    rank = np.zeros(n)
    dist = np.full(n, np.inf)
    for hemi in (0, 1):
        sel = np.nonzero(anat.hemisphere == hemi)[0]
        y_world = anat.world[sel, 1]
        pole = anat.flat_xy[sel[y_world <= np.quantile(y_world, 0.03)]].mean(0)
        rel = anat.flat_xy[sel] - pole
        d = np.hypot(rel[:, 0], rel[:, 1])
        radius = np.quantile(d, 0.05) * rng.uniform(0.9, 1.1)
        d = d / radius
        theta = np.arctan2(rel[:, 1], rel[:, 0])
        near = d < 2.6
        # unwrap the angle at the gap opposite the region's mean direction, then rank it
        mean_dir = np.angle(np.exp(1j * theta[near]).mean())
        wrapped = np.angle(np.exp(1j * (theta - mean_dir)))
        u = np.zeros(len(sel))
        u[near] = (np.argsort(np.argsort(wrapped[near])) + 0.5) / near.sum()
        rank[sel], dist[sel] = u, d

        early = d < 1.0
        ecc = 0.04 + 0.96 * d[early] ** 1.3
        phi = (u[early] - 0.5) * np.pi  # -90..90 degrees in the contralateral hemifield
        side = 1.0 if hemi == 0 else -1.0  # left hemisphere sees the right visual field
        prf[sel[early]] = np.stack([side * ecc * np.cos(phi), -ecc * np.sin(phi), 0.06 + 0.2 * ecc], 1)
        vclass[sel[early]] = 1
        bands = np.digitize(u[early], [0.15, 0.3, 0.5, 0.7, 0.85])
        prf_label[sel[early]] = np.array([5, 3, 1, 2, 4, 6])[bands]
        prf_label[sel[(d >= 1.0) & (d < 1.3) & (u < 0.3)]] = 7

        # category patches: subject-specific angle and distance in the ring 1.35-2.0
        angles = rng.permutation(np.linspace(0.08, 0.92, len(CATEGORIES))) + rng.normal(0, 0.03, len(CATEGORIES))
        for k in range(len(CATEGORIES)):
            centre_d = rng.uniform(1.45, 1.9)
            dd = np.hypot((d - centre_d) / 0.2, (u - np.clip(angles[k], 0.05, 0.95)) / 0.05)
            w = np.exp(-0.5 * dd ** 2)
            inside = (w > 0.3) & (vclass[sel] == 0)
            vclass[sel[inside]] = 2 + k
            weight[sel[inside]] = w[inside]
        # a hand-drawn-like ROI: a wobbly disc that covers every informative voxel
        wobble = 2.35 + 0.15 * np.sin(3 * np.pi * u + rng.uniform(0, 2 * np.pi))
        roi[sel] = (d < wobble) | (vclass[sel] > 0)
    return _Layout(vclass, weight, prf, roi, prf_label, rank, dist)


def _prf_weights(prf: np.ndarray, grid: int = ENERGY_GRID) -> np.ndarray:
    """Gaussian pRF weights over the energy grid, (n_voxels, grid * grid), rows sum to 1."""
    c = (np.arange(grid) + 0.5) / grid * 2 - 1
    gx, gy = np.meshgrid(c, c)  # gy grows downwards, like image rows
    d2 = (gx.ravel()[None] - prf[:, :1]) ** 2 + (gy.ravel()[None] - prf[:, 1:2]) ** 2
    w = np.exp(-0.5 * d2 / prf[:, 2:3] ** 2)
    return w / w.sum(1, keepdims=True)


def _noise_free(layout: _Layout, stimuli, energy: np.ndarray, rows: np.ndarray, rng):
    """Noise-free responses (% signal change) of informative voxels to the given images.

    Returns
    -------
    informative : ndarray of int, (n_inf,) indices into the cortical voxels
    signal : ndarray, (n_images, n_inf), each column with sd = its amplitude
    amplitude : ndarray, (n_inf,)
    """
    informative = np.nonzero(layout.vclass > 0)[0]
    signal = np.zeros((len(rows), len(informative)))
    early = layout.vclass[informative] == 1
    flat_energy = energy[rows].reshape(len(rows), -1)
    signal[:, early] = flat_energy @ _prf_weights(layout.prf[informative[early]]).T
    size = stimuli.object_size[rows]
    for k in range(len(CATEGORIES)):
        cols = layout.vclass[informative] == 2 + k
        drive = (stimuli.category[rows] == k) * (0.6 + size / max(size.max(), 1e-9))
        signal[:, cols] = drive[:, None] * layout.patch_weight[informative[cols]][None]
    signal -= signal.mean(0)
    sd = signal.std(0)
    amplitude = rng.uniform(0.5, 1.5, len(informative))
    signal *= amplitude / np.where(sd > 0, sd, 1)
    return informative, signal, amplitude


def _write_subject(tree: Path, truth, subject: int, cfg: SimulationConfig, anat: Anatomy, layout: _Layout,
                   design: dict, stimuli, energy: np.ndarray, rng) -> None:
    label = f"subj{subject:02d}"
    n_sess, n_trials = cfg.sessions_of(subject), cfg.trials_per_session
    shape, affine = anat.shape, anat.affine
    brain_ijk = np.argwhere(anat.brainmask)
    n_brain = len(brain_ijk)
    # position of each cortical voxel among the brain voxels (both in C order over X, Y, Z)
    brain_index = np.full(shape, -1, dtype=np.int64)
    brain_index[tuple(brain_ijk.T)] = np.arange(n_brain)
    cortex_in_brain = brain_index[tuple(anat.cortex_ijk.T)]

    subject_ids = design["subjectim"][subject - 1]  # 1-based 73k ids of this subject's images
    informative, signal, amplitude = _noise_free(layout, stimuli, energy, subject_ids - 1, rng)
    inf_cols = cortex_in_brain[informative]
    baseline = rng.uniform(0.5, 2.0, n_brain)

    # trial sequence (global trial t -> 10k-list position k -> 73k id)
    trials_k = design["master"][: n_sess * n_trials]
    stim_rows = trials_k - 1  # rows of `signal`
    fmt = cfg.format_of(subject)
    betas_dir = tree / f"nsddata_betas/ppdata/{label}/func1pt8mm/betas_fithrf_GLMdenoise_RR"
    betas_dir.mkdir(parents=True)
    zsum = np.zeros((len(subject_ids), n_brain))
    zsq = np.zeros((len(subject_ids), n_brain))
    counts = np.bincount(stim_rows, minlength=len(subject_ids))
    for s in range(n_sess):
        rows = stim_rows[s * n_trials:(s + 1) * n_trials]
        gain = 1 + rng.normal(0, 0.1, n_brain)
        offset = rng.normal(0, 0.5, n_brain)
        resp = np.broadcast_to(baseline, (n_trials, n_brain)).copy()
        resp[:, inf_cols] += signal[rows]
        resp = resp * gain + offset + rng.normal(0, cfg.noise, (n_trials, n_brain))
        stored = np.clip(np.rint(resp * NSD_BETA_SCALE), -32768, 32767).astype(np.int16)
        _write_session(betas_dir, s + 1, stored, brain_ijk, shape, affine, fmt)
        z = stored / NSD_BETA_SCALE
        z = (z - z.mean(0)) / np.where(z.std(0) > 0, z.std(0), 1)
        np.add.at(zsum, rows, z)
        np.add.at(zsq, rows, z ** 2)

    # ncsnr as NSD estimates it: images with 3 trials, betas z-scored per session
    three = counts == 3
    noise_var = ((zsq[three] - zsum[three] ** 2 / 3) / 2).mean(0) if three.any() else np.ones(n_brain)
    noise_sd = np.sqrt(np.maximum(noise_var, 1e-12))
    ncsnr = np.sqrt(np.maximum(0, 1 - noise_sd ** 2)) / noise_sd
    ncsnr_vol = np.zeros(shape, dtype=np.float32)
    ncsnr_vol[tuple(brain_ijk.T)] = ncsnr
    save_nifti(ncsnr_vol, affine, betas_dir / "ncsnr.nii.gz")

    _write_anatomy_and_rois(tree, subject, anat, layout)
    _write_behaviour(tree, subject, design, n_sess, n_trials, cfg, rng)

    grp = truth.create_group(label)
    vol = np.zeros(shape, dtype=bool)
    vol[tuple(anat.cortex_ijk[informative].T)] = True
    grp.create_dataset("informative_mask", data=vol, compression="gzip")
    cls = np.zeros(shape, dtype=np.int8)
    cls[tuple(anat.cortex_ijk.T)] = layout.vclass
    grp.create_dataset("voxel_class", data=cls, compression="gzip")
    early = np.nonzero(layout.vclass == 1)[0]
    grp.create_dataset("prf/ijk", data=anat.cortex_ijk[early].astype(np.int32))
    grp.create_dataset("prf/x_y_sigma", data=layout.prf[early])
    grp.create_dataset("responses/ijk", data=anat.cortex_ijk[informative].astype(np.int32))
    grp.create_dataset("responses/stim_id", data=(subject_ids - 1).astype(np.int64))
    grp.create_dataset("responses/noise_free", data=signal.astype(np.float32))
    true_snr = np.zeros(shape, dtype=np.float32)
    true_snr[tuple(anat.cortex_ijk[informative].T)] = amplitude / cfg.noise if cfg.noise > 0 else np.inf
    grp.create_dataset("ncsnr", data=true_snr, compression="gzip")
    nc = true_snr.astype(np.float64) ** 2
    grp.create_dataset("noise_ceiling", data=(100 * nc / (nc + 1 / 3)).astype(np.float32), compression="gzip")
    grp.attrs.update({"noise_ceiling_trials": 3, "format": fmt, "sessions": n_sess})
    # the same truth as NIfTI volumes, for viewers and `fmrikit evaluate mask/labels`
    nifti_dir = tree / "truth" / label
    nifti_dir.mkdir(parents=True)
    save_nifti(vol.astype(np.uint8), affine, nifti_dir / "informative_mask.nii.gz")
    save_nifti(cls, affine, nifti_dir / "voxel_class.nii.gz")
    save_nifti(grp["noise_ceiling"][:], affine, nifti_dir / "noise_ceiling.nii.gz")


def _write_session(folder: Path, session: int, stored: np.ndarray, brain_ijk: np.ndarray,
                   shape: tuple[int, int, int], affine: np.ndarray, fmt: str) -> None:
    """One session's betas: int16 (X, Y, Z, T) NIfTI and/or (T, Z, Y, X) HDF5, zero off-brain."""
    n_trials = len(stored)
    if fmt in ("nifti", "both"):
        vol = np.zeros(shape + (n_trials,), dtype=np.int16)
        vol[tuple(brain_ijk.T)] = stored.T
        save_nifti(vol, affine, folder / f"betas_session{session:02d}.nii.gz")
    if fmt in ("hdf5", "both"):
        import h5py

        tzyx = np.zeros((n_trials,) + shape[::-1], dtype=np.int16)
        tzyx[:, brain_ijk[:, 2], brain_ijk[:, 1], brain_ijk[:, 0]] = stored
        with h5py.File(folder / f"betas_session{session:02d}.hdf5", "w") as f:
            f.create_dataset("betas", data=tzyx, chunks=(n_trials, 1, 1, shape[0]))


def _write_anatomy_and_rois(tree: Path, subject: int, anat: Anatomy, layout: _Layout) -> None:
    """brainmask and ROI volumes (-1 non-cortical, 0 unlabelled, 1..N) with their .ctab files."""
    folder = tree / f"nsddata/ppdata/subj{subject:02d}/func1pt8mm"
    (folder / "roi").mkdir(parents=True)
    labels_dir = tree / f"nsddata/freesurfer/subj{subject:02d}/label"
    labels_dir.mkdir(parents=True)
    save_nifti(anat.brainmask.astype(np.int16), anat.affine, folder / "brainmask.nii.gz")

    informative = layout.vclass > 0
    streams = np.where(layout.vclass == 1, 1, 0)
    ring = (layout.vclass != 1) & (layout.dist < 2.6)
    streams[ring & (layout.angle_rank < 0.5)] = 5
    streams[ring & (layout.angle_rank >= 0.5)] = 6
    atlases = {"nsdgeneral": (layout.roi.astype(np.int64), ["nsdgeneral"]),
               "prf-visualrois": (layout.prf_label, PRF_ROIS),
               "streams": (streams, ["early", "midventral", "midlateral", "midparietal", "ventral", "lateral",
                                     "parietal"])}
    for cat, (atlas, lab, names) in FLOC_ATLASES.items():
        k = CATEGORIES.index(cat)
        atlases[atlas] = (np.where(layout.vclass == 2 + k, lab, 0), names)
    assert informative[layout.roi].sum() == informative.sum()  # nsdgeneral covers every informative voxel
    for name, (values, names) in atlases.items():
        for prefix, hemi in (("", None), ("lh.", 0), ("rh.", 1)):
            vol = np.full(anat.shape, -1, dtype=np.int16)
            vals = values.astype(np.int16) if hemi is None else np.where(anat.hemisphere == hemi, values, -1)
            vol[tuple(anat.cortex_ijk.T)] = vals
            save_nifti(vol, anat.affine, folder / "roi" / f"{prefix}{name}.nii.gz")
        ctab = "0 Unknown\n" + "".join(f"{i} {n}\n" for i, n in enumerate(names, 1))
        (labels_dir / f"{name}.mgz.ctab").write_text(ctab)


def _write_behaviour(tree: Path, subject: int, design: dict, n_sess: int, n_trials: int,
                     cfg: SimulationConfig, rng) -> None:
    """``responses.tsv`` and this subject's columns of ``nsd_stim_info_merged.csv``."""
    import pandas as pd

    k = design["master"][: n_sess * n_trials]
    ids = design["subjectim"][subject - 1][k - 1]
    t = np.arange(len(k))
    run = np.concatenate([np.repeat(np.arange(1, cfg.runs_per_session + 1), pattern.sum(1).astype(np.int64))
                          for pattern in design["stimpattern"][:n_sess]])
    first_seen = pd.Series(t).groupby(ids).transform("min").to_numpy()
    table = pd.DataFrame({
        "SUBJECT": subject, "SESSION": t // n_trials + 1, "RUN": run,
        "TRIAL": pd.Series(t).groupby(t // n_trials * 1000 + run).cumcount().to_numpy() + 1,
        "73KID": ids, "10KID": k, "TIME": np.round(t * 4.0 / 86400, 6), "ISOLD": (first_seen < t).astype(int),
        "ISCORRECT": (rng.random(len(t)) < 0.8).astype(int), "RT": np.round(rng.uniform(400, 1200, len(t)), 1),
        "CHANGEMIND": 0, "MEMORYRECENT": 0, "MEMORYFIRST": 0, "ISOLDCURRENT": (first_seen < t).astype(int),
        "ISCORRECTCURRENT": 1, "TOTAL1": 1, "TOTAL2": 0, "BUTTON": rng.integers(1, 3, len(t)),
        "MISSINGDATA": 0})
    behav = tree / f"nsddata/ppdata/subj{subject:02d}/behav"
    behav.mkdir(parents=True)
    table.to_csv(behav / "responses.tsv", sep="\t", index=False)

    info_path = tree / "nsddata/experiments/nsd/nsd_stim_info_merged.csv"
    if info_path.exists():
        info = pd.read_csv(info_path, index_col=0)
    else:
        n = design["n_images"]
        info = pd.DataFrame({"cocoId": design["coco_ids"], "cocoSplit": design["coco_split"],
                             "nsdId": np.arange(n), "shared1000": np.isin(np.arange(n) + 1, design["shared_ids"])})
    col = f"subject{subject}"
    info[col] = np.isin(np.arange(len(info)) + 1, design["subjectim"][subject - 1]).astype(int)
    for r in range(3):
        info[f"{col}_rep{r}"] = 0
    occurrence = pd.Series(t).groupby(ids).cumcount().to_numpy()
    for r in range(3):
        sel = occurrence == r
        info.loc[ids[sel] - 1, f"{col}_rep{r}"] = t[sel] + 1  # 1-based global trial numbers
    info.to_csv(info_path)
