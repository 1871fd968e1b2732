"""The project folder: where every command reads and writes a subject's derivatives.

Layout (BIDS-derivatives style)::

    <root>/dataset_description.json
    <root>/sub-01/sub-01_desc-preproc_betas.h5
    <root>/sub-01/sub-01_desc-preproc_betas.json   (sidecar)
    <root>/sub-01/sub-01_desc-preproc_mask.nii.gz
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from fmrikit._version import __version__

DEFAULT_ROOT = Path("derivatives") / "fmrikit"
ROOT_ENV = "FMRIKIT_ROOT"


def project_root(root: str | os.PathLike | None = None) -> Path:
    """Resolve the project folder: ``root``, else ``$FMRIKIT_ROOT``, else ``./derivatives/fmrikit``."""
    if root is not None:
        return Path(root)
    return Path(os.environ.get(ROOT_ENV) or DEFAULT_ROOT)


def subject_label(subject: int) -> str:
    """``sub-NN`` label of a 1-based subject number."""
    return f"sub-{int(subject):02d}"


def subject_dir(root: str | os.PathLike | None, subject: int) -> Path:
    """Folder of one subject's derivatives."""
    return project_root(root) / subject_label(subject)


def dataset_stem(subject: int, roi: str | None = None) -> str:
    """File-name stem of a subject's preprocessed dataset.

    ``sub-01_desc-preproc`` for the default ROI (nsdgeneral); another voxel selection adds a
    BIDS ``roi-`` entity, e.g. ``sub-01_roi-brainmask_desc-preproc``.
    """
    label = subject_label(subject)
    if roi is None or roi == "nsdgeneral":
        return f"{label}_desc-preproc"
    return f"{label}_roi-{''.join(c for c in roi if c.isalnum())}_desc-preproc"


def preproc_betas_path(root: str | os.PathLike | None, subject: int, roi: str | None = None) -> Path:
    """The preprocessed dataset of a subject (see :mod:`fmrikit.data.dataset`)."""
    return subject_dir(root, subject) / f"{dataset_stem(subject, roi)}_betas.h5"


def ensure_dataset_description(root: str | os.PathLike | None) -> Path:
    """Write the derivatives' ``dataset_description.json`` once."""
    path = project_root(root) / "dataset_description.json"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({
            "Name": "fmrikit derivatives",
            "BIDSVersion": "1.9.0",
            "DatasetType": "derivative",
            "GeneratedBy": [{"Name": "fmrikit", "Version": __version__}],
        }, indent=2) + "\n")
    return path
