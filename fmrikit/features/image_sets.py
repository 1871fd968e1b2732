"""Images to run a model on: a dataset's stimuli (features from the cache) or image files."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fmrikit.data.dataset import DatasetInfo, read_stimuli
from fmrikit.errors import InputError
from fmrikit.features.base import FeatureExtractor
from fmrikit.io.images import IMAGE_SUFFIXES, check_image, image_key, list_images, read_image


@dataclass
class ImageSet:
    """Named images, read and featurised a batch at a time.

    Attributes
    ----------
    names : list of str
        One per image: ``stim-<id>`` for stimuli, the file stem for files.
    stim_id : ndarray of int64, shape (n,), or None
        0-based stimulus ids, when every image has one (stimuli, or files named ``..._stim-<id>``).
    info : DatasetInfo or None
        Dataset whose stimuli these are (features then come from the project's cache).
    paths : list of Path or None
        Image files, otherwise.
    """

    names: list[str]
    stim_id: np.ndarray | None
    info: DatasetInfo | None = None
    paths: list[Path] | None = None

    def __len__(self) -> int:
        return len(self.names)

    def subset(self, rows: np.ndarray) -> ImageSet:
        """The images at ``rows``, in that order."""
        rows = np.asarray(rows, dtype=np.int64)
        return ImageSet(names=[self.names[r] for r in rows],
                        stim_id=None if self.stim_id is None else self.stim_id[rows], info=self.info,
                        paths=None if self.paths is None else [self.paths[r] for r in rows])

    def images(self, rows: np.ndarray) -> list[np.ndarray]:
        """uint8 RGB images (H, W, 3) at ``rows`` (sizes may differ between files)."""
        if self.info is not None:
            return list(read_stimuli(self.info, self.stim_id[np.asarray(rows, dtype=np.int64)]))
        return [read_image(self.paths[r]) for r in rows]

    def features(self, rows: np.ndarray, extractor: FeatureExtractor, *, root=None, batch_size: int = 32,
                 device: str = "auto") -> np.ndarray:
        """Patch features of the images at ``rows``, float16 (n, L, P, C).

        Stimuli go through the project's feature cache; files are featurised directly, grouped by
        image size.
        """
        rows = np.asarray(rows, dtype=np.int64)
        if self.info is not None:
            from fmrikit.features.cache import dataset_features

            return dataset_features(self.info, self.stim_id[rows], extractor, "patches", root=root,
                                    batch_size=batch_size, device=device)
        images = self.images(rows)
        out = np.empty((len(rows), *extractor.patch_shape), np.float16)
        shapes = [im.shape for im in images]
        for shape in dict.fromkeys(shapes):
            same = [k for k, s in enumerate(shapes) if s == shape]
            out[same] = extractor.patches(np.stack([images[k] for k in same]), batch_size=batch_size,
                                          device=device)
        return out


def stimulus_images(info: DatasetInfo, stim_ids: np.ndarray) -> ImageSet:
    """A dataset's stimuli by 0-based id (sorted, without repeats)."""
    ids = np.unique(np.asarray(stim_ids, dtype=np.int64))
    return ImageSet(names=[f"stim-{i}" for i in ids], stim_id=ids, info=info)


def file_images(path: str | os.PathLike) -> ImageSet:
    """One image file, or the image files of a folder (sorted by name).

    Raises
    ------
    MissingInputError
        No such file or folder, or no image in the folder.
    InputError
        A file that is not an image, or an empty or truncated one (:class:`~fmrikit.errors.CorruptFileError`).
    """
    path = Path(path)
    if path.is_dir():
        found = list_images(path)
        paths = sorted(found.values())
    else:
        if path.is_file() and path.suffix.lower() not in IMAGE_SUFFIXES:
            raise InputError("not an image file", path=path, expected=" ".join(IMAGE_SUFFIXES), found=path.suffix)
        if not path.is_file():
            list_images(path)  # raises the missing-folder error
        paths = [path]
    for p in paths:
        check_image(p)
    keys = [image_key(p) for p in paths]
    ids = np.array(keys, dtype=np.int64) if all(isinstance(k, int) for k in keys) else None
    return ImageSet(names=[p.stem for p in paths], stim_id=ids, paths=paths)
