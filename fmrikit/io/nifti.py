"""NIfTI input gate, grid checks, streaming reads of 4D betas, and atomic writes."""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from fmrikit.errors import CorruptFileError, DataValueError, GridMismatchError, MissingInputError
from fmrikit.io.provenance import HashingReader

#: Exceptions that mean "the bytes on disk are not a readable NIfTI".
_READ_ERRORS: tuple[type[Exception], ...] = (EOFError, OSError, zlib.error, gzip.BadGzipFile, ValueError)
try:  # ISA-L's inflate reads NSD's .nii.gz about twice as fast as zlib (benchmarks/nsd_scale.py)
    from isal.igzip import IGzipFile as GzipReader
    from isal.isal_zlib import error as _IsalError

    _READ_ERRORS += (_IsalError,)
except ImportError:  # pragma: no cover - a platform without the isal wheel
    GzipReader = gzip.GzipFile


def load_image(path: str | os.PathLike, ndim: int | tuple[int, ...] | None = None):
    """Open a NIfTI image lazily after checking that it exists and parses.

    Parameters
    ----------
    path : path-like
        ``.nii`` or ``.nii.gz`` file.
    ndim : int or tuple of int, optional
        Accepted numbers of dimensions.

    Returns
    -------
    nibabel.Nifti1Image
        The image, its data not yet read.

    Raises
    ------
    MissingInputError, CorruptFileError, DataValueError
    """
    import nibabel as nib

    path = Path(path)
    if not path.is_file():
        raise MissingInputError("file not found", path=path, expected="a NIfTI file")
    try:
        img = nib.load(path)
    except Exception as exc:  # nibabel raises several types for unreadable files
        raise CorruptFileError("not a readable NIfTI image", path=path, expected="NIfTI-1/2",
                               found=f"{type(exc).__name__}: {exc}") from exc
    if ndim is not None:
        accepted = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if img.ndim not in accepted:
            raise DataValueError("wrong number of dimensions", path=path,
                                 expected=" or ".join(f"{d}D" for d in accepted),
                                 found=f"{img.ndim}D {img.shape}")
    return img


def image_data(img, path: str | os.PathLike, dtype=None) -> np.ndarray:
    """The voxel values of an image opened by :func:`load_image`, read now.

    Raises
    ------
    CorruptFileError
        Truncated or corrupt data (the header alone parsed).
    """
    try:
        return np.asarray(img.dataobj, dtype=dtype)
    except _READ_ERRORS as exc:
        raise CorruptFileError("cannot read data (truncated or corrupt?)", path=path,
                               found=f"{type(exc).__name__}: {exc}") from exc


def load_mask(path: str | os.PathLike, labels: list[int] | None = None):
    """Read a 3D mask or label volume as a boolean mask.

    Parameters
    ----------
    path : path-like
        3D NIfTI (NSD ROI files use -1 outside cortex, 0 unlabelled, 1..N labels).
    labels : list of int, optional
        Keep voxels whose value is one of these; default: value > 0.

    Returns
    -------
    mask : ndarray of bool, shape (X, Y, Z)
    affine : ndarray, shape (4, 4)
    """
    img = load_image(path, ndim=(3, 4))
    if img.ndim == 4 and img.shape[3] != 1:
        raise DataValueError("a mask must be 3D", path=path, expected="3D", found=f"4D {img.shape}")
    data = image_data(img, path).reshape(img.shape[:3])
    if labels is None:
        mask = data > 0
    else:
        mask = np.isin(np.rint(data).astype(np.int64), np.asarray(labels, dtype=np.int64))
    if not mask.any():
        raise DataValueError("mask selects no voxel", path=path,
                             expected="labels > 0" if labels is None else f"labels {labels}",
                             found=f"values {np.unique(data)[:10].tolist()}")
    return mask, img.affine


def check_same_grid(named: dict[str, tuple[tuple[int, ...], np.ndarray | None]],
                    atol: float = 1e-3) -> None:
    """Check that images share one voxel grid; list every mismatch in one error.

    Parameters
    ----------
    named : dict
        ``{path_or_name: (shape_xyz, affine or None)}``; None skips the affine check
        (e.g. HDF5 betas carry no affine).
    atol : float
        Tolerance on affine entries (mm).

    Raises
    ------
    GridMismatchError
    """
    items = list(named.items())
    ref_name, (ref_shape, ref_aff) = items[0]
    problems = []
    for name, (shape, aff) in items[1:]:
        if tuple(shape[:3]) != tuple(ref_shape[:3]):
            problems.append((name, f"shape {tuple(ref_shape[:3])} as {ref_name}", f"{tuple(shape[:3])}"))
        if aff is not None and ref_aff is not None and not np.allclose(aff, ref_aff, atol=atol):
            problems.append((name, f"the affine of {ref_name}",
                             np.array2string(np.asarray(aff), precision=3, separator=",").replace("\n", "")))
    if problems:
        name, expected, found = problems[0]
        more = f" (+{len(problems) - 1} more mismatches)" if len(problems) > 1 else ""
        raise GridMismatchError("voxel grid differs" + more, path=name, expected=expected, found=found)


def volume_index(ijk: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """Flat indices of voxels in a NIfTI volume stored on disk (Fortran order).

    Parameters
    ----------
    ijk : ndarray of int, shape (n_voxels, 3)
    shape : tuple of int
        (X, Y, Z).

    Returns
    -------
    ndarray of int64, shape (n_voxels,)
    """
    return np.ravel_multi_index(tuple(ijk.T), shape, order="F").astype(np.int64)


def iter_masked_volumes(path: str | os.PathLike, ijk: np.ndarray, batch: int = 16,
                        checksum: dict | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """Stream a 4D NIfTI volume by volume, keeping only the given voxels.

    Only ``batch`` volumes are in memory at once; the data are read in their stored
    dtype (no float64 copy of the whole series).

    Parameters
    ----------
    path : path-like
        4D ``.nii`` or ``.nii.gz`` of shape (X, Y, Z, T).
    ijk : ndarray of int, shape (n_voxels, 3)
        Voxels to keep.
    batch : int
        Volumes decoded per step.
    checksum : dict, optional
        If given, receives ``{"path", "bytes", "sha256"}`` of the whole file, computed
        while it is read.

    Yields
    ------
    start : int
        Index of the first volume of the block.
    values : ndarray, shape (n_block, n_voxels)
        Stored values, scaled by the header's scl_slope / scl_inter when set.

    Raises
    ------
    CorruptFileError
        Truncated or corrupt file.
    """
    img = load_image(path, ndim=4)
    path = Path(path)
    proxy = img.dataobj  # the header of a loaded image forgets its offset; the proxy keeps it
    shape = img.shape
    dtype = np.dtype(proxy.dtype)
    n_vox = int(np.prod(shape[:3]))
    vol_bytes = n_vox * dtype.itemsize
    slope, inter = float(proxy.slope), float(proxy.inter)
    scaled = slope != 1 or inter != 0
    index = volume_index(np.asarray(ijk), shape[:3])
    try:
        with open(path, "rb") as raw:
            hashed = HashingReader(raw)
            stream = GzipReader(fileobj=hashed, mode="rb") if _is_gzip(path) else hashed
            _skip(stream, int(proxy.offset))
            for start in range(0, shape[3], batch):
                n = min(batch, shape[3] - start)
                buf = _read_exact(stream, n * vol_bytes)
                if len(buf) != n * vol_bytes:
                    raise CorruptFileError("file is truncated", path=path,
                                           expected=f"{shape[3]} volumes of {shape[:3]}",
                                           found=f"data ends in volume {start + len(buf) // vol_bytes}")
                block = np.frombuffer(buf, dtype=dtype).reshape(n, n_vox)[:, index]
                if scaled:
                    block = block * slope + inter
                yield start, block
            if checksum is not None:
                if stream is not hashed:
                    while stream.read(2**20):  # gzip trailer: CRC and size checked here
                        pass
                checksum.update({"path": str(path.resolve()), "bytes": path.stat().st_size,
                                 "sha256": hashed.hexdigest_to_end()})
    except _READ_ERRORS as exc:
        raise CorruptFileError("cannot read data (truncated or corrupt?)", path=path,
                               found=f"{type(exc).__name__}: {exc}") from exc


def save_nifti(data: np.ndarray, affine: np.ndarray, path: str | os.PathLike) -> Path:
    """Write a NIfTI image (written under a temporary name, then renamed).

    Parameters
    ----------
    data : ndarray, shape (X, Y, Z) or (X, Y, Z, T)
    affine : ndarray, shape (4, 4)
    path : path-like
        ``.nii`` or ``.nii.gz``.
    """
    import nibabel as nib

    path = Path(path)
    tmp = path.with_name(f".{path.name}.part{''.join(path.suffixes)}")
    img = nib.Nifti1Image(np.asarray(data), np.asarray(affine, dtype=np.float64))
    img.header.set_xyzt_units("mm", "sec")
    nib.save(img, tmp)
    os.replace(tmp, path)
    return path


def write_nifti_series(volumes: Iterable[np.ndarray], n_volumes: int, volume_shape: tuple[int, int, int],
                       affine: np.ndarray, path: str | os.PathLike) -> Path:
    """Write a 4D float32 NIfTI one 3D volume at a time, so the whole series is never in memory.

    NIfTI stores x fastest and t slowest, so each volume is one contiguous block after the
    352-byte header; the file is written under a temporary name, then renamed.

    Parameters
    ----------
    volumes : iterable of ndarray, each shape (X, Y, Z)
        Exactly ``n_volumes`` of them.
    n_volumes : int
    volume_shape : tuple of int
        (X, Y, Z).
    affine : ndarray, shape (4, 4)
    path : path-like
        ``.nii`` or ``.nii.gz``.

    Raises
    ------
    DataValueError
        A volume of another shape, or not ``n_volumes`` volumes.
    """
    import nibabel as nib

    path = Path(path)
    header = nib.Nifti1Header()
    header.set_data_shape((*volume_shape, n_volumes))
    header.set_data_dtype(np.float32)
    affine = np.asarray(affine, dtype=np.float64)
    header.set_qform(affine, code=1)
    header.set_sform(affine, code=1)
    header.set_xyzt_units("mm", "sec")
    header["vox_offset"] = 352
    tmp = path.with_name(f".{path.name}.part{''.join(path.suffixes)}")
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(tmp, "wb") as f:
            header.write_to(f)  # 348 bytes + the 4-byte "no extensions" flag
            count = 0
            for vol in volumes:
                if tuple(vol.shape) != tuple(volume_shape):
                    raise DataValueError("volume of another shape", path=path, expected=str(tuple(volume_shape)),
                                         found=str(vol.shape))
                f.write(np.asarray(vol, dtype="<f4").tobytes(order="F"))
                count += 1
        if count != n_volumes:
            raise DataValueError("wrong number of volumes", path=path, expected=str(n_volumes), found=str(count))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(2) == b"\x1f\x8b"


def _skip(stream, n: int) -> None:
    if len(_read_exact(stream, n)) != n:
        raise EOFError("file ends inside the header")


def _read_exact(stream, n: int) -> bytes:
    parts, got = [], 0
    while got < n:
        chunk = stream.read(n - got)
        if not chunk:
            break
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)
