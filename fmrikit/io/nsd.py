"""Reader for the Natural Scenes Dataset tree, written from NSD's documented formats.

Every size (sessions, trials, images, grid) is read from the files; nothing assumes
NSD's 40 sessions, 750 trials or 73k images.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fmrikit.errors import CorruptFileError, DataValueError, MissingInputError
from fmrikit.checks import check_option

BETA_VERSIONS = ("betas_assumehrf", "betas_fithrf", "betas_fithrf_GLMdenoise_RR")
SPACES = ("func1pt8mm", "func1mm")


@dataclass(frozen=True)
class TrialDesign:
    """The trials of one subject, in chronological order.

    Attributes
    ----------
    stim_id : ndarray of int64, shape (n_trials,)
        0-based stimulus index (NSD 73k id - 1).
    session : ndarray of int16, shape (n_trials,)
        1-based session number.
    index_in_session : ndarray of int64, shape (n_trials,)
        Position of the trial in its session's betas file.
    shared : ndarray of bool, shape (n_trials,)
        Whether the image belongs to the set every subject saw.
    planned_repeats : ndarray of int64, shape (n_trials,), optional
        How often the design shows the trial's image over all its sessions (NSD: 3); None when unknown.
    """

    stim_id: np.ndarray
    session: np.ndarray
    index_in_session: np.ndarray
    shared: np.ndarray
    planned_repeats: np.ndarray | None = None


class NSDLayout:
    """Paths and readers of an NSD tree (``nsddata``, ``nsddata_betas``, ``nsddata_stimuli``).

    Parameters
    ----------
    root : path-like
        Folder that holds ``nsddata/`` and ``nsddata_betas/``.
    """

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        if not (self.root / "nsddata").is_dir():
            raise MissingInputError("not an NSD tree", path=self.root,
                                    expected="a folder holding nsddata/ and nsddata_betas/",
                                    found="no nsddata/ folder")

    # -- paths -------------------------------------------------------------------------
    @property
    def expdesign_path(self) -> Path:
        return self.root / "nsddata/experiments/nsd/nsd_expdesign.mat"

    @property
    def stimuli_path(self) -> Path:
        return self.root / "nsddata_stimuli/stimuli/nsd/nsd_stimuli.hdf5"

    def subject_dir(self, subject: int) -> Path:
        return self.root / f"nsddata/ppdata/subj{subject:02d}"

    def responses_path(self, subject: int) -> Path:
        return self.subject_dir(subject) / "behav/responses.tsv"

    def brainmask_path(self, subject: int, space: str) -> Path:
        return self.subject_dir(subject) / space / "brainmask.nii.gz"

    def roi_path(self, subject: int, space: str, roi: str) -> Path:
        return self.subject_dir(subject) / space / "roi" / f"{roi}.nii.gz"

    def ctab_path(self, subject: int, roi: str) -> Path:
        name = roi.split(".", 1)[1] if roi.startswith(("lh.", "rh.")) else roi
        return self.root / f"nsddata/freesurfer/subj{subject:02d}/label/{name}.mgz.ctab"

    def betas_dir(self, subject: int, space: str, betas: str) -> Path:
        check_option("betas version", betas, BETA_VERSIONS)
        check_option("space", space, SPACES)
        return self.root / f"nsddata_betas/ppdata/subj{subject:02d}/{space}/{betas}"

    def session_file(self, subject: int, space: str, betas: str, session: int) -> Path:
        """The betas file of one session: NIfTI if present, else HDF5.

        Raises
        ------
        MissingInputError
            If neither exists.
        """
        folder = self.betas_dir(subject, space, betas)
        for name in (f"betas_session{session:02d}.nii.gz", f"betas_session{session:02d}.nii",
                     f"betas_session{session:02d}.hdf5"):
            if (folder / name).is_file():
                return folder / name
        if not folder.is_dir():
            self._check_subject(subject)
            raise MissingInputError("betas folder not found", path=folder,
                                    expected=f"{betas} betas in {space}")
        raise MissingInputError("session file not found", path=folder / f"betas_session{session:02d}.nii.gz",
                                expected=f"session {session} as .nii.gz or .hdf5",
                                found=f"sessions {self.available_sessions(subject, space, betas)}")

    def available_sessions(self, subject: int, space: str, betas: str) -> list[int]:
        """Sessions with a betas file (NIfTI or HDF5), sorted."""
        folder = self.betas_dir(subject, space, betas)
        found = set()
        for p in folder.glob("betas_session*"):
            digits = p.name[len("betas_session"):].split(".")[0]
            if digits.isdigit():
                found.add(int(digits))
        return sorted(found)

    def ncsnr_path(self, subject: int, space: str, betas: str) -> Path:
        return self.betas_dir(subject, space, betas) / "ncsnr.nii.gz"

    def anatomy_path(self, subject: int, space: str) -> Path | None:
        """The subject's anatomical reference on a functional grid, for pictures: ``T1_to_<space>.nii.gz``, else
        ``mean.nii.gz`` (the mean EPI), else ``brainmask.nii.gz``; None when there is none."""
        folder = self.subject_dir(subject) / space
        for name in (f"T1_to_{space}.nii.gz", "mean.nii.gz", "brainmask.nii.gz"):
            if (folder / name).is_file():
                return folder / name
        return None

    def _check_subject(self, subject: int) -> None:
        if not self.subject_dir(subject).is_dir():
            have = sorted(p.name for p in (self.root / "nsddata/ppdata").glob("subj*"))
            raise MissingInputError("subject not found", path=self.subject_dir(subject),
                                    expected=f"subject {subject}", found=", ".join(have) or "no subjects")

    # -- design ------------------------------------------------------------------------
    def load_expdesign(self) -> dict[str, np.ndarray]:
        """``nsd_expdesign.mat`` as arrays (MATLAB v5 via scipy, v7.3 via h5py).

        Returns
        -------
        dict
            ``masterordering`` (n_trials_total,), ``subjectim`` (n_subjects, n_per_subject),
            ``sharedix`` (n_shared,), all 1-based; ``stimpattern`` (sessions, runs, slots)
            when present.
        """
        path = self.expdesign_path
        if not path.is_file():
            raise MissingInputError("design file not found", path=path, expected="nsd_expdesign.mat")
        raw = _load_mat(path)
        out = {}
        for key in ("masterordering", "subjectim", "sharedix", "stimpattern"):
            if key in raw:
                out[key] = np.asarray(raw[key])
            elif key != "stimpattern":
                raise CorruptFileError("variable missing from design file", path=path,
                                       expected=f"variable '{key}'", found=f"{sorted(raw)}")
        out["masterordering"] = out["masterordering"].ravel().astype(np.int64)
        out["sharedix"] = out["sharedix"].ravel().astype(np.int64)
        out["subjectim"] = np.atleast_2d(out["subjectim"]).astype(np.int64)
        return out

    def trial_design(self, subject: int, trials_per_session: dict[int, int]) -> TrialDesign:
        """Chronological trials of the given sessions of a subject.

        Parameters
        ----------
        subject : int
            1-based subject number.
        trials_per_session : dict of int to int
            Sessions to include and the number of trials each betas file holds.

        Returns
        -------
        TrialDesign

        Raises
        ------
        DataValueError
            If a betas file's trial count disagrees with the design file or responses.tsv.
        """
        design = self.load_expdesign()
        master, subjectim = design["masterordering"], design["subjectim"]
        if subject > subjectim.shape[0]:
            raise MissingInputError("subject not in design file", path=self.expdesign_path,
                                    expected=f"subject {subject}", found=f"{subjectim.shape[0]} subjects")
        if "stimpattern" in design:
            counts = design["stimpattern"].reshape(design["stimpattern"].shape[0], -1).sum(1).astype(np.int64)
        else:  # tolerate designs without stimpattern: equal sessions of the files' length
            n = next(iter(trials_per_session.values()))
            counts = np.full(len(master) // n, n, dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(counts)])
        planned = np.bincount(master)  # presentations of each of the subject's images over the whole design
        responses = self._responses_counts(subject)
        stim, sess, idx, repeats = [], [], [], []
        for session, n_file in sorted(trials_per_session.items()):
            if session > len(counts):
                raise DataValueError("session not in design file", path=self.expdesign_path,
                                     expected=f"session <= {len(counts)}", found=f"session {session}")
            expected = int(counts[session - 1])
            if n_file != expected:
                raise DataValueError("trial count of the betas file disagrees with the design file",
                                     path=self.expdesign_path, expected=f"{expected} trials in session {session}",
                                     found=f"{n_file} in the betas file")
            if responses is not None and responses.get(session, expected) != expected:
                raise DataValueError("trial count of responses.tsv disagrees with the design file",
                                     path=self.responses_path(subject),
                                     expected=f"{expected} trials in session {session}",
                                     found=str(responses[session]))
            t = np.arange(offsets[session - 1], offsets[session])
            if t[-1] >= len(master):
                raise DataValueError("masterordering is shorter than the sessions", path=self.expdesign_path,
                                     expected=f">= {t[-1] + 1} trials", found=str(len(master)))
            k = master[t]
            stim.append(subjectim[subject - 1, k - 1] - 1)
            repeats.append(planned[k])
            sess.append(np.full(len(t), session, dtype=np.int16))
            idx.append(np.arange(len(t)))
        stim_id = np.concatenate(stim).astype(np.int64)
        shared = np.isin(stim_id + 1, design["sharedix"])
        return TrialDesign(stim_id, np.concatenate(sess), np.concatenate(idx), shared,
                           np.concatenate(repeats).astype(np.int64))

    def _responses_counts(self, subject: int) -> dict[int, int] | None:
        path = self.responses_path(subject)
        if not path.is_file():
            return None
        import pandas as pd

        try:
            table = pd.read_csv(path, sep="\t", usecols=["SESSION"])
        except (ValueError, pd.errors.ParserError) as exc:
            raise CorruptFileError("unreadable responses file", path=path, expected="TSV with a SESSION column",
                                   found=str(exc)) from exc
        return {int(s): int(n) for s, n in table["SESSION"].value_counts().items()}


def _load_mat(path: Path) -> dict[str, np.ndarray]:
    import h5py
    import scipy.io

    if h5py.is_hdf5(path):  # MATLAB v7.3 files are HDF5; h5py reads them transposed
        with h5py.File(path, "r") as f:
            return {k: np.asarray(f[k]).T for k in f.keys() if isinstance(f[k], h5py.Dataset)}
    try:
        return scipy.io.loadmat(path)
    except Exception as exc:
        raise CorruptFileError("not a readable .mat file", path=path, found=f"{type(exc).__name__}: {exc}") from exc


def read_ctab(path: str | os.PathLike) -> dict[int, str]:
    """Read a FreeSurfer-style ``.ctab`` (lines ``index name [r g b a]``) as {index: name}.

    The ``0 Unknown`` entry is dropped.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingInputError("colour table not found", path=path, expected="a .ctab file")
    names = {}
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].lstrip("-").isdigit() and int(parts[0]) > 0:
            names[int(parts[0])] = parts[1]
    return names


def atlas_names(layout: NSDLayout, subject: int, space: str) -> list[str]:
    """Atlases of a subject that have both a volume and a colour table (whole-brain files)."""
    roi_dir = layout.subject_dir(subject) / space / "roi"
    names = sorted(p.name[: -len(".nii.gz")] for p in roi_dir.glob("*.nii.gz") if not p.name.startswith(("lh.", "rh.")))
    return [n for n in names if layout.ctab_path(subject, n).is_file()]
