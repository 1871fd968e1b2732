"""Write outputs under a temporary name and rename them into place only on success.

A run that fails (bad input, interruption) therefore never leaves a partial output.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from fmrikit.errors import OutputExistsError


@contextlib.contextmanager
def staged_outputs(out_dir: str | os.PathLike, names: list[str],
                   overwrite: bool = False) -> Iterator[dict[str, Path]]:
    """Stage several output files in a hidden folder, then move them into ``out_dir``.

    Parameters
    ----------
    out_dir : path-like
        Final folder of the outputs (created if needed).
    names : list of str
        File (or folder) names of the outputs.
    overwrite : bool
        Replace outputs that exist already; otherwise refuse before any work.

    Yields
    ------
    dict of str to Path
        For each name, the temporary path to write to.

    Raises
    ------
    OutputExistsError
        If an output exists and ``overwrite`` is False.
    """
    out_dir = Path(out_dir)
    if not overwrite:
        existing = [n for n in names if (out_dir / n).exists()]
        if existing:
            raise OutputExistsError("output exists already; pass overwrite (--overwrite) to replace it",
                                    path=out_dir / existing[0])
    out_dir.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".staging-", dir=out_dir))
    try:
        yield {n: stage / n for n in names}
        for n in names:
            if (stage / n).exists():
                if (stage / n).is_dir() and (out_dir / n).is_dir():
                    shutil.rmtree(out_dir / n)  # os.replace cannot replace a non-empty folder
                os.replace(stage / n, out_dir / n)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


@contextlib.contextmanager
def staged_dir(final_dir: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Build a whole folder under a temporary name and rename it to ``final_dir`` on success.

    Parameters
    ----------
    final_dir : path-like
        The folder to create.
    overwrite : bool
        Replace an existing folder; otherwise refuse before any work.

    Yields
    ------
    Path
        The temporary folder to fill.
    """
    final_dir = Path(final_dir)
    if final_dir.exists() and not overwrite:
        raise OutputExistsError("output folder exists already; pass overwrite (--overwrite) to replace it",
                                path=final_dir)
    final_dir.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{final_dir.name}.staging-", dir=final_dir.parent))
    try:
        yield stage
        if final_dir.exists():
            shutil.rmtree(final_dir)
        os.replace(stage, final_dir)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
