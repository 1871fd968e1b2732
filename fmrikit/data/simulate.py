"""A simulated world in NSD's exact on-disk formats, generated from a known forward model.

Anatomy is pycortex's subject S1, shared by every simulated subject. The functional layout is
S1's own localiser regions (V1, V2, V3, FFA, OFA, PPA, OPA, RSC, EBA, IPS from its
``overlays.svg``, with hV4, V3A/B, LO, a word patch and a food patch drawn beside them), read by
each subject through a small smooth warp (:mod:`fmrikit.data.world`, which cites every number):

* early visual voxels (V1-V3, hV4, V3A/B) have CSS pRFs in mirrored hemifield maps and respond
  to contrast energy and to signed luminance and colour-opponent terms;
* higher visual voxels respond to a description of each image (category, subtype, size,
  position, count, colour) through smooth maps shared by every subject, with face, word, scene,
  food and body/animal preferences in their regions, divisively normalised;
* noise is spatially smooth with a global per-trial component; sessions drift in gain and
  offset; signal-to-noise is graded over visual cortex; every other brain voxel carries noise
  only.

Each image is shown three times; the shared images are seen by every subject, all of them in the
sessions every subject has. ``nsdgeneral`` is drawn on the template, so it covers most but not
all driven voxels and a few undriven ones. Ground truth is written beside the tree
(``simulation_truth.h5``, ``truth/``). A noise-free tree (``noise_free=True``) is the same world
with the noise-free responses as betas: the same commands on it give oracle results.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from fmrikit._progress import track
from fmrikit.data.anatomy import PYCORTEX_SUBJECT, PYCORTEX_XFM, Anatomy, load_anatomy
from fmrikit.data.preprocess import NSD_BETA_SCALE, SIMULATION_MARKER
from fmrikit.data.stimuli import CATEGORIES, SUBTYPES, make_stimuli
from fmrikit.data.world import WORLD_VERSION
from fmrikit.data.world import params as P
from fmrikit.data.world.atlas import build_template
from fmrikit.data.world.layout import PRF_ROIS, STREAM_NAMES, SubjectLayout, subject_layout
from fmrikit.data.world.model import Tuning, image_features, noise_free_responses, semantic_maps, subject_tuning
from fmrikit.data.world.noise import NoiseGenerator, noise_levels
from fmrikit.io.atomic import claim_outputs, one_run, staged_dir
from fmrikit.io.nifti import save_nifti
from fmrikit.io.provenance import new_run_id, write_sidecar
from fmrikit.data.world.config import SimulationConfig

VOXEL_CLASSES = P.VOXEL_CLASSES
#: NSD floc atlases written from the category regions: atlas -> (region -> label, label names).
FLOC_ATLASES = {
    "floc-faces": ({"OFA": 1, "FFA": 2}, ["OFA", "FFA-1", "FFA-2", "mTL-faces", "aTL-faces"]),
    "floc-words": ({"VWFA": 2}, ["OWFA", "VWFA-1", "VWFA-2", "mfs-words", "mTL-words"]),
    "floc-places": ({"OPA": 1, "PPA": 2, "RSC": 3}, ["OPA", "PPA", "RSC"]),
    "floc-bodies": ({"EBA": 1}, ["EBA", "FBA-1", "FBA-2", "mTL-bodies"]),
}
#: Noise sd (% signal change) at which the world's ncsnr map holds; signal amplitudes are set at it.
REFERENCE_NOISE = 1.5


@one_run
def simulate(out: str | os.PathLike, config: SimulationConfig | None = None, overwrite: bool = False) -> Path:
    """Write a miniature NSD tree and its ground truth.

    Parameters
    ----------
    out : path-like
        Folder to create; it receives ``nsddata/``, ``nsddata_betas/``, ``nsddata_stimuli/``,
        ``simulation_truth.h5`` (see :mod:`fmrikit.data.world.truth`), ``truth/subjNN/*.nii.gz``
        (informative mask; voxel class 0 noise, 1 early, 2.. categories, 7 other visual; area;
        true noise ceiling) and ``fmrikit_simulation.json``.
    config : SimulationConfig, optional
    overwrite : bool
        Replace an existing folder.

    Returns
    -------
    Path
        ``out``.
    """
    import h5py

    config = config or SimulationConfig()
    config.validate()
    out = Path(out)
    claim_outputs([out], kind="simulate", overwrite=overwrite)
    streams = np.random.SeedSequence(config.seed).spawn(4 + config.n_subjects)
    design_rng, stimuli_rng, behaviour_rng, world_rng = (np.random.default_rng(s) for s in streams[:4])
    anat = load_anatomy()
    template = build_template()
    with staged_dir(out, overwrite=overwrite, kind="simulate") as tree:
        design = _write_design(tree, config, design_rng)
        stimuli = make_stimuli(design["n_images"], config.image_size, stimuli_rng)
        _write_stimuli(tree, stimuli, design, behaviour_rng)
        features = image_features(stimuli)
        maps = semantic_maps(world_rng, len(features.names))
        with h5py.File(tree / "simulation_truth.h5", "w") as truth:
            truth.attrs.update({"categories": list(CATEGORIES), "voxel_classes": list(VOXEL_CLASSES),
                                "areas": list(P.AREAS), "term_names": list(P.TERM_NAMES),
                                "description_names": features.names, "world_version": WORLD_VERSION,
                                "noise_free": config.noise_free, "pycortex_subject": PYCORTEX_SUBJECT,
                                "pycortex_xfm": PYCORTEX_XFM, "config": json.dumps(asdict(config))})
            truth.create_dataset("images/category", data=stimuli.category)
            truth.create_dataset("images/subtype", data=stimuli.subtype)
            truth["images/subtype"].attrs["names"] = json.dumps({c: list(SUBTYPES[c]) for c in CATEGORIES})
            truth.create_dataset("images/object_size", data=stimuli.object_size)
            truth.create_dataset("images/object_xy", data=stimuli.object_xy)
            truth.create_dataset("images/count", data=stimuli.count)
            truth.create_dataset("images/colour", data=stimuli.colour)
            truth.create_dataset("images/description", data=features.description.astype(np.float32))
            noise_gen = None if config.noise_free else NoiseGenerator(np.argwhere(anat.brainmask), anat.shape,
                                                                      config.noise_fwhm)
            for subject in track(range(1, config.n_subjects + 1), "simulate subjects"):
                rngs = [np.random.default_rng(s) for s in streams[3 + subject].spawn(3)]
                drawn = _draw_subject(anat, template, maps, features, config.noise, rngs[0], rngs[1])
                _write_subject(tree, truth, subject, config, anat, drawn, design, behaviour_rng, noise_gen, rngs[2])
        (tree / SIMULATION_MARKER).write_text(json.dumps({
            "generator": "fmrikit simulate", "world_version": WORLD_VERSION, "noise_free": config.noise_free,
            "pycortex_subject": PYCORTEX_SUBJECT, "pycortex_xfm": PYCORTEX_XFM, "config": asdict(config)},
            indent=2) + "\n")
        write_sidecar(tree / "simulation.json", command="simulate", parameters=asdict(config), inputs=[],
                      seed=config.seed, run_id=new_run_id(),
                      extra={"n_images": design["n_images"], "world_version": WORLD_VERSION,
                             "space": "func1pt8mm (pycortex S1 grid)"})
    return out


# -- design and stimuli ---------------------------------------------------------------------

def _write_design(tree: Path, cfg: SimulationConfig, rng) -> dict:
    """Write ``nsd_expdesign.mat``: every subject shares masterordering, as in NSD.

    The shared images' three trials each fall in the first ``min(sessions)`` sessions, so that
    every subject sees them all; the other images fill the remaining trials in random order.
    """
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
    first = min(cfg.sessions) * n_trials
    others = rng.permutation(np.concatenate([np.repeat(np.arange(cfg.n_shared + 1, n_per + 1), 3),
                                             rng.integers(cfg.n_shared + 1, n_per + 1, total - 3 * n_per)]))
    head = np.concatenate([np.repeat(np.arange(1, cfg.n_shared + 1), 3), others[:first - 3 * cfg.n_shared]])
    master = np.concatenate([rng.permutation(head), others[first - 3 * cfg.n_shared:]])
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


# -- one subject -----------------------------------------------------------------------------

@dataclass(frozen=True)
class _Subject:
    """A subject's layout and tuning, its informative voxels' noise-free responses to every image
    (n_images, n_inf), and per brain voxel the noise sd and mean response (% signal change)."""

    layout: SubjectLayout
    tuning: Tuning
    signal: np.ndarray
    noise_sd: np.ndarray
    baseline: np.ndarray


def _draw_subject(anat: Anatomy, template, maps, features, noise: float, layout_rng, tuning_rng) -> _Subject:
    """Layout, tuning and responses of one subject; signal amplitudes are set at the reference noise, the
    trial noise is ``noise`` times the same spatial field."""
    brain_ijk = np.argwhere(anat.brainmask)
    layout = subject_layout(anat, template, layout_rng)
    level = noise_levels(brain_ijk @ anat.affine[:3, :3].T + anat.affine[:3, 3], 1.0, tuning_rng)
    tuning = subject_tuning(layout, maps, features.names, REFERENCE_NOISE * level[_cortex_in_brain(anat)],
                            anat.hemisphere, tuning_rng)
    signal = noise_free_responses(layout, tuning, features)
    baseline = tuning_rng.uniform(*P.BASELINE_RANGE, len(brain_ijk))
    return _Subject(layout, tuning, signal, noise * level, baseline)


def _cortex_in_brain(anat: Anatomy) -> np.ndarray:
    """Position of each cortical voxel among the brain voxels (both in C order over X, Y, Z)."""
    brain_index = np.full(anat.shape, -1, dtype=np.int64)
    brain_index[anat.brainmask] = np.arange(int(anat.brainmask.sum()))
    return brain_index[tuple(anat.cortex_ijk.T)]


def _write_subject(tree: Path, truth, subject: int, cfg: SimulationConfig, anat: Anatomy, sub: _Subject,
                   design: dict, behaviour_rng, noise_gen: NoiseGenerator | None, noise_rng) -> None:
    import scipy.sparse as sp

    label = f"subj{subject:02d}"
    n_sess, n_trials = cfg.sessions_of(subject), cfg.trials_per_session
    brain_ijk = np.argwhere(anat.brainmask)
    n_brain = len(brain_ijk)
    inf_cols = _cortex_in_brain(anat)[sub.tuning.voxels]
    subject_ids = design["subjectim"][subject - 1]  # 1-based 73k ids of this subject's images

    # trial sequence (global trial t -> 10k-list position k -> 73k id)
    positions = design["master"][: n_sess * n_trials] - 1  # rows of the subject's image list
    fmt = cfg.format_of(subject)
    betas_dir = tree / f"nsddata_betas/ppdata/{label}/func1pt8mm/betas_fithrf_GLMdenoise_RR"
    betas_dir.mkdir(parents=True)
    zsum = np.zeros((n_brain, len(subject_ids)), dtype=np.float32)  # z-scored betas summed per image
    zsq = np.zeros(n_brain)  # squares summed over trials of images shown three times
    counts = np.bincount(positions, minlength=len(subject_ids))
    varying = np.zeros(n_brain, dtype=bool)
    baseline = sub.baseline.astype(np.float32)[:, None]
    for s in range(n_sess):
        rows = positions[s * n_trials:(s + 1) * n_trials]
        resp = np.repeat(baseline, n_trials, axis=1)  # (n_brain, n_trials), % signal change
        resp[inf_cols] += sub.signal[subject_ids[rows] - 1].T
        if noise_gen is not None:
            resp *= 1 + noise_rng.normal(0, P.SESSION_GAIN_SD, (n_brain, 1)).astype(np.float32)
            resp += noise_rng.normal(0, P.SESSION_OFFSET_SD, (n_brain, 1)).astype(np.float32)
            resp += noise_gen.draw(n_trials, noise_rng) * sub.noise_sd.astype(np.float32)[:, None]
        resp *= NSD_BETA_SCALE
        stored = np.clip(np.rint(resp, out=resp), -32768, 32767).astype(np.int16)
        _write_session(betas_dir, s + 1, stored, brain_ijk, anat.shape, anat.affine, fmt)
        z = stored.astype(np.float32)
        z -= z.mean(1, keepdims=True)
        sd = np.sqrt((z ** 2).mean(1))
        varying |= sd > 0
        z /= np.where(sd > 0, sd, 1)[:, None]
        onehot = sp.csr_matrix((np.ones(n_trials, np.float32), (np.arange(n_trials), rows)),
                               shape=(n_trials, len(subject_ids)))
        zsum += (onehot.T @ z.T).T
        zsq += (z ** 2) @ (counts[rows] == 3).astype(np.float32)

    # ncsnr as NSD estimates it: images with 3 trials, betas z-scored per session
    three = counts == 3
    if three.any():
        noise_var = (zsq - (zsum[:, three].astype(np.float64) ** 2).sum(1) / 3) / (2 * three.sum())
    else:
        noise_var = np.ones(n_brain)
    noise_sd = np.sqrt(np.maximum(noise_var, 1e-12))
    ncsnr = np.sqrt(np.maximum(0, 1 - noise_sd ** 2)) / noise_sd
    ncsnr = np.where(varying, ncsnr, 0)  # a constant voxel (noise-free tree, no signal) has none
    ncsnr_vol = np.zeros(anat.shape, dtype=np.float32)
    ncsnr_vol[tuple(brain_ijk.T)] = ncsnr
    save_nifti(ncsnr_vol, anat.affine, betas_dir / "ncsnr.nii.gz")

    _write_anatomy_and_rois(tree, subject, anat, sub.layout)
    _write_behaviour(tree, subject, design, n_sess, n_trials, cfg, behaviour_rng)
    _write_truth(tree, truth, label, anat, sub, _cortex_in_brain(anat), fmt, n_sess)


def _write_truth(tree: Path, truth, label: str, anat: Anatomy, sub: _Subject, cortex_in_brain: np.ndarray,
                 fmt: str, n_sess: int) -> None:
    """The subject's group of ``simulation_truth.h5`` and its ``truth/`` volumes."""
    layout, tuning = sub.layout, sub.tuning
    grp = truth.create_group(label)
    ijk = anat.cortex_ijk[tuning.voxels]

    def volume(values, dtype):
        vol = np.zeros(anat.shape, dtype=dtype)
        vol[tuple(anat.cortex_ijk.T)] = values
        return vol

    informative = np.zeros(len(layout.area), dtype=bool)
    informative[tuning.voxels] = True
    vols = {"informative_mask": volume(informative, bool), "voxel_class": volume(layout.voxel_class, np.int8),
            "area": volume(layout.area, np.int8)}
    noise_sd = sub.noise_sd[cortex_in_brain[tuning.voxels]]
    snr = np.zeros(len(layout.area))
    snr[tuning.voxels] = tuning.amplitude / noise_sd
    nc = snr ** 2
    vols["ncsnr"] = volume(snr, np.float32)
    vols["noise_ceiling"] = volume(100 * nc / (nc + 1 / 3), np.float32)
    for name, vol in vols.items():
        grp.create_dataset(name, data=vol, compression="gzip")
    prf = layout.prf[tuning.voxels]
    grp.create_dataset("voxels/ijk", data=ijk.astype(np.int32))
    grp.create_dataset("voxels/area", data=layout.area[tuning.voxels].astype(np.int8))
    grp.create_dataset("voxels/class", data=layout.voxel_class[tuning.voxels].astype(np.int8))
    grp.create_dataset("voxels/amplitude", data=tuning.amplitude)
    grp.create_dataset("voxels/noise_sd", data=noise_sd)
    grp.create_dataset("prf/x_y_sigma_exponent", data=prf)
    grp.create_dataset("prf/size", data=prf[:, 2] / np.sqrt(prf[:, 3]))
    grp.create_dataset("weights/terms", data=tuning.term_weights)
    grp.create_dataset("weights/semantic", data=tuning.semantic.astype(np.float32))
    grp.create_dataset("responses/noise_free", data=sub.signal, chunks=(1, sub.signal.shape[1]))
    grp.attrs.update({"noise_ceiling_trials": 3, "format": fmt, "sessions": n_sess})
    nifti_dir = tree / "truth" / label
    nifti_dir.mkdir(parents=True)
    for name in ("informative_mask", "voxel_class", "area", "noise_ceiling"):
        vol = vols[name]
        save_nifti(vol.astype(np.uint8) if vol.dtype == bool else vol, anat.affine, nifti_dir / f"{name}.nii.gz")


def _write_session(folder: Path, session: int, stored: np.ndarray, brain_ijk: np.ndarray,
                   shape: tuple[int, int, int], affine: np.ndarray, fmt: str) -> None:
    """One session's betas (``stored``: int16 (n_brain, n_trials)) as int16 (X, Y, Z, T) NIfTI and/or
    (T, Z, Y, X) HDF5, zero off-brain."""
    n_trials = stored.shape[1]
    tzyx = np.zeros((n_trials,) + shape[::-1], dtype=np.int16)
    tzyx[:, brain_ijk[:, 2], brain_ijk[:, 1], brain_ijk[:, 0]] = stored.T
    if fmt in ("nifti", "both"):
        save_nifti(tzyx.T, affine, folder / f"betas_session{session:02d}.nii.gz")  # Fortran order: no copy
    if fmt in ("hdf5", "both"):
        import h5py

        with h5py.File(folder / f"betas_session{session:02d}.hdf5", "w") as f:
            f.create_dataset("betas", data=tzyx, chunks=(n_trials, 1, 1, shape[0]))


def _write_anatomy_and_rois(tree: Path, subject: int, anat: Anatomy, layout: SubjectLayout) -> None:
    """brainmask and ROI volumes (-1 non-cortical, 0 unlabelled, 1..N) with their .ctab files."""
    folder = tree / f"nsddata/ppdata/subj{subject:02d}/func1pt8mm"
    (folder / "roi").mkdir(parents=True)
    labels_dir = tree / f"nsddata/freesurfer/subj{subject:02d}/label"
    labels_dir.mkdir(parents=True)
    save_nifti(anat.brainmask.astype(np.int16), anat.affine, folder / "brainmask.nii.gz")

    names = np.array(P.AREAS)[layout.area]
    atlases = {"nsdgeneral": (layout.nsdgeneral.astype(np.int64), ["nsdgeneral"]),
               "prf-visualrois": (layout.prf_label, PRF_ROIS),
               "streams": (layout.streams, STREAM_NAMES)}
    for atlas, (regions, label_names) in FLOC_ATLASES.items():
        values = np.zeros(len(names), dtype=np.int64)
        for region, value in regions.items():
            values[names == region] = value
        atlases[atlas] = (values, label_names)
    for name, (values, label_names) in atlases.items():
        for prefix, hemi in (("", None), ("lh.", 0), ("rh.", 1)):
            vol = np.full(anat.shape, -1, dtype=np.int16)
            vals = values.astype(np.int16) if hemi is None else np.where(anat.hemisphere == hemi, values, -1)
            vol[tuple(anat.cortex_ijk.T)] = vals
            save_nifti(vol, anat.affine, folder / "roi" / f"{prefix}{name}.nii.gz")
        ctab = "0 Unknown\n" + "".join(f"{i} {n}\n" for i, n in enumerate(label_names, 1))
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
