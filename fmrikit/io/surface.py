"""Per-vertex files: FreeSurfer MGH / MGZ (NSD's fsaverage betas and labels) and GIFTI, through nibabel.

NSD's surface files hold one hemisphere each, named ``lh.<name>`` / ``rh.<name>``; an MGH image of
per-vertex data has the shape (n_vertices, 1, 1, n_frames). fmrikit writes single maps as GIFTI
(``.func.gii``, ``.label.gii``, with the hemisphere in ``AnatomicalStructurePrimary``) and series of
maps as MGH, streamed one frame at a time as NSD stores its betas.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Iterable

import numpy as np

from fmrikit.errors import CorruptFileError, DataValueError, MissingInputError

HEMIS = ("lh", "rh")
#: BIDS ``hemi-`` label and GIFTI anatomical structure of each hemisphere.
HEMI_LABEL = {"lh": "L", "rh": "R"}
_STRUCTURE = {"lh": "CortexLeft", "rh": "CortexRight"}
_PAIR = re.compile(r"(?<![A-Za-z])(lh|rh)(?=[._])")


def load_mgh(path: str | os.PathLike):
    """Open an MGH / MGZ image (data not read).

    Raises
    ------
    MissingInputError, CorruptFileError
    """
    import nibabel as nib

    path = Path(path)
    if not path.is_file():
        raise MissingInputError("surface file not found", path=path, expected="an .mgh or .mgz file")
    try:
        return nib.freesurfer.MGHImage.from_filename(str(path))
    except Exception as exc:
        raise CorruptFileError("not a readable MGH/MGZ file", path=path, found=f"{type(exc).__name__}: {exc}") from exc


def mgh_frames(path: str | os.PathLike) -> tuple[int, int, np.dtype]:
    """Vertices, frames and stored dtype of a per-vertex MGH image, from its header.

    Raises
    ------
    DataValueError
        Not shaped (n_vertices, 1, 1[, n_frames]).
    """
    img = load_mgh(path)
    shape = img.shape + (1,) * (4 - len(img.shape))
    if shape[1:3] != (1, 1):
        raise DataValueError("not a per-vertex surface image", path=path, expected="shape (n_vertices, 1, 1, n)",
                             found=str(img.shape))
    return int(shape[0]), int(shape[3]), np.dtype(img.header.get_data_dtype())


def read_mgh_frames(path: str | os.PathLike, vertices: np.ndarray | None = None,
                    checksum: dict | None = None) -> np.ndarray:
    """The stored values of a per-vertex MGH image, frames as rows.

    Parameters
    ----------
    path : path-like
    vertices : ndarray of int, shape (V,), optional
        Vertices to keep (all by default).
    checksum : dict, optional
        Filled with the file's path, size and SHA-256, computed from the bytes read (the file is read once).

    Returns
    -------
    ndarray, shape (n_frames, V)
        In the file's stored dtype (int16 NSD betas stay integers; MGH has no scale factor).
    """
    import hashlib

    import nibabel as nib

    path = Path(path)
    n_vertices, n_frames, _ = mgh_frames(path)
    if checksum is None:
        img = load_mgh(path)
    else:
        raw = path.read_bytes()
        checksum.update({"path": str(path.resolve()), "bytes": len(raw), "sha256": hashlib.sha256(raw).hexdigest()})
        img = nib.freesurfer.MGHImage.from_bytes(raw)
    data = np.asarray(img.dataobj.get_unscaled()).reshape(n_vertices, n_frames)
    return np.ascontiguousarray((data if vertices is None else data[np.asarray(vertices)]).T)


def read_vertex_values(path: str | os.PathLike) -> np.ndarray:
    """One value per vertex from an MGH / MGZ (labels, ncsnr) or a one-map GIFTI file.

    Returns
    -------
    ndarray, shape (n_vertices,)

    Raises
    ------
    DataValueError
        More than one map in the file.
    """
    path = Path(path)
    if path.name.endswith(".gii"):
        import nibabel as nib

        if not path.is_file():
            raise MissingInputError("surface file not found", path=path, expected="a GIFTI file")
        try:
            arrays = nib.load(str(path)).darrays
        except Exception as exc:
            raise CorruptFileError("not a readable GIFTI file", path=path, found=str(exc)) from exc
        if len(arrays) != 1:
            raise DataValueError("a per-vertex map must hold one data array", path=path, expected="1",
                                 found=str(len(arrays)))
        return np.asarray(arrays[0].data).ravel()
    n_vertices, n_frames, _ = mgh_frames(path)
    if n_frames != 1:
        raise DataValueError("a per-vertex map must hold one frame", path=path, expected="1", found=str(n_frames))
    return read_mgh_frames(path)[0]


def hemi_pair(path: str | os.PathLike) -> dict[str, Path]:
    """Both hemispheres' files of a per-hemisphere file name (``lh.betas_session01.mgh`` ->
    ``rh.betas_session01.mgh``; also ``lh_training_fmri.npy`` and BIDS ``hemi-L`` names).

    Raises
    ------
    DataValueError
        The name carries no hemisphere.
    """
    path = Path(path)
    bids = re.search(r"hemi-([LR])(?=[._])", path.name)
    if bids:
        names = {h: path.name.replace(bids.group(0), f"hemi-{HEMI_LABEL[h]}", 1) for h in HEMIS}
    else:
        match = _PAIR.search(path.name)
        if match is None:
            raise DataValueError("the file name names no hemisphere", path=path,
                                 expected="lh./rh. (NSD), lh_/rh_ or hemi-L/hemi-R in the name", found=path.name)
        names = {h: path.name[:match.start()] + h + path.name[match.end():] for h in HEMIS}
    return {h: path.with_name(n) for h, n in names.items()}


def save_gifti_map(values: np.ndarray, path: str | os.PathLike, hemi: str, *,
                   label_names: dict[int, str] | None = None, names: list[str] | None = None) -> Path:
    """Write one hemisphere's per-vertex map(s) as GIFTI.

    Parameters
    ----------
    values : ndarray, shape (n_vertices,) or (n_maps, n_vertices)
        Float maps (``.func.gii``: NaN where there is no value) or, with ``label_names``, integer labels
        (``.label.gii``: 0 unlabelled).
    path : path-like
    hemi : {"lh", "rh"}
    label_names : dict of int to str, optional
        Names of the labels > 0; makes a label file with one colour per label (matplotlib ``tab20``).
    names : list of str, optional
        A name per map (GIFTI ``Name`` metadata).

    Returns
    -------
    Path
    """
    import nibabel as nib

    values = np.atleast_2d(np.asarray(values))
    meta = nib.gifti.GiftiMetaData({"AnatomicalStructurePrimary": _STRUCTURE[hemi]})
    image = nib.gifti.GiftiImage(meta=meta)
    if label_names is not None:
        import matplotlib

        table = nib.gifti.GiftiLabelTable()
        colours = matplotlib.colormaps["tab20"]
        for key, name in {0: "unlabelled", **label_names}.items():
            label = nib.gifti.GiftiLabel(int(key), *((1.0, 1.0, 1.0, 0.0) if key == 0 else colours((key - 1) % 20)))
            label.label = name
            table.labels.append(label)
        image.labeltable = table
    for k, row in enumerate(values):
        data = row.astype(np.int32) if label_names is not None else row.astype(np.float32)
        array_meta = {"Name": names[k]} if names else {}
        image.add_gifti_data_array(nib.gifti.GiftiDataArray(
            data, intent="NIFTI_INTENT_LABEL" if label_names is not None else "NIFTI_INTENT_NONE",
            datatype="NIFTI_TYPE_INT32" if label_names is not None else "NIFTI_TYPE_FLOAT32",
            meta=nib.gifti.GiftiMetaData(array_meta)))
    path = Path(path)
    nib.save(image, str(path))
    return path


def write_mgh_series(frames: Iterable[np.ndarray], n_frames: int, n_vertices: int, path: str | os.PathLike) -> Path:
    """Write per-vertex maps as one float32 MGH image (n_vertices, 1, 1, n_frames), a frame at a time.

    MGH stores the vertex index fastest, so each frame is one contiguous block and only one is in memory.

    Parameters
    ----------
    frames : iterable of ndarray, each shape (n_vertices,)
    n_frames, n_vertices : int
    path : path-like
        ``.mgh`` (uncompressed).

    Raises
    ------
    DataValueError
        A frame of another length, or a frame count other than ``n_frames``.
    """
    from nibabel.freesurfer.mghformat import MGHHeader

    path = Path(path)
    header = MGHHeader()
    header.set_data_dtype(np.float32)
    header.set_data_shape((n_vertices, 1, 1, n_frames))
    written = 0
    with open(path, "wb") as f:
        header.writehdr_to(f)
        f.seek(header.get_data_offset())
        for frame in frames:
            frame = np.asarray(frame)
            if frame.shape != (n_vertices,):
                raise DataValueError("a surface map of another length", path=path, expected=f"({n_vertices},)",
                                     found=str(frame.shape))
            f.write(frame.astype(">f4").tobytes())
            written += 1
        header.writeftr_to(f)
    if written != n_frames:
        raise DataValueError("wrong number of surface maps", path=path, expected=str(n_frames), found=str(written))
    return path
