"""Stream the flatmaps of several subjects' caches (training rows) without loading them."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from fmrikit.data.flatmaps.cache import check_rows, open_cache, read_float_rows
from fmrikit.errors import DataValueError, InputError

class FlatmapStore:
    """Streams the flatmaps of several subjects' caches without loading them.

    Parameters
    ----------
    paths : list of path-like
        Flatmap caches, one per subject; all of one size.
    rows : list of ndarray of int
        The rows of each cache the store serves; the store's index runs over their concatenation.
    average_repeats : bool
        Serve one entry per (subject, image) of ``rows``: the mean flatmap of its trials (NeuroPictor's
        "we average three trials of the same image"), in order of increasing stimulus id per subject.
        Otherwise one entry per row.

    Notes
    -----
    The files stay open until :meth:`close` (or the end of a ``with`` block). A store can be pickled (e.g. into
    DataLoader workers) or used after a fork: it reopens its files in the new process.
    """

    def __init__(self, paths: list, rows: list, average_repeats: bool = False):
        if len(paths) != len(rows):
            raise InputError("one row array per flatmap cache is needed", expected=f"{len(paths)} row arrays",
                             found=str(len(rows)))
        self.paths = [Path(p) for p in paths]
        self.average_repeats = bool(average_repeats)
        self._files: list | None = None
        self._pid = None
        stims, sizes, self.rows, self._starts = [], [], [], []
        for path, r in zip(self.paths, rows):
            with open_cache(path) as f:
                n, size = f["flatmaps"].shape[:2]
                stim = f["trials/stim_id"][:].astype(np.int64)
            sizes.append(int(size))
            r = check_rows(r, n, path)
            if self.average_repeats:  # rows grouped by image; entry k is rows[starts[k]:starts[k + 1]]
                r = r[np.argsort(stim[r], kind="stable")]
                ids, first = np.unique(stim[r], return_index=True)
                starts = np.append(first, len(r))
            else:
                ids, starts = stim[r], np.arange(len(r) + 1)
            self.rows.append(r)
            self._starts.append(starts)
            stims.append(ids)
        if len(set(sizes)) > 1:
            raise DataValueError("flatmap caches of different sizes", path=self.paths[sizes.index(sizes[-1])],
                                 expected=f"size {sizes[0]}", found=f"size {sizes[-1]}")
        self.size = sizes[0] if sizes else 0
        self._stim = np.concatenate(stims) if stims else np.zeros(0, np.int64)
        self._offsets = np.cumsum([0] + [len(s) for s in stims])
        self._open()

    def _open(self) -> None:
        self._files = [open_cache(p) for p in self.paths]
        self._pid = os.getpid()

    def __len__(self) -> int:
        return int(self._offsets[-1])

    def _index(self, index) -> np.ndarray:
        return check_rows(index, len(self), "flatmap store")

    def read(self, index: np.ndarray) -> np.ndarray:
        """Flatmaps of store entries.

        Parameters
        ----------
        index : ndarray of int, shape (n,)
            Store entries (rows, or images with ``average_repeats``); any order, repeats allowed.

        Returns
        -------
        ndarray of float32, shape (n, size, size)
            In the order of ``index``; with ``average_repeats``, each the mean of its image's trials.
        """
        index = self._index(index)
        if self._files is None or self._pid != os.getpid():
            self._open()
        out = np.empty((len(index), self.size, self.size), np.float32)
        which = self.subject_of(index)
        for s in np.unique(which):
            sel = np.nonzero(which == s)[0]
            entry = index[sel] - self._offsets[s]
            first, count = self._starts[s][entry], np.diff(self._starts[s])[entry]
            local = self.rows[s][np.repeat(first - np.cumsum(count) + count, count) + np.arange(count.sum())]
            maps = read_float_rows(self._files[s]["flatmaps"], local)
            out[sel] = np.add.reduceat(maps, np.cumsum(count) - count, axis=0) / count[:, None, None]
        return out

    def stim_id(self, index: np.ndarray) -> np.ndarray:
        """Stimulus ids (int64, shape (n,)) of store entries."""
        return self._stim[self._index(index)]

    def trial_count(self, index: np.ndarray) -> np.ndarray:
        """Trials behind store entries (int64, shape (n,)): 1 each, or an image's repeats with ``average_repeats``."""
        index = self._index(index)
        which = self.subject_of(index)
        out = np.ones(len(index), np.int64)
        for s in np.unique(which):
            sel = which == s
            out[sel] = np.diff(self._starts[s])[index[sel] - self._offsets[s]]
        return out

    def subject_of(self, index: np.ndarray) -> np.ndarray:
        """Position in ``paths`` (int, shape (n,)) of store entries."""
        index = self._index(index)
        return np.searchsorted(self._offsets, index, side="right") - 1

    def close(self) -> None:
        """Close the files."""
        for f in self._files or []:
            f.close()
        self._files = None

    def __enter__(self) -> FlatmapStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_files"], state["_pid"] = None, None
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)

    def __del__(self):
        try:
            if self._pid == os.getpid():
                self.close()
        except Exception:  # interpreter shutdown
            pass
