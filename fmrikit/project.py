"""The project folder: where every command reads and writes a subject's derivatives, and every default path.

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
from fmrikit.errors import InputError, MissingInputError

DEFAULT_ROOT = Path("derivatives") / "fmrikit"
ROOT_ENV = "FMRIKIT_ROOT"


def project_root(root: str | os.PathLike | None = None) -> Path:
    """Resolve the project folder: ``root``, else ``$FMRIKIT_ROOT``, else ``./derivatives/fmrikit``."""
    if root is not None:
        return Path(root)
    return Path(os.environ.get(ROOT_ENV) or DEFAULT_ROOT)


def subject_label(subject: int) -> str:
    """``sub-NN`` label of a 1-based subject number.

    Raises
    ------
    InputError
        ``subject`` is not a number from 1.
    """
    if isinstance(subject, bool) or int(subject) != subject or subject < 1:
        raise InputError("subjects are numbered from 1", expected="--subject 1 or more", found=repr(subject))
    return f"sub-{int(subject):02d}"


def check_desc(desc: str) -> str:
    """Return ``desc`` if it is a BIDS ``desc-`` label (letters and digits only).

    Raises
    ------
    InputError
    """
    if not desc or not str(desc).isalnum():
        raise InputError("--desc must be letters and digits (a BIDS desc- label)", expected="e.g. troi, adaptRoi",
                         found=repr(desc))
    return desc


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


def subject_key(subject: int) -> str:
    """Key of a subject's parts in a model (input layer, voxel embeddings): its label, e.g. ``"sub-01"``."""
    return subject_label(subject)


def default_decoder_path(root: str | os.PathLike | None = None) -> Path:
    """Where ``pretrain`` writes, and ``roi-train`` / ``adapt-subject`` look for, the decoder."""
    return project_root(root) / "models" / "decoder"


def default_encoder_path(root: str | os.PathLike | None = None) -> Path:
    """Where ``pretrain --model encoder`` writes, and the encoder commands look first."""
    return project_root(root) / "models" / "encoder"


def subject_encoder_path(root: str | os.PathLike | None, subject: int, desc: str = "adapt") -> Path:
    """Where ``adapt-subject --model encoder`` writes: ``<root>/sub-NN/sub-NN_desc-<desc>_encoder``."""
    return subject_dir(root, subject) / f"{subject_label(subject)}_desc-{desc}_encoder"


def default_autoencoder_path(root=None) -> Path:
    """``<root>/models/autoencoder``."""
    return project_root(root) / "models" / "autoencoder"


def mapper_dir(root, subject: int, mapper: str) -> Path:
    """``<root>/sub-NN/sub-NN_desc-<mapper>_latentmapper``."""
    return subject_dir(root, subject) / f"{subject_label(subject)}_desc-{mapper}_latentmapper"


def default_flatmap_ae_path(root=None) -> Path:
    """``<root>/models/flatmap-ae``."""
    return project_root(root) / "models" / "flatmap-ae"


def default_neuropictor_path(root=None) -> Path:
    """``<root>/models/neuropictor``: the cross-subject model."""
    return project_root(root) / "models" / "neuropictor"


def adapted_neuropictor_path(root, subject: int, desc: str = "adapt") -> Path:
    """``<root>/sub-NN/sub-NN_desc-<desc>_neuropictor``: a subject's refined model."""
    return subject_dir(root, subject) / f"{subject_label(subject)}_desc-{desc}_neuropictor"


def subject_decoder_path(root: str | os.PathLike | None, subject: int, desc: str) -> Path:
    """A subject decoder of ``roi-train`` / ``adapt-subject``: ``<root>/sub-NN/sub-NN_desc-<desc>_decoder``."""
    return subject_dir(root, subject) / f"{subject_label(subject)}_desc-{desc}_decoder"


def default_subject_decoder(root: str | os.PathLike | None, subject: int) -> Path:
    """The subject's decoder folder: its ``troi``, else its ``adapt`` model.

    Raises
    ------
    MissingInputError
        Neither exists.
    """
    for desc in ("troi", "adapt"):
        folder = subject_decoder_path(root, subject, desc)
        if (folder / "config.json").is_file():
            return folder
    raise MissingInputError("no subject decoder", path=subject_dir(root, subject),
                            expected=f"run fmrikit roi-train or adapt-subject --subject {subject} (or pass --model)")


def prior_path(root: str | os.PathLike | None, subject: int) -> Path:
    """``<root>/sub-NN/sub-NN_desc-prior_prior``: a subject decoder's diffusion prior."""
    return subject_dir(root, subject) / f"{subject_label(subject)}_desc-prior_prior"


def flatmap_path(root: str | os.PathLike | None, subject: int, roi: str = "nsdgeneral", size: int = 256) -> Path:
    """The flatmap cache of a subject's dataset: ``<subject_dir>/<dataset stem>_flatmap-<size>.h5``."""
    return subject_dir(root, subject) / f"{dataset_stem(subject, roi)}_flatmap-{int(size)}.h5"
