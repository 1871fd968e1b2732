"""Predicted voxel responses to images (``fmrikit encode``).

Outputs, in one folder written atomically:

``sub-NN_pred.nii.gz``    4D float32 (X, Y, Z, n_images) on the subject's grid, NaN outside its voxels
``sub-NN_pred.h5``        ``pred`` float32 (n_images, n_voxels), ``image_name``, ``stim_id`` (when every
                          image has one: then ``fmrikit evaluate encoding`` reads it), ``voxels/ijk``
``sub-NN_img-<name>_pred.png``  pictures of the first images (pycortex flatmaps, else nilearn mosaics)
``encode.json``           sidecar

For a subject on a surface (its dataset's ``mesh``): ``sub-NN_hemi-{L,R}_pred.mgh`` (float32 (n_vertices, 1, 1,
n_images) per hemisphere, NaN off the subject's vertices, as NSD stores surface betas) instead of the NIfTI,
``vertices/hemi`` and ``vertices/index`` instead of ``voxels/ijk``, and flat-mesh and inflated pictures.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from fmrikit._progress import track
from fmrikit.checks import check_number
from fmrikit.errors import InputError
from fmrikit.features.image_sets import ImageSet, file_images, stimulus_images
from fmrikit.io.atomic import claim_outputs, one_run, staged_dir
from fmrikit.io.provenance import file_checksum, new_run_id, write_sidecar
from fmrikit.project import subject_key
from fmrikit.engine.serialization import weights_checksum
from fmrikit.project import subject_dir, subject_label
from fmrikit.devices import memory_guard

#: Pictures drawn by default (one PNG per image; about a second each).
MAX_FLATMAPS = 16


@dataclass
class EncodeResult:
    """Where ``encode`` wrote, and how many images it predicted."""

    out: Path
    n_images: int
    files: list[str]


@one_run
@memory_guard
def encode_images(images: str | os.PathLike | None, subject: int, *, model: str | os.PathLike | None = None,
                  shared: bool = False, root: str | os.PathLike | None = None, out: str | os.PathLike | None = None,
                  batch_size: int = 32, max_flatmaps: int = MAX_FLATMAPS, device: str = "auto",
                  overwrite: bool = False) -> EncodeResult:
    """Predict a subject's voxel responses to images with a universal encoder.

    Parameters
    ----------
    images : path-like or None
        An image file or a folder of images; None with ``shared``.
    subject : int
    model : path-like, optional
        Encoder folder (default: ``<root>/models/encoder`` if it holds the subject, else the
        subject's ``sub-NN_desc-adapt_encoder``).
    shared : bool
        Predict the subject's test images (the dataset's shared stimuli) instead of files.
    root : path-like, optional
        Project folder.
    out : path-like, optional
        Output folder (default ``<root>/sub-NN/sub-NN_encode-<images name or "shared">``).
    batch_size : int
        Images per forward pass.
    max_flatmaps : int
        Pictures for the first this many images (0 for none): pycortex flatmaps when the subject has a pycortex
        subject, else nilearn mosaics.
    device : str
    overwrite : bool

    Returns
    -------
    EncodeResult
    """
    from fmrikit.data.dataset import read_info
    from fmrikit.features.registry import spec_extractor
    from fmrikit.io.nifti import write_nifti_series
    from fmrikit.viz.flatmap import voxels_to_volume
    from fmrikit.viz.maps import MapTarget
    from fmrikit.devices import resolve_device
    from fmrikit.methods.encoder.runs import encoder_dataset, find_encoder, load_encoder, subject_info

    if (images is None) == (not shared):
        raise InputError("give images or --shared, not both", expected="IMAGE_OR_DIR or --shared",
                         found="both" if shared else "neither")
    check_number("--batch-size", batch_size, low=1)
    check_number("--max-flatmaps", max_flatmaps, low=0)
    key, label = subject_key(subject), subject_label(subject)
    path = find_encoder(root, subject, model)
    name = "shared" if shared else Path(images).stem
    out = Path(out) if out is not None else subject_dir(root, subject) / f"{label}_encode-{name}"
    claim_outputs([out], kind="encode", overwrite=overwrite, inputs=[path, images], root=root)
    dev = resolve_device(device)
    encoder, record = load_encoder(path, device=dev)
    entry = subject_info(record, key, path)
    mesh = entry.get("mesh", "")
    # what the pictures need, checked before the work (a surface is drawn on its mesh)
    target = None if mesh else MapTarget.from_record(entry).check(pycortex=max_flatmaps > 0)
    if shared:
        info = read_info(encoder_dataset(record, key, path))
        image_set = stimulus_images(info, info.stim_id[info.shared])
        if not len(image_set):
            raise InputError("the subject's dataset has no shared images", path=info.path, expected="trials/shared")
    else:
        image_set = file_images(images)
    extractor = spec_extractor(record["features"])
    ijk = encoder.voxel_index[key].ijk.cpu().numpy().astype(np.int64)
    shape, affine = tuple(entry["volume_shape"]), np.asarray(entry["affine"])
    n = len(image_set)
    with staged_dir(out, overwrite=overwrite, kind="encode") as stage:
        pred = _predict_to_h5(stage / f"{label}_pred.h5", encoder, key, image_set, extractor, ijk, root=root,
                              batch_size=batch_size, device=dev, mesh=mesh)
        if mesh:
            files = [f"{label}_pred.h5", *_surface_series(stage, pred, ijk, shape[1], label)]
        else:
            write_nifti_series((voxels_to_volume(row, ijk, shape) for row in _rows(pred)), n, shape, affine,
                               stage / f"{label}_pred.nii.gz")
            files = [f"{label}_pred.h5", f"{label}_pred.nii.gz"]
        pictures = _pictures(stage, pred, image_set, ijk, target, entry, label, max_flatmaps) if max_flatmaps else {}
        files += [name for name, picture in pictures.items() if "error" not in picture]
        write_sidecar(stage / "encode.json", command="encode", seed=None, run_id=new_run_id(),
                      inputs=[{"path": str(path.resolve()), "sha256": weights_checksum(path)}]
                      + ([file_checksum(p) for p in image_set.paths] if image_set.paths else []),
                      parameters={"subject": subject, "model": str(path), "images": None if shared else str(images),
                                  "shared": shared, "n_images": n, "batch_size": batch_size,
                                  "features": record["features"], "device": str(dev)},
                      outputs=files + ["encode.json"],
                      extra={"pictures": pictures, "conventions": entry.get("conventions")},
                      root=root, folder=out)
    return EncodeResult(out=out, n_images=n, files=files)


def predict_image_set(encoder, key: str, image_set: ImageSet, extractor, *, root=None, batch_size: int = 32,
                      device: torch.device | str = "cpu", description: str = "encode"):
    """Yield (rows, predicted responses float32 (n_batch, n_voxels)) a batch of images at a time."""
    from fmrikit.methods.encoder.fit import predict

    for start in track(range(0, len(image_set), batch_size), description):
        rows = np.arange(start, min(start + batch_size, len(image_set)))
        feats = torch.from_numpy(np.asarray(image_set.features(rows, extractor, root=root, batch_size=batch_size,
                                                               device=str(device)), np.float16))
        yield rows, predict(encoder, feats, key, batch_images=batch_size, device=device)


@contextmanager
def prediction_file(path: Path, names: list[str], stim_id: np.ndarray | None, ijk: np.ndarray, key: str,
                    mesh: str = ""):
    """Create a predictions HDF5 (the layout ``fmrikit evaluate encoding`` reads) and yield its ``pred`` dataset.

    Datasets: ``pred`` float32 (n_images, n_voxels), chunked by image, for the caller to fill;
    ``image_name``; ``stim_id`` int64 when given; ``voxels/ijk`` int32 (n_voxels, 3), or on a ``mesh``
    ``vertices/hemi`` and ``vertices/index`` (the dataset contract's surface columns).
    """
    import h5py

    with h5py.File(path, "w") as f:
        f.create_dataset("image_name", data=np.array(names, dtype=object), dtype=h5py.string_dtype())
        if stim_id is not None:
            f.create_dataset("stim_id", data=np.asarray(stim_id, dtype=np.int64))
        if mesh:
            f.create_dataset("vertices/hemi", data=np.asarray(ijk)[:, 0].astype(np.int8))
            f.create_dataset("vertices/index", data=np.asarray(ijk)[:, 1].astype(np.int32))
            f.attrs["mesh"] = mesh
        else:
            f.create_dataset("voxels/ijk", data=np.asarray(ijk, dtype=np.int32))
        f.attrs.update({"subject": key, "units": "predicted betas (z-scored units of the training data)"})
        yield f.create_dataset("pred", (len(names), len(ijk)), np.float32, chunks=(1, len(ijk)))


def _predict_to_h5(path: Path, encoder, key: str, image_set: ImageSet, extractor, ijk: np.ndarray, *, root,
                   batch_size: int, device, mesh: str = "") -> Path:
    with prediction_file(path, image_set.names, image_set.stim_id, ijk, key, mesh) as ds:
        for rows, pred in predict_image_set(encoder, key, image_set, extractor, root=root, batch_size=batch_size,
                                            device=device):
            ds[rows[0]:rows[-1] + 1] = pred
    return path


def _rows(path: Path):
    """The rows of ``pred`` one at a time (never the whole matrix)."""
    import h5py

    with h5py.File(path, "r") as f:
        for k in range(f["pred"].shape[0]):
            yield f["pred"][k]


def _pictures(stage: Path, pred_path: Path, image_set: ImageSet, ijk, target, entry: dict, label: str,
              limit: int) -> dict[str, dict]:
    """Pictures of the first ``limit`` predictions: {file name: picture record}."""
    import h5py

    from fmrikit.viz.maps import save_voxel_map
    from fmrikit.viz.surface import save_vertex_map

    with h5py.File(pred_path, "r") as f:
        first = f["pred"][:min(limit, f["pred"].shape[0])]
    lim = float(np.percentile(np.abs(first), 99)) or 1.0  # one symmetric range for every map
    pictures = {}
    for row, values in enumerate(first):
        name = f"{label}_img-{_safe(image_set.names[row])}_pred.png"
        style = dict(vmin=-lim, vmax=lim, cmap="RdBu_r", title=f"{label} predicted response: {image_set.names[row]}")
        if entry.get("mesh"):
            inflated = name.replace(".png", "_inflated.png")
            save_vertex_map(values, ijk[:, 0], ijk[:, 1], entry["volume_shape"][1], flat_png=stage / name,
                            inflated_png=stage / inflated, **style)
            pictures.update({name: {"picture": "flat mesh"}, inflated: {"picture": "inflated mesh"}})
            continue
        pictures[name] = save_voxel_map(values, ijk, target, png_path=stage / name, **style)["picture"]
    return pictures


def _surface_series(stage: Path, pred_path: Path, ijk: np.ndarray, n_vertices: int, label: str) -> list[str]:
    """``sub-NN_hemi-{L,R}_pred.mgh``: every image's predicted map per hemisphere, one image in memory at a time."""
    import h5py

    from fmrikit.io.surface import HEMIS, write_mgh_series
    from fmrikit.viz.surface import hemi_file_name, vertex_maps

    names = []
    with h5py.File(pred_path, "r") as f:
        n = f["pred"].shape[0]
    for hemi in HEMIS:
        name = hemi_file_name(label, "pred.mgh", hemi)
        write_mgh_series((vertex_maps(row, ijk[:, 0], ijk[:, 1], n_vertices)[hemi] for row in _rows(pred_path)), n,
                         n_vertices, stage / name)
        names.append(name)
    return names


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-" else "-" for c in name)
