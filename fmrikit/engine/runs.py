"""Run scaffolding every training command shares: outputs refused before any work, the per-epoch checkpoint
folder beside the output, the training log, and the settings record of the sidecar.

A run calls :func:`start_run` first (it fails in the first second when an output exists), trains with its
checkpoint folder, writes its outputs staged (:mod:`fmrikit.io.atomic`) and calls :func:`finish_run`.
"""

from __future__ import annotations

import csv
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Iterable

from fmrikit.errors import OutputExistsError

#: Per-epoch log and sidecar names inside a model folder.
LOG_NAME = "training_log.tsv"
SIDECAR_NAME = "run.json"


def checkpoint_path(out: str | Path) -> Path:
    """The per-epoch checkpoint folder of an output: hidden, beside it."""
    out = Path(out)
    return out.parent / f".{out.name}.checkpoint"


def refuse_existing(paths: Iterable[str | Path], overwrite: bool) -> None:
    """Refuse outputs that exist already, unless ``overwrite``.

    Raises
    ------
    OutputExistsError
        The first existing output.
    """
    if overwrite:
        return
    for path in paths:
        if Path(path).exists():
            raise OutputExistsError("output exists already; pass --overwrite to replace it", path=path)


def start_run(outputs: Iterable[str | Path], *, overwrite: bool) -> Path:
    """Check a training run's outputs before any work; the first output's checkpoint folder.

    Parameters
    ----------
    outputs : iterable of path-like
        Everything the run will write, its model folder first.
    overwrite : bool

    Returns
    -------
    Path
        The checkpoint folder of the first output (see :func:`checkpoint_path`).
    """
    outputs = [Path(p) for p in outputs]
    refuse_existing(outputs, overwrite)
    return checkpoint_path(outputs[0])


def finish_run(checkpoint: str | Path) -> None:
    """Remove a finished run's checkpoint folder (its outputs are written)."""
    shutil.rmtree(checkpoint, ignore_errors=True)


def write_log(path: str | Path, history: list[dict], title: str | None = None) -> None:
    """Write per-epoch training rows as a TSV (columns: union of the rows' keys) and their curves beside it.

    Parameters
    ----------
    path : path-like
        The ``.tsv``; the curves go to the same name with ``.png`` (:func:`curves_path`).
    history : list of dict
    title : str, optional
        Title of the curves (default: the log's file name).
    """
    from fmrikit.viz.curves import save_training_curves

    columns = list(dict.fromkeys(k for row in history for k in row))
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, columns, delimiter="\t", restval="")
        writer.writeheader()
        for row in history:
            writer.writerow({k: f"{v:.6g}" if isinstance(v, float) else v for k, v in row.items()})
    if history:
        save_training_curves(path, curves_path(path), title or Path(path).stem)


def curves_path(log: str | Path) -> Path:
    """The training-curve PNG beside a training log."""
    return Path(log).with_suffix(".png")


def settings_record(settings) -> dict:
    """Settings (a dataclass) as a JSON-ready dict."""
    return asdict(settings)
