"""Reader for the Algonauts 2023 challenge data (NSD on fsaverage, prepared by the organisers).

Per subject ``subjNN/``:

``training_split/training_fmri/{lh,rh}_training_fmri.npy``  float32 (n_images, n_challenge_vertices)
``training_split/training_images/train-%04d_nsd-%05d.png``   one image per row, in row order
``test_split/test_fmri/{lh,rh}_test_fmri.npy``              as above (released after the challenge; optional)
``test_split/test_images/test-%04d_nsd-%05d.png``
``roi_masks/{lh,rh}.all-vertices_fsaverage_space.npy``      (163842,), nonzero at the challenge vertices;
                                                             the fMRI columns are these vertices, increasing
``roi_masks/{lh,rh}.<class>_challenge_space.npy``           label per challenge vertex
``roi_masks/mapping_<class>.npy``                           pickled {label: name}

The ``nsd-%05d`` number is the 0-based NSD stimulus id (the imgBrick row). The betas are z-scored within
each NSD session and averaged over an image's repeats by the organisers.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from fmrikit.errors import CorruptFileError, DataValueError, MissingInputError
from fmrikit.io.surface import HEMIS

SPLITS = {"train": ("training_split", "training"), "test": ("test_split", "test")}
_NSD_ID = re.compile(r"_nsd-(\d+)\.png$")


class AlgonautsLayout:
    """Paths and readers of an Algonauts 2023 folder (the one holding ``subj01/``...).

    Parameters
    ----------
    root : path-like
    """

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        if not self.root.is_dir() or not any(self.root.glob("subj*/roi_masks")):
            raise MissingInputError("not an Algonauts 2023 folder", path=self.root,
                                    expected="subjNN/ folders with training_split/ and roi_masks/")

    def subject_dir(self, subject: int) -> Path:
        path = self.root / f"subj{subject:02d}"
        if not path.is_dir():
            have = sorted(p.name for p in self.root.glob("subj*"))
            raise MissingInputError("subject not found", path=path, expected=f"subject {subject}",
                                    found=", ".join(have) or "no subjects")
        return path

    def fmri_path(self, subject: int, split: str, hemi: str) -> Path:
        folder, word = SPLITS[split]
        return self.subject_dir(subject) / folder / f"{word}_fmri" / f"{hemi}_{word}_fmri.npy"

    def images_dir(self, subject: int, split: str) -> Path:
        folder, word = SPLITS[split]
        return self.subject_dir(subject) / folder / f"{word}_images"

    def vertices_path(self, subject: int, hemi: str) -> Path:
        return self.subject_dir(subject) / "roi_masks" / f"{hemi}.all-vertices_fsaverage_space.npy"

    def roi_path(self, subject: int, hemi: str, roi_class: str) -> Path:
        return self.subject_dir(subject) / "roi_masks" / f"{hemi}.{roi_class}_challenge_space.npy"

    def mapping_path(self, subject: int, roi_class: str) -> Path:
        return self.subject_dir(subject) / "roi_masks" / f"mapping_{roi_class}.npy"

    def has_fmri(self, subject: int, split: str) -> bool:
        return all(self.fmri_path(subject, split, h).is_file() for h in HEMIS)

    def vertices(self, subject: int) -> dict[str, np.ndarray]:
        """The fsaverage vertex of each fMRI column, per hemisphere (int64, increasing)."""
        out = {}
        for hemi in HEMIS:
            mask = load_npy(self.vertices_path(subject, hemi))
            if mask.ndim != 1:
                raise DataValueError("the vertex mask is not one value per vertex",
                                     path=self.vertices_path(subject, hemi), expected="shape (n_vertices,)",
                                     found=str(mask.shape))
            out[hemi] = np.nonzero(mask)[0].astype(np.int64)
        return out

    def images(self, subject: int, split: str) -> tuple[list[str], np.ndarray]:
        """Image file names of a split in row order and their 0-based NSD stimulus ids.

        Raises
        ------
        MissingInputError
            No image folder; DataValueError: a name without ``_nsd-NNNNN``.
        """
        folder = self.images_dir(subject, split)
        if not folder.is_dir():
            raise MissingInputError("image folder not found", path=folder, expected=f"the {split} images")
        names = sorted(p.name for p in folder.glob("*.png"))
        ids = []
        for name in names:
            match = _NSD_ID.search(name)
            if match is None:
                raise DataValueError("image name carries no NSD id", path=folder / name,
                                     expected="...-NNNN_nsd-NNNNN.png", found=name)
            ids.append(int(match.group(1)))
        return names, np.asarray(ids, np.int64)

    def roi_classes(self, subject: int) -> list[str]:
        """ROI classes with both hemispheres' challenge-space labels and a name mapping."""
        folder = self.subject_dir(subject) / "roi_masks"
        names = sorted(p.name[3:-len("_challenge_space.npy")] for p in folder.glob("lh.*_challenge_space.npy"))
        return [n for n in names
                if self.roi_path(subject, "rh", n).is_file() and self.mapping_path(subject, n).is_file()]

    def roi_names(self, subject: int, roi_class: str) -> dict[int, str]:
        """``mapping_<class>.npy``: {label: name}, labels > 0."""
        mapping = load_npy(self.mapping_path(subject, roi_class), allow_pickle=True).item()
        return {int(k): str(v) for k, v in mapping.items() if int(k) > 0}


def load_npy(path: Path, allow_pickle: bool = False) -> np.ndarray:
    """``np.load`` with fmrikit's errors (pickles only where asked: the organisers' name mappings)."""
    if not path.is_file():
        raise MissingInputError("file not found", path=path, expected="a .npy file")
    try:
        return np.load(path, allow_pickle=allow_pickle)
    except (ValueError, OSError) as exc:
        raise CorruptFileError("not a readable .npy file", path=path, found=str(exc)) from exc
