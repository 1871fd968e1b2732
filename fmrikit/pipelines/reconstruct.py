"""``fmrikit reconstruct``: images from fMRI through the latent mappers or the decoder and diffusers.

Routes
------
``latent``  the subject's latent mappers predict the autoencoder latent z (and, with a Stable
            Diffusion pipeline, the CLIP text-condition embeddings); the embedded autoencoder decodes
            z directly, or ``StableDiffusionImg2ImgPipeline`` denoises from z noised to ``strength``
            with the predicted embeddings as ``prompt_embeds`` (Takagi & Nishimoto).
``unclip``  the subject's decoder predicts the image embedding (its regression head), which
            conditions ``StableUnCLIPImg2ImgPipeline`` through ``image_embeds`` (MindEye2 / TROI).
``neuropictor``  the betas become the subject's cortical flatmap; the NeuroPictor conditioner turns
            it into the semantic condition (``prompt_embeds``) and a control map that drives the
            ControlNet of ``StableDiffusionControlNetPipeline``, scaled by the control scale; the
            semantics can come from another trial (``high_level_from``) while the structure stays.

Inputs are a 3D or 4D betas NIfTI on the model's grid (masked with the model's voxels; integer NSD
betas are divided by 300 and z-scored per voxel over the file's volumes, as ``preprocess`` does per
session), NSD's per-hemisphere fsaverage ``.mgh`` betas for a model trained on a surface dataset, or
trials of the subject's preprocessed dataset (``shared``: the test images, repeats averaged).
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from fmrikit._progress import track
from fmrikit.errors import DataValueError, GridMismatchError, InputError, MissingInputError
from fmrikit.io.atomic import claim_outputs, one_run, staged_dir
from fmrikit.io.provenance import file_checksum, new_run_id, write_sidecar
from fmrikit.project import subject_dir, subject_label
from fmrikit.methods.mindeye.unclip import unclip_route
from fmrikit.data.splits import parse_trial_rows
from fmrikit.methods.neuropictor.route import neuropictor_route
from fmrikit.methods.latent.route import latent_route
from fmrikit.viz.montage import contact_sheet
from fmrikit.diffusion import Route
from fmrikit.checks import check_number, check_option
from fmrikit.devices import memory_guard

log = logging.getLogger("fmrikit")

#: Each method's route: ``route(subject, *, model, pipeline, root, device, **options) -> Route``.
ROUTES = {"latent": latent_route, "unclip": unclip_route, "neuropictor": neuropictor_route}
METHODS = tuple(ROUTES)
#: Classifier-free guidance scale by method (NeuroPictor evaluates with 5.0).
GUIDANCE = {"latent": 7.5, "unclip": 7.5, "neuropictor": 5.0}
INPUT_SCALES = ("auto", "raw", "zscored")
#: NSD stores betas as int16 percent signal change times this.
NSD_BETA_SCALE = 300.0
SESSION_FILE = re.compile(r"betas_session(\d+)")


@dataclass
class ReconstructResult:
    """Where a reconstruction run wrote its images."""

    out: Path
    images: list[Path]
    contact_sheet: Path
    n_inputs: int


def read_nifti_inputs(path: str | os.PathLike, ijk: np.ndarray, affine: np.ndarray,
                      volume_shape: tuple[int, int, int], input_scale: str = "auto") -> tuple[np.ndarray, dict]:
    """Betas of a 3D or 4D NIfTI at the model's voxels, scaled as in training.

    Parameters
    ----------
    path : path-like
    ijk : ndarray of int, shape (V, 3)
        The model's voxels on its source grid.
    affine : ndarray, shape (4, 4)
    volume_shape : tuple of int
        The model's source grid, which the file must share.
    input_scale : {"auto", "raw", "zscored"}
        ``raw``: divide integer betas by 300 and z-score each voxel over the file's volumes (needs
        >= 2 volumes); ``zscored``: use the values as they are; ``auto``: ``raw`` for integer files,
        ``zscored`` for float files.

    Returns
    -------
    x : ndarray of float32, shape (n_volumes, V)
    record : dict
        Checksum and the scaling applied.

    Raises
    ------
    GridMismatchError
        The file's grid or affine differs from the model's.
    DataValueError
        Too few volumes to z-score, non-finite values, or a voxel constant over the volumes.
    """
    from fmrikit.io.nifti import check_same_grid, image_data, iter_masked_volumes, load_image

    check_option("--input-scale", input_scale, INPUT_SCALES)
    img = load_image(path, ndim=(3, 4))
    check_same_grid({str(path): (img.shape[:3], img.affine), "the model's grid": (tuple(volume_shape), affine)})
    if np.dtype(img.get_data_dtype()).kind not in "iuf":
        raise DataValueError("betas must be real numbers", path=path, expected="integer or float voxels",
                             found=str(np.dtype(img.get_data_dtype())))
    checksum: dict = {}
    if img.ndim == 3:
        raw = image_data(img, path)[tuple(np.asarray(ijk).T)][None]
        checksum = file_checksum(path)
    else:
        raw = np.concatenate([block for _, block in iter_masked_volumes(path, ijk, checksum=checksum)])
    proxy = img.dataobj
    integer = np.issubdtype(np.dtype(img.get_data_dtype()), np.integer) and proxy.slope in (1, None) \
        and proxy.inter in (0, None)  # stored integers, not rescaled by the header
    return scale_inputs(raw, integer, input_scale, path, checksum)


def read_surface_inputs(path: str | os.PathLike, ijk: np.ndarray, n_vertices: int,
                        input_scale: str = "auto") -> tuple[np.ndarray, dict]:
    """Betas of NSD-style per-hemisphere MGH files at a surface model's vertices, scaled as in training.

    Parameters
    ----------
    path : path-like
        Either hemisphere's file (``lh.betas_session01.mgh``); its partner (``rh.``) must lie beside it.
    ijk : ndarray of int, shape (V, 3)
        The model's columns (hemi, vertex, 0).
    n_vertices : int
        Vertices per hemisphere of the model's mesh, which the files must have.
    input_scale : {"auto", "raw", "zscored"}
        As :func:`read_nifti_inputs`; ``auto`` treats integer files as raw NSD betas.

    Returns
    -------
    x : ndarray of float32, shape (n_frames, V)
    record : dict

    Raises
    ------
    GridMismatchError
        Files of another vertex count, or hemispheres of different frame counts.
    """
    from fmrikit.io.surface import HEMIS, hemi_pair, mgh_frames, read_mgh_frames

    check_option("--input-scale", input_scale, INPUT_SCALES)
    ijk = np.asarray(ijk)
    files = hemi_pair(path)
    shapes = {h: mgh_frames(p) for h, p in files.items()}
    for h, (n_v, n_f, _) in shapes.items():
        if n_v != n_vertices or n_f != shapes["lh"][1]:
            raise GridMismatchError("surface betas do not fit the model", path=files[h],
                                    expected=f"{n_vertices} vertices and the other hemisphere's {shapes['lh'][1]} maps",
                                    found=f"{n_v} vertices, {n_f} maps")
    checksums, raw = [], np.empty((shapes["lh"][1], len(ijk)), np.float64)
    for k, hemi in enumerate(HEMIS):
        sel = ijk[:, 0] == k
        checksum: dict = {}
        raw[:, sel] = read_mgh_frames(files[hemi], ijk[sel, 1], checksum=checksum)
        checksums.append(checksum)
    integer = all(np.issubdtype(dtype, np.integer) for _, _, dtype in shapes.values())
    x, record = scale_inputs(raw, integer, input_scale, path, {})
    return x, {**record, "files": checksums}


def scale_inputs(raw: np.ndarray, integer: bool, input_scale: str, path, checksum: dict) -> tuple[np.ndarray, dict]:
    """Model inputs from a file's stored betas (n_volumes, V): ``raw`` divides integers by 300 and z-scores each
    column over the volumes, ``zscored`` keeps the values, ``auto`` picks ``raw`` for integer files."""
    scale = ("raw" if integer else "zscored") if input_scale == "auto" else input_scale
    x = raw.astype(np.float32)
    if not np.isfinite(x).all():
        raise DataValueError("betas contain NaN or Inf", path=path, expected="finite values",
                             found=f"{int((~np.isfinite(x)).sum())} non-finite values at the model's voxels")
    if scale == "raw":
        if len(x) < 2:
            raise DataValueError("one volume cannot be z-scored", path=path,
                                 expected="a session's 4D betas, or --input-scale zscored for z-scored betas",
                                 found="a single volume of raw betas")
        if integer:
            x /= NSD_BETA_SCALE
        std = x.std(0)
        if (std == 0).any():
            raise DataValueError("voxels are constant over the file's volumes", path=path,
                                 expected="varying betas at every model voxel", found=f"{int((std == 0).sum())} constant")
        x = (x - x.mean(0)) / std
    return x, {**checksum, "input_scale": scale, "n_volumes": int(len(x)), "integer_betas": bool(integer)}


def _session_stimuli(path: Path, dataset: Path | None, n: int) -> np.ndarray:
    """Stimulus ids of an NSD session file's volumes, from the subject's dataset (-1 when unknown)."""
    from fmrikit.data.dataset import read_info
    from fmrikit.io.hdf5 import open_h5

    match = SESSION_FILE.search(path.name)
    unknown = np.full(n, -1, np.int64)
    if match is None or dataset is None or not dataset.is_file():
        return unknown
    info = read_info(dataset)
    with open_h5(dataset) as f:
        index = f["trials/index_in_session"][:] if "trials/index_in_session" in f else None
    rows = np.nonzero(info.session == int(match.group(1)))[0]
    if index is None or len(rows) != n:
        return unknown
    out = unknown.copy()
    out[index[rows]] = info.stim_id[rows]
    return out


def dataset_inputs(dataset: Path, ijk: np.ndarray, trials: str,
                   mesh: str = "") -> tuple[np.ndarray, np.ndarray, list[str], dict]:
    """Betas of a preprocessed dataset's trials at the model's voxels.

    Parameters
    ----------
    dataset : Path
    ijk : ndarray, shape (V, 3)
    trials : str
        ``shared`` (the test images, repeats averaged, named by their position) or trial indices
        (0-based rows of the dataset) such as ``0-9,20``.
    mesh : str
        The model's mesh ("" for a volume model), which must be the dataset's.

    Returns
    -------
    x : ndarray of float32, shape (n, V)
    stim_id : ndarray of int64, shape (n,)
    names : list of str
    record : dict
    """
    from fmrikit.data.dataset import read_info, voxel_columns
    from fmrikit.data.splits import average_repeats, read_columns

    info = read_info(dataset)
    columns = voxel_columns(info, ijk, mesh=mesh)
    if trials == "shared":
        rows = np.nonzero(info.shared)[0]
        if not len(rows):
            raise DataValueError("the dataset has no shared trials", path=dataset, expected="trials/shared set")
        stim, x = average_repeats(read_columns(dataset, rows, columns), info.stim_id[rows])
        names = [f"trial-{k:04d}_stim-{s}" for k, s in enumerate(stim)]
    else:
        rows = parse_trial_rows(trials, info.n_trials, dataset)
        x, stim = read_columns(dataset, rows, columns), info.stim_id[rows]
        names = [f"trial-{r:04d}_stim-{s}" for r, s in zip(rows, stim)]
    return x.astype(np.float32), stim.astype(np.int64), names, {**file_checksum(dataset), "trials": trials}


def sample_seed(seed: int, row: int, sample: int) -> int:
    """The generator seed of one output image: fixed by (seed, input row, sample), not by batching."""
    return int(np.random.SeedSequence([seed, row, sample]).generate_state(1)[0])


@one_run
@memory_guard
def reconstruct(subject: int, *, betas: str | os.PathLike | None = None, trials: str | None = None,
                method: str = "latent", mapper: str | None = None, model: str | os.PathLike | None = None,
                pipeline: str | None = None, prior: str | os.PathLike | None = None, prior_guidance: float = 1.0,
                control_scale: float | None = None, high_level_from: int | None = None, input_scale: str = "auto",
                samples: int = 1, seed: int = 0, steps: int = 50, strength: float = 0.75,
                guidance_scale: float | None = None, noise_level: int = 0, batch_size: int = 8, max_sheet: int = 24,
                device: str = "auto", root: str | os.PathLike | None = None, out: str | os.PathLike | None = None,
                overwrite: bool = False) -> ReconstructResult:
    """Reconstruct images from a subject's betas.

    Parameters
    ----------
    subject : int
    betas : path-like, optional
        3D or 4D NIfTI on the model's grid, or (surface models) either hemisphere's ``.mgh`` of NSD's
        fsaverage betas (exactly one of ``betas`` and ``trials``).
    trials : str, optional
        ``shared`` or 0-based trial indices of the model's preprocessed dataset.
    method : {"latent", "unclip", "neuropictor"}
    mapper : str, optional
        Latent route: which of the subject's mappers (``pretrain --model latent-mapper --mapper``);
        default the first trained of ridge, cnn, vae, gcn.
    model : path-like, optional
        The mapper folder (latent), subject decoder folder (unclip) or NeuroPictor folder
        (neuropictor: default the subject's refined model, else the pretrained one) instead of the default.
    pipeline : str, optional
        Stable Diffusion folder or cached id: img2img for ``latent`` (default: the one the mapper
        was trained with, or the mapper's embedded autoencoder), unCLIP for ``unclip`` (required),
        the base model for ``neuropictor`` (default: the one it was trained on; its U-Net must match).
    prior : path-like, optional
        ``unclip``: a diffusion prior of the decoder (``pretrain --model prior``) that samples the
        image embedding from the decoder's prediction (guidance ``prior_guidance``), with the
        sample's seed.
    control_scale : float, optional
        ``neuropictor``: alpha, the weight of the ControlNet's residuals (0: semantics only; default 1).
    high_level_from : int, optional
        ``neuropictor``: 0-based trial of the subject's dataset whose semantic condition replaces
        every input's (its structure is kept).
    input_scale : {"auto", "raw", "zscored"}
        How a NIfTI's values are turned into model inputs (:func:`read_nifti_inputs`).
    samples : int
        Images per input (diffusion routes), each from its own seed (:func:`sample_seed`).
    steps, strength, guidance_scale, noise_level
        Diffusion settings (``strength``: img2img; ``noise_level``: unCLIP; ``guidance_scale``
        default :data:`GUIDANCE` of the method).
    batch_size : int
        Inputs per pipeline call.
    max_sheet : int
        Inputs shown on the contact sheet.
    out : path-like, optional
        Output folder (default ``<root>/sub-NN/sub-NN_recon-<method>_<input>``).

    Returns
    -------
    ReconstructResult
    """
    from fmrikit.devices import resolve_device

    check_option("--method", method, METHODS)
    check_option("--input-scale", input_scale, INPUT_SCALES)
    if (betas is None) == (trials is None):
        raise InputError("give a betas file or --trials", expected="exactly one", found="both" if betas else "neither")
    for name, value, low, high in (("--samples", samples, 1, None), ("--batch-size", batch_size, 1, None),
                                   ("--steps", steps, 1, None), ("--strength", strength, 0, 1),
                                   ("--max-sheet", max_sheet, 0, None), ("--noise-level", noise_level, 0, None),
                                   ("--prior-guidance", prior_guidance, 0, None),
                                   ("--guidance-scale", guidance_scale, 0, None),
                                   ("--control-scale", control_scale, 0, None),
                                   ("--high-level-from", high_level_from, 0, None)):
        if value is not None:
            check_number(name, value, low=low, high=high, low_open=name == "--strength")
    if out is not None:
        claim_outputs([out], kind="reconstruct", overwrite=overwrite, inputs=[betas, model, prior, pipeline],
                      root=root)
    dev = resolve_device(device)
    if prior is not None and method != "unclip":
        raise InputError("--prior applies to --method unclip", expected="--method unclip", found=f"--method {method}")
    if (control_scale is not None or high_level_from is not None) and method != "neuropictor":
        raise InputError("--control-scale and --high-level-from apply to --method neuropictor",
                         expected="--method neuropictor", found=f"--method {method}")
    guidance_scale = GUIDANCE[method] if guidance_scale is None else guidance_scale
    options = {"latent": {"mapper": mapper}, "unclip": {"prior": prior, "prior_guidance": prior_guidance},
               "neuropictor": {"control_scale": 1.0 if control_scale is None else control_scale,
                               "high_level_from": high_level_from}}[method]
    route = ROUTES[method](subject, model=model, pipeline=pipeline, root=root, device=dev, **options)
    if route.deterministic and samples > 1:
        raise InputError("the embedded autoencoder decodes deterministically: one sample per input",
                         expected="--samples 1, or --pipeline for diffusion", found=f"--samples {samples}")
    swap = f"-semantics{high_level_from}" if high_level_from is not None else ""
    tag = {"latent": f"latent-{route.record.get('mapper')}", "unclip": "unclip",
           "neuropictor": "neuropictor" + swap}[method]
    stem = (re.sub(r"^(lh|rh)\.", "", Path(betas).name).split(".")[0] if betas is not None
            else "trials-" + re.sub(r"[^0-9A-Za-z]+", "", trials))
    if out is None:
        out = subject_dir(root, subject) / f"{subject_label(subject)}_recon-{tag}_{stem}"
        claim_outputs([out], kind="reconstruct", overwrite=overwrite, inputs=[betas, route.model_path, route.dataset],
                      root=root)
    out = Path(out)
    if betas is not None:
        betas = Path(betas)
        surface_file = betas.name.endswith((".mgh", ".mgz"))
        if surface_file != bool(route.mesh):
            want = f"{route.mesh} betas (lh./rh. .mgh)" if route.mesh else "a NIfTI on the model's grid"
            raise InputError("the betas are not in the model's space", path=betas, expected=want,
                             found="surface betas" if surface_file else "a volume file")
        if route.mesh:
            x, source = read_surface_inputs(betas, route.ijk, int(route.volume_shape[1]), input_scale)
        else:
            x, source = read_nifti_inputs(betas, route.ijk, route.affine, route.volume_shape, input_scale)
        stim = _session_stimuli(betas, route.dataset, len(x))
        names = [f"trial-{k:04d}" + (f"_stim-{s}" if s >= 0 else "") for k, s in enumerate(stim)]
    else:
        if route.dataset is None or not route.dataset.is_file():
            raise MissingInputError("the model's dataset is gone", path=route.dataset, expected="a preprocessed dataset")
        x, stim, names, source = dataset_inputs(route.dataset, route.ijk, trials, route.mesh)
    warnings = [w for w in (training_overlap(route, betas, trials),) if w]
    for line in warnings:
        log.warning(line)
    run_id = new_run_id()
    with staged_dir(out, overwrite=overwrite, kind="reconstruct") as stage:
        n_sheet = min(max_sheet, len(x))
        sheet = np.empty((samples, n_sheet), dtype=object)  # only these images stay in memory
        predictions, written = [], []
        for start in track(range(0, len(x), batch_size), f"reconstruct {subject_label(subject)}",
                           total=-(-len(x) // batch_size)):
            rows = np.arange(start, min(start + batch_size, len(x)))
            pred = route.predict(torch.from_numpy(x[rows]))
            predictions.append(pred)
            for s in range(samples):
                seeds = [sample_seed(seed, int(r), s) for r in rows]
                out_images = route.generate(pred, seeds, steps=steps, strength=strength,
                                            guidance_scale=guidance_scale, noise_level=noise_level)
                written += _write_images(stage, out_images, [names[r] for r in rows], s, samples)
                for r, im in zip(rows[rows < n_sheet], out_images):
                    sheet[s, r] = im
        contact_sheet(stage / "contact_sheet.png", sheet, _truth_images(route, stim[:n_sheet]), names[:n_sheet])
        _write_predictions(stage / "predictions.h5", predictions, stim, names)
        write_sidecar(stage / "reconstruct.json", command="reconstruct", seed=seed, run_id=run_id,
                      inputs=[source, *route.inputs],
                      parameters={"subject": subject, "method": method, "mapper": route.record.get("mapper"),
                                  "model": str(route.model_path), "pipeline": route.record.get("pipeline"),
                                  "prior": str(prior) if prior else None, "prior_guidance": prior_guidance,
                                  "control_scale": control_scale, "high_level_from": high_level_from,
                                  "input_scale": input_scale, "samples": samples, "steps": steps,
                                  "strength": strength, "guidance_scale": guidance_scale, "noise_level": noise_level,
                                  "batch_size": batch_size, "device": str(dev), "betas": str(betas) if betas else None,
                                  "trials": trials},
                      outputs=["contact_sheet.png", "predictions.h5"] + [str(p.relative_to(stage)) for p in written],
                      root=root, folder=out,
                      extra={"route": route.record, "n_inputs": int(len(x)), "stim_id": stim.tolist(),
                             "warnings": warnings, "train_sessions": route.train_sessions,
                             "conventions": _conventions(route.dataset),
                             "seeds": [[sample_seed(seed, r, s) for r in range(len(x))] for s in range(samples)]})
    return ReconstructResult(out=out, images=[out / p.relative_to(stage) for p in written],
                             contact_sheet=out / "contact_sheet.png", n_inputs=len(x))


def training_overlap(route: Route, betas: Path | None, trials: str | None) -> str | None:
    """One line when the inputs include trials that trained the model (their reconstructions are not test results);
    None otherwise.

    Parameters
    ----------
    route : Route
        Its ``train_sessions`` name the sessions whose non-shared trials trained the model.
    betas : Path or None
        A betas file; an NSD ``betas_sessionNN`` file of a training session is warned about.
    trials : str or None
        ``shared`` (never trained on) or trial rows of the model's dataset.
    """
    from fmrikit.data.dataset import read_info

    if not route.train_sessions:
        return None
    trained = sorted(route.train_sessions)
    if betas is not None:
        match = SESSION_FILE.search(Path(betas).name)
        if match is None or int(match.group(1)) not in trained:
            return None
        return (f"{Path(betas).name} is session {int(match.group(1))}, whose non-shared trials trained "
                f"{route.model_path.name} (sessions {trained}): those reconstructions are not test results")
    if trials == "shared" or route.dataset is None or not route.dataset.is_file():
        return None
    info = read_info(route.dataset)
    rows = parse_trial_rows(trials, info.n_trials, route.dataset)
    seen = rows[np.isin(info.session[rows], trained) & ~info.shared[rows]]
    if not seen.size:
        return None
    return (f"{seen.size} of the {len(rows)} trials (e.g. trial {int(seen[0])}) trained {route.model_path.name} "
            f"(non-shared trials of sessions {trained}): their reconstructions are not test results")


def _conventions(dataset: Path | None) -> dict | None:
    """The data conventions of the model's dataset (None when it is gone)."""
    from fmrikit.data.dataset import read_info

    return read_info(dataset).conventions if dataset is not None and dataset.is_file() else None


def _truth_images(route: Route, stim: np.ndarray) -> list[np.ndarray] | None:
    """Ground-truth stimuli of the inputs, when every stimulus is known and readable."""
    from fmrikit.data.dataset import read_info, read_stimuli
    from fmrikit.errors import FmrikitError

    if route.dataset is None or not route.dataset.is_file() or (stim < 0).any():
        return None
    try:
        return list(read_stimuli(read_info(route.dataset), stim))
    except FmrikitError as exc:
        log.warning("no ground truth on the contact sheet: %s", exc.one_line())
        return None


def _write_images(stage: Path, images: np.ndarray, names: list[str], sample: int, n_samples: int) -> list[Path]:
    """PNGs of one sample of a batch: ``images/NAME.png``, or ``images/sample-KK/NAME.png`` for several samples."""
    from PIL import Image

    folder = stage / "images" if n_samples == 1 else stage / "images" / f"sample-{sample + 1:02d}"
    folder.mkdir(parents=True, exist_ok=True)
    for name, im in zip(names, images):
        Image.fromarray(im).save(folder / f"{name}.png")
    return [folder / f"{name}.png" for name in names]


def _write_predictions(path: Path, predictions: list, stim: np.ndarray, names: list[str]) -> None:
    """``predictions.h5``: the predicted latents / embeddings per input, with stim_id and names."""
    import h5py

    with h5py.File(path, "w") as f:
        f.create_dataset("prediction", data=torch.cat([p[0] for p in predictions]).float().numpy())
        if all(p[1] is not None for p in predictions):
            f.create_dataset("text_embeddings", data=torch.cat([p[1] for p in predictions]).float().numpy())
        f.create_dataset("stim_id", data=stim)
        f.create_dataset("name", data=np.array(names, dtype=h5py.string_dtype()))
