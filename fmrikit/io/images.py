"""Stimulus and reconstruction images: folders of image files and HDF5 image bricks."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from fmrikit.errors import CorruptFileError, DataValueError, InputError, MissingInputError
from fmrikit.io.hdf5 import open_h5

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
#: File names that carry a 0-based stimulus id, e.g. ``trial-00012_stim-00042.png``.
STIM_ID = re.compile(r"(?:^|[_-])stim-(\d+)")


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as uint8 RGB, shape (H, W, 3)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError) as exc:
        raise CorruptFileError("not a readable image", path=path, found=str(exc)) from exc


def check_image(path: str | os.PathLike) -> None:
    """Refuse a file that does not hold a whole image (empty, truncated, or not an image), reading it once.

    Raises
    ------
    CorruptFileError
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise CorruptFileError("not a readable image (empty or truncated?)", path=path,
                               found=f"{type(exc).__name__}: {exc}") from exc


def image_key(path: Path) -> int | str:
    """Pairing key of an image file: its stimulus id if the name has ``stim-<id>``, else its stem."""
    match = STIM_ID.search(path.stem)
    return int(match.group(1)) if match else path.stem


def list_images(folder: str | os.PathLike) -> dict[int | str, Path]:
    """Image files of a folder by pairing key.

    Raises
    ------
    MissingInputError
        No such folder, or no image in it.
    DataValueError
        Two files share a key.
    """
    found: dict[int | str, Path] = {}
    for key, paths in list_image_groups(folder).items():
        if len(paths) > 1:
            raise DataValueError("two images for one stimulus", path=paths[1], expected="one file per stimulus",
                                 found=f"{paths[0].name} and {paths[1].name}")
        found[key] = paths[0]
    return found


def list_image_groups(folder: str | os.PathLike) -> dict[int | str, list[Path]]:
    """Image files of a folder by pairing key, several per key allowed (one reconstruction per trial of an image),
    in name order.

    Raises
    ------
    MissingInputError
        No such folder, or no image in it.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise MissingInputError("folder not found", path=folder, expected="a folder of images")
    found: dict[int | str, list[Path]] = {}
    for p in sorted(folder.iterdir()):
        if p.suffix.lower() in IMAGE_SUFFIXES:
            found.setdefault(image_key(p), []).append(p)
    if not found:
        raise MissingInputError("no images in folder", path=folder, expected=" ".join(IMAGE_SUFFIXES))
    return found


def load_image_pairs(pred: str | os.PathLike, truth: str | os.PathLike, truth_dataset: str = "imgBrick",
                     repeats: bool = False) -> tuple[list, list[np.ndarray], list[np.ndarray]]:
    """Pair reconstructions with their ground-truth images.

    Parameters
    ----------
    pred : path-like
        Folder of reconstructions, named by stimulus id (``..._stim-<id>.png``) or like the
        ground-truth files.
    truth : path-like
        Folder of ground-truth images, or an HDF5 brick whose row is the stimulus id.
    truth_dataset : str
        Dataset of the HDF5 brick.
    repeats : bool
        Accept several reconstructions of one stimulus (one per trial): each becomes a pair with the
        stimulus's ground truth. Without it they are refused.

    Returns
    -------
    keys : list
        Pairing keys, sorted (repeated for each reconstruction of a stimulus).
    gt, rec : list of ndarray of uint8, each (H, W, 3)
        Images in key order (sizes may differ between the two sides).

    Raises
    ------
    DataValueError
        The two sets do not match, or a stimulus has several reconstructions and ``repeats`` is False.
    """
    groups = list_image_groups(pred)
    if not repeats:
        twice = next((k for k, paths in groups.items() if len(paths) > 1), None)
        if twice is not None:
            raise DataValueError("several reconstructions of one stimulus (trials that repeat an image)",
                                 path=groups[twice][1], expected="one file per stimulus, or --repeats trials "
                                 "(score each trial) or --repeats average (average each stimulus's reconstructions)",
                                 found=f"{groups[twice][0].name} and {groups[twice][1].name}")
    pred_files = {k: paths[0] for k, paths in groups.items()}
    truth = Path(truth)
    if truth.is_dir():
        truth_files = list_images(truth)
        missing = sorted(set(pred_files) - set(truth_files), key=str)
        if missing:
            raise DataValueError("reconstructions without a ground-truth image", path=truth,
                                 expected=f"an image for each of {len(pred_files)} reconstructions",
                                 found=f"{len(missing)} missing, e.g. {pred_files[missing[0]].name}")
        order = sorted(groups, key=str)
        truth_images = {k: read_image(truth_files[k]) for k in order}
    else:
        not_ids = [p.name for k, p in pred_files.items() if not isinstance(k, int)]
        if not_ids:
            raise InputError("an HDF5 ground truth needs stimulus ids in the file names", path=pred,
                             expected="names like trial-0001_stim-00042.png", found=not_ids[0])
        order = sorted(groups)
        with open_h5(truth, truth_dataset) as f:
            brick = f[truth_dataset]
            if brick.ndim != 4 or brick.shape[3] != 3 or brick.dtype != np.uint8:
                raise DataValueError("not an RGB image brick", path=truth,
                                     expected=f"'{truth_dataset}' (N, H, W, 3) uint8", found=f"{brick.shape} {brick.dtype}")
            if order[-1] >= brick.shape[0]:
                raise DataValueError("stimulus id beyond the ground-truth brick", path=truth,
                                     expected=f"ids < {brick.shape[0]}", found=str(order[-1]))
            truth_images = {k: np.asarray(brick[k], dtype=np.uint8) for k in order}
    keys = [k for k in order for _ in groups[k]]
    return keys, [truth_images[k] for k in keys], [read_image(p) for k in order for p in groups[k]]
