"""HDF5 input gate and masked reads of NSD's HDF5 betas."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from fmrikit.errors import CorruptFileError, DataValueError, MissingInputError


def open_h5(path: str | os.PathLike, dataset: str | None = None):
    """Open an HDF5 file read-only after checking it exists, parses and holds ``dataset``.

    Parameters
    ----------
    path : path-like
    dataset : str, optional
        A dataset that must exist in the file.

    Returns
    -------
    h5py.File
        Open file; the caller closes it (use it as a context manager).
    """
    import h5py

    path = Path(path)
    if not path.is_file():
        raise MissingInputError("file not found", path=path, expected="an HDF5 file")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise CorruptFileError("not a readable HDF5 file (truncated or corrupt?)", path=path,
                               found=str(exc).splitlines()[0]) from exc
    if dataset is not None and dataset not in f:
        names = sorted(f.keys())
        f.close()
        raise CorruptFileError("dataset missing", path=path, expected=f"dataset '{dataset}'",
                               found=f"datasets {names}")
    return f


#: numpy dtype kinds by what a dataset must hold.
NUMBERS = "iuf"
INTEGERS = "iu"


def check_dtype(ds, kinds: str, path: str | os.PathLike) -> None:
    """Refuse an HDF5 dataset whose values are not of the given numpy kinds (text, complex, compound...).

    Parameters
    ----------
    ds : h5py.Dataset
    kinds : str
        Accepted ``dtype.kind`` letters: :data:`NUMBERS` (real numbers), :data:`INTEGERS`, ``"b"`` for booleans.
    path : path-like
        The file, for the message.

    Raises
    ------
    DataValueError
    """
    if ds.dtype.kind not in kinds:
        what = {"i": "integers", "u": "integers", "f": "real numbers", "b": "booleans"}
        expected = " or ".join(dict.fromkeys(what[k] for k in kinds))
        found = {"c": "complex numbers", "S": "text", "U": "text", "O": "text or objects", "V": "compound records"}
        raise DataValueError(f"dataset '{ds.name.lstrip('/')}' holds {found.get(ds.dtype.kind, ds.dtype.name)}",
                             path=path, expected=expected, found=str(ds.dtype))


def read_rows(ds, rows: np.ndarray) -> np.ndarray:
    """Rows of an h5py dataset in the given order, repeats allowed (h5py itself needs increasing unique
    indices); one contiguous run is read as a slice, which is much faster.

    Parameters
    ----------
    ds : h5py.Dataset
    rows : ndarray of int, shape (n,)

    Returns
    -------
    ndarray, shape (n,) + ds.shape[1:], of the dataset's dtype
    """
    rows = np.asarray(rows, dtype=np.int64)
    if not rows.size:
        return np.empty((0,) + ds.shape[1:], ds.dtype)
    unique, inverse = np.unique(rows, return_inverse=True)
    block = ds[int(unique[0]):int(unique[-1]) + 1] if unique[-1] - unique[0] + 1 == len(unique) else ds[unique]
    return block[inverse.ravel()]


def h5_betas_shape(path: str | os.PathLike, dataset: str = "betas") -> tuple[int, tuple[int, int, int]]:
    """Number of trials and (X, Y, Z) grid of an NSD HDF5 betas file, read from its header.

    NSD's MATLAB-written files hold ``/betas`` as (T, Z, Y, X) in h5py order.
    """
    with open_h5(path, dataset) as f:
        check_dtype(f[dataset], NUMBERS, path)
        shape = f[dataset].shape
    if len(shape) != 4:
        raise DataValueError("betas must be 4D", path=path, expected="(T, Z, Y, X)", found=str(shape))
    return shape[0], (shape[3], shape[2], shape[1])


def read_masked_betas_h5(path: str | os.PathLike, ijk: np.ndarray,
                         dataset: str = "betas") -> np.ndarray:
    """Read the betas of the given voxels from an NSD HDF5 file.

    NSD's layout (one voxel's trials per chunk, (T, 1, 1, 1), unfiltered) is read chunk by chunk: exactly the
    voxels' chunks, nothing else. Other layouts are read one z-slice's bounding box of selected voxels at a time,
    so memory stays at one slab and chunks outside the mask's boxes are never touched.

    Parameters
    ----------
    path : path-like
        HDF5 file with ``dataset`` of h5py shape (T, Z, Y, X).
    ijk : ndarray of int, shape (n_voxels, 3)
        Voxel indices (x, y, z).
    dataset : str
        Dataset name.

    Returns
    -------
    ndarray, shape (T, n_voxels)
        Stored values in the stored dtype (read-only, and a transposed view for NSD's layout: see
        :func:`as_float32_rows`).
    """
    ijk = np.asarray(ijk)
    with open_h5(path, dataset) as f:
        ds = f[dataset]
        try:
            if ds.chunks == (ds.shape[0], 1, 1, 1) and ds.id.get_create_plist().get_nfilters() == 0:
                return _read_voxel_chunks(ds, ijk)
            out = np.empty((ds.shape[0], len(ijk)), dtype=ds.dtype)
            for z in np.unique(ijk[:, 2]):
                cols = np.nonzero(ijk[:, 2] == z)[0]
                x, y = ijk[cols, 0], ijk[cols, 1]
                slab = ds[:, int(z), y.min():y.max() + 1, x.min():x.max() + 1]
                out[:, cols] = slab[:, y - y.min(), x - x.min()]
        except (OSError, RuntimeError, ValueError) as exc:
            raise CorruptFileError("cannot read data (truncated or corrupt?)", path=path,
                                   found=str(exc).splitlines()[0]) from exc
    return out


def _read_voxel_chunks(ds, ijk: np.ndarray) -> np.ndarray:
    """(T, n_voxels) of a dataset stored one unfiltered chunk per voxel, reading only those chunks (a chunk never
    written holds the fill value); a transposed view of the chunks as read, (n_voxels, T)."""
    dsid = ds.id
    fill = np.full(ds.shape[0], ds.fillvalue, dtype=ds.dtype).tobytes()

    def chunk(x: int, y: int, z: int) -> bytes:
        try:
            return dsid.read_direct_chunk((0, z, y, x))[1]
        except RuntimeError as exc:
            if "not allocated" not in str(exc):
                raise
            return fill

    raw = b"".join([chunk(x, y, z) for x, y, z in ijk.tolist()])
    return np.frombuffer(raw, dtype=ds.dtype).reshape(len(ijk), ds.shape[0]).T


def as_float32_rows(values: np.ndarray, block: int = 4096) -> np.ndarray:
    """A C-ordered float32 copy of a (T, V) array; a transposed view (one voxel's trials contiguous, as NSD's HDF5
    chunks are read) is copied in blocks of ``block`` voxels, several times faster than numpy's plain copy."""
    if values.flags.c_contiguous:
        return values.astype(np.float32)
    out = np.empty(values.shape, np.float32)
    for j in range(0, values.shape[1], block):
        out[:, j:j + block] = values[:, j:j + block]
    return out
