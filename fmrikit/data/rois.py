"""ROI volumes at a preprocessed dataset's voxels: sub-selections of its columns, atlas labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fmrikit.data.dataset import DatasetInfo, require_grid
from fmrikit.errors import DataValueError, MissingInputError


def roi_volume_path(info: DatasetInfo, roi: str) -> Path:
    """The NIfTI of an ROI: a file path as given, else the NSD atlas of the dataset's subject and space.

    Raises
    ------
    MissingInputError
        Neither a file nor an NSD atlas of an NSD-derived dataset.
    InputError
        A surface dataset (its ROIs are not volumes).
    """
    require_grid(info, "an ROI volume")
    path = Path(roi)
    if path.suffix in (".gz", ".nii"):
        if not path.is_file():
            raise MissingInputError("ROI file not found", path=path, expected="a NIfTI on the dataset's grid")
        return path
    if not info.nsd_root:
        raise MissingInputError("an NSD ROI name needs an NSD-derived dataset", path=info.path,
                                expected="a mask NIfTI path", found=f"ROI {roi!r} and no nsd_root attribute")
    from fmrikit.io.nsd import NSDLayout

    path = NSDLayout(info.nsd_root).roi_path(info.subject, info.space or "func1pt8mm", roi)
    if not path.is_file():
        raise MissingInputError("NSD ROI file not found", path=path, expected=f"{roi}.nii.gz in the subject's roi/")
    return path


def atlas_labels(info: DatasetInfo, roi: str) -> np.ndarray:
    """Integer label of every dataset voxel in an ROI volume.

    Parameters
    ----------
    info : DatasetInfo
    roi : str
        NSD atlas name (``prf-visualrois``, ``streams``...) or NIfTI path, on the dataset's grid.

    Returns
    -------
    ndarray of int64, shape (n_voxels,)
        The volume's value at each voxel (NSD: -1 non-cortical, 0 unlabelled, 1..N labels). A surface dataset
        reads its fsaverage atlas instead (:func:`fmrikit.data.surface.surface_atlas_labels`).

    Raises
    ------
    GridMismatchError
        The volume is not on the dataset's grid.
    """
    from fmrikit.io.nifti import check_same_grid, image_data, load_image

    if info.is_surface:
        from fmrikit.data.surface import surface_atlas_labels

        return surface_atlas_labels(info, roi)
    path = roi_volume_path(info, roi)
    img = load_image(path, ndim=3)
    check_same_grid({str(path): (img.shape, img.affine), str(info.path): (info.volume_shape, info.affine)})
    data = np.rint(image_data(img, path, np.float64)).astype(np.int64)
    return data[tuple(info.ijk.T)]


def roi_columns(info: DatasetInfo, roi: str, labels: list[int] | None = None,
                values: np.ndarray | None = None) -> np.ndarray:
    """Dataset columns inside an ROI (labels > 0, or the given labels).

    Parameters
    ----------
    info : DatasetInfo
    roi : str
        NSD atlas name or NIfTI path (:func:`atlas_labels`).
    labels : list of int, optional
    values : ndarray of int, shape (n_voxels,), optional
        ``atlas_labels(info, roi)`` when the caller has read it already.

    Returns
    -------
    ndarray of int64, shape (n,)
        Increasing column indices.

    Raises
    ------
    DataValueError
        The ROI holds none of the dataset's voxels.
    """
    values = atlas_labels(info, roi) if values is None else values
    inside = np.isin(values, labels) if labels is not None else values > 0
    if not inside.any():
        raise DataValueError("the ROI holds none of the dataset's voxels", path=info.path,
                             expected=f"voxels of ROI {roi}" + (f" labels {labels}" if labels else ""), found="0")
    return np.nonzero(inside)[0].astype(np.int64)
