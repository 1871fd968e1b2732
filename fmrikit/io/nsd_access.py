"""Reading an NSD tree from a script, in the spirit of tknapen/nsd_access: a subject's betas for some sessions,
trials or a mask; stimulus images by id; an atlas with its label names.

It is thin over the readers ``fmrikit preprocess`` uses (:class:`~fmrikit.io.nsd.NSDLayout`, the streaming NIfTI
and HDF5 readers), so sizes come from the files and nothing is z-scored: betas are NSD's values divided by 300
(percent signal change).

    from fmrikit.io.nsd_access import NSDAccess

    nsd = NSDAccess("/data/nsd")                                    # func1pt8mm, betas_fithrf_GLMdenoise_RR
    b = nsd.betas(1, sessions=[1, 2], mask="nsdgeneral")            # b.values (1500, 15724) float32
    images = nsd.images(b.design.stim_id[:8])                       # (8, 425, 425, 3) uint8
    labels, names = nsd.atlas(1, "prf-visualrois")                  # (81, 104, 83) int, {1: "V1v", ...}
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from fmrikit.errors import DataValueError, InputError
from fmrikit.io.nsd import NSDLayout, TrialDesign, read_ctab

#: NSD stores betas as int16 percent signal change x 300.
NSD_BETA_SCALE = 300.0


@dataclass(frozen=True)
class NSDBetas:
    """Betas of some trials at some voxels.

    Attributes
    ----------
    values : ndarray of float32, shape (n_trials, n_voxels)
        Percent signal change (NSD's stored values / 300), not z-scored.
    design : TrialDesign
        The trials, in the order of ``values``.
    ijk : ndarray of int64, shape (n_voxels, 3)
        Voxel indices (x, y, z) on the grid, in C order over (X, Y, Z).
    affine : ndarray, shape (4, 4)
        Voxel-to-world affine of the grid (mm).
    """

    values: np.ndarray
    design: TrialDesign
    ijk: np.ndarray
    affine: np.ndarray


class NSDAccess:
    """A subject's betas, the stimuli and the atlases of an NSD tree.

    Parameters
    ----------
    root : path-like
        Folder holding ``nsddata/``, ``nsddata_betas/`` and ``nsddata_stimuli/``.
    space : {"func1pt8mm", "func1mm"}
    betas_version : str
        ``betas_assumehrf``, ``betas_fithrf`` or ``betas_fithrf_GLMdenoise_RR``.
    """

    def __init__(self, root: str | os.PathLike, space: str = "func1pt8mm",
                 betas_version: str = "betas_fithrf_GLMdenoise_RR"):
        from fmrikit.checks import check_option
        from fmrikit.io.nsd import BETA_VERSIONS, SPACES

        check_option("space", space, SPACES)
        check_option("betas version", betas_version, BETA_VERSIONS)
        self.layout, self.space, self.betas_version = NSDLayout(root), space, betas_version

    def sessions(self, subject: int) -> list[int]:
        """Sessions with a betas file, sorted."""
        self.layout._check_subject(subject)
        return self.layout.available_sessions(subject, self.space, self.betas_version)

    def trials(self, subject: int, sessions: list[int] | None = None) -> TrialDesign:
        """The trials of some sessions (default all on disk), in chronological order, with their stimulus ids."""
        sessions = self.sessions(subject) if sessions is None else sorted(sessions)
        return self.layout.trial_design(subject, {s: self._n_volumes(subject, s) for s in sessions})

    def mask(self, subject: int, roi: str | np.ndarray = "nsdgeneral", labels: list[int] | None = None) -> np.ndarray:
        """A boolean mask (X, Y, Z): an NSD ROI (values > 0, or ``labels``), ``brainmask``, or an array as given."""
        from fmrikit.io.nifti import load_mask

        if not isinstance(roi, str):
            return np.asarray(roi, dtype=bool)
        path = (self.layout.brainmask_path(subject, self.space) if roi == "brainmask"
                else self.layout.roi_path(subject, self.space, roi))
        return load_mask(path, labels)[0]

    def atlas(self, subject: int, name: str) -> tuple[np.ndarray, dict[int, str]]:
        """An atlas volume (int, (X, Y, Z): -1 not cortical, 0 unlabelled, 1..N labels) and its label names."""
        from fmrikit.io.nifti import load_image

        img = load_image(self.layout.roi_path(subject, self.space, name), ndim=3)
        return np.rint(np.asarray(img.dataobj)).astype(np.int64), read_ctab(self.layout.ctab_path(subject, name))

    def betas(self, subject: int, sessions: list[int] | None = None, trials: np.ndarray | None = None,
              mask: str | np.ndarray = "nsdgeneral", labels: list[int] | None = None) -> NSDBetas:
        """Betas of a subject's trials at a mask's voxels, one session file at a time.

        Parameters
        ----------
        subject : int
        sessions : list of int, optional
            Default every session on disk.
        trials : ndarray of int or bool, optional
            Trials among those of ``sessions`` (0-based positions in chronological order); default all.
        mask : str or ndarray of bool, shape (X, Y, Z)
            NSD ROI name, ``brainmask``, or a mask array on the grid.
        labels : list of int, optional
            ROI values to keep (default every value > 0).

        Returns
        -------
        NSDBetas

        Raises
        ------
        MissingInputError, GridMismatchError, DataValueError
        """
        from fmrikit.io.hdf5 import read_masked_betas_h5
        from fmrikit.io.nifti import iter_masked_volumes, load_image

        design = self.trials(subject, sessions)
        rows = np.arange(len(design.stim_id)) if trials is None else np.asarray(trials)
        if rows.dtype == bool:
            rows = np.nonzero(rows)[0]
        if rows.size and (rows.min() < 0 or rows.max() >= len(design.stim_id)):
            raise InputError("trial positions out of range", expected=f"0 to {len(design.stim_id) - 1}",
                             found=f"{int(rows.min())} to {int(rows.max())}")
        chosen = self.mask(subject, mask, labels)
        brain = load_image(self.layout.brainmask_path(subject, self.space), ndim=3)
        if chosen.shape != brain.shape:
            raise DataValueError("mask of another grid", expected=f"shape {brain.shape}", found=str(chosen.shape))
        ijk = np.argwhere(chosen)
        values = np.empty((len(rows), len(ijk)), np.float32)
        for session in np.unique(design.session[rows]):
            path = self.layout.session_file(subject, self.space, self.betas_version, int(session))
            selected = design.session[rows] == session
            index = design.index_in_session[rows[selected]]
            if path.suffix == ".hdf5":
                block = read_masked_betas_h5(path, ijk)[index]
            else:
                wanted = np.zeros(int((design.session == session).sum()), bool)  # the file's volumes
                wanted[index] = True
                kept = np.concatenate([b[wanted[s:s + len(b)]] for s, b in iter_masked_volumes(path, ijk)])
                block = kept[np.searchsorted(np.nonzero(wanted)[0], index)]
            values[selected] = block.astype(np.float32) / NSD_BETA_SCALE
        picked = TrialDesign(design.stim_id[rows], design.session[rows], design.index_in_session[rows],
                             design.shared[rows], None if design.planned_repeats is None else
                             design.planned_repeats[rows])
        return NSDBetas(values=values, design=picked, ijk=ijk, affine=brain.affine)

    def images(self, stim_ids: np.ndarray) -> np.ndarray:
        """Stimulus images by 0-based id (NSD 73k id - 1, as ``trials/stim_id``), any order, repeats allowed.

        Returns
        -------
        ndarray of uint8, shape (n, 425, 425, 3)
        """
        from fmrikit.io.hdf5 import open_h5, read_rows

        ids = np.asarray(stim_ids, dtype=np.int64)
        with open_h5(self.layout.stimuli_path, "imgBrick") as f:
            brick = f["imgBrick"]
            if ids.size and (ids.min() < 0 or ids.max() >= brick.shape[0]):
                raise InputError("stimulus ids out of range", path=self.layout.stimuli_path,
                                 expected=f"0 to {brick.shape[0] - 1}", found=f"{int(ids.min())} to {int(ids.max())}")
            return read_rows(brick, ids)

    def _n_volumes(self, subject: int, session: int) -> int:
        from fmrikit.io.hdf5 import h5_betas_shape
        from fmrikit.io.nifti import load_image

        path = self.layout.session_file(subject, self.space, self.betas_version, session)
        return h5_betas_shape(path)[0] if path.suffix == ".hdf5" else load_image(path, ndim=4).shape[3]
