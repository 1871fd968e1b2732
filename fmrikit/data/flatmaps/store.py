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

    Notes
    -----
    The files stay open until :meth:`close` (or the end of a ``with`` block). A store can be pickled (e.g. into
    DataLoader workers) or used after a fork: it reopens its files in the new process.
    """

    def __init__(self, paths: list, rows: list):
        if len(paths) != len(rows):
            raise InputError("one row array per flatmap cache is needed", expected=f"{len(paths)} row arrays",
                             found=str(len(rows)))
        self.paths = [Path(p) for p in paths]
        self._files: list | None = None
        self._pid = None
        stims, sizes, self.rows = [], [], []
        for path, r in zip(self.paths, rows):
            with open_cache(path) as f:
                n, size = f["flatmaps"].shape[:2]
                stims.append(f["trials/stim_id"][:].astype(np.int64))
            sizes.append(int(size))
            self.rows.append(check_rows(r, n, path))
        if len(set(sizes)) > 1:
            raise DataValueError("flatmap caches of different sizes", path=self.paths[sizes.index(sizes[-1])],
                                 expected=f"size {sizes[0]}", found=f"size {sizes[-1]}")
        self.size = sizes[0] if sizes else 0
        self._stim = np.concatenate([s[r] for s, r in zip(stims, self.rows)]) if stims else np.zeros(0, np.int64)
        self._offsets = np.cumsum([0] + [len(r) for r in self.rows])
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
            Positions in the concatenated rows; any order, repeats allowed.

        Returns
        -------
        ndarray of float32, shape (n, size, size)
            In the order of ``index``.
        """
        index = self._index(index)
        if self._files is None or self._pid != os.getpid():
            self._open()
        out = np.empty((len(index), self.size, self.size), np.float32)
        which = self.subject_of(index)
        for s in np.unique(which):
            sel = np.nonzero(which == s)[0]
            local = self.rows[s][index[sel] - self._offsets[s]]
            out[sel] = read_float_rows(self._files[s]["flatmaps"], local)
        return out

    def stim_id(self, index: np.ndarray) -> np.ndarray:
        """Stimulus ids (int64, shape (n,)) of store entries."""
        return self._stim[self._index(index)]

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
