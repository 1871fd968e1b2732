"""Run scaffolding every training command shares: its outputs claimed before any work
(:func:`fmrikit.io.atomic.claim_outputs`), the per-epoch checkpoint folder beside the output, the settings a
resumed run must keep, the training log, and the settings record of the sidecar.

A training function runs in a :func:`~fmrikit.io.atomic.run_scope` (the :func:`one_run` decorator) and calls
:func:`start_run` first, trains with its checkpoint folder, writes its outputs staged (:mod:`fmrikit.io.atomic`)
and calls :func:`finish_run`.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any, Iterable

from fmrikit.errors import InputError
from fmrikit.io.atomic import claim_outputs, one_run, register_checkpoint

__all__ = ["LOG_NAME", "SIDECAR_NAME", "SETTINGS_NAME", "checkpoint_path", "start_run", "finish_run", "one_run",
           "write_log", "settings_record"]

#: Per-epoch log and sidecar names inside a model folder.
LOG_NAME = "training_log.tsv"
SIDECAR_NAME = "run.json"
#: The settings of the run that wrote a checkpoint, inside it.
SETTINGS_NAME = "settings.json"


def checkpoint_path(out: str | Path) -> Path:
    """The per-epoch checkpoint folder of an output: hidden, beside it."""
    out = Path(out)
    return out.parent / f".{out.name}.checkpoint"


def start_run(outputs: Iterable[str | Path], *, kind: str, overwrite: bool, resume: bool = False,
              inputs: Iterable[str | Path | None] = (), root=None, settings: dict[str, Any] | None = None) -> Path:
    """Claim a training run's outputs before any work (:func:`~fmrikit.io.atomic.claim_outputs`); the first
    output's checkpoint folder.

    Parameters
    ----------
    outputs : iterable of path-like
        Everything the run will write, its model folder first.
    kind, overwrite, inputs, root
        As for :func:`~fmrikit.io.atomic.claim_outputs`.
    resume : bool
        The run continues an interrupted one: refused when an output exists already (the model is finished) or
        when the checkpoint was written with other ``settings``.
    settings : dict, optional
        What a resumed run must keep unchanged (JSON-able; dataclasses allowed), recorded in each checkpoint
        (``settings.json``).

    Returns
    -------
    Path
        The checkpoint folder of the first output (see :func:`checkpoint_path`).

    Raises
    ------
    InputError
        As :func:`~fmrikit.io.atomic.claim_outputs`, or settings that differ from the checkpoint's.
    """
    outputs = claim_outputs(outputs, kind=kind, overwrite=overwrite, resume=resume, inputs=inputs, root=root)
    checkpoint = checkpoint_path(outputs[0])
    record = _plain(settings) if settings is not None else None
    if resume and record is not None:
        _check_same_settings(checkpoint, record)
    register_checkpoint(checkpoint, record)
    return checkpoint


def _check_same_settings(checkpoint: Path, record: dict) -> None:
    """Refuse to resume a checkpoint written with other settings."""
    for path in sorted(checkpoint.rglob(SETTINGS_NAME)) if checkpoint.is_dir() else []:
        try:
            old = json.loads(path.read_text())
        except ValueError:
            continue
        changed = _first_difference(old, record)
        if changed is not None:
            key, before, now = changed
            raise InputError(f"the checkpoint was written with other settings ({key}); resume with the same "
                             "options, or start again without --resume", path=checkpoint,
                             expected=f"{key} {json.dumps(before)}", found=json.dumps(now))


def _first_difference(old: Any, new: Any, key: str = "") -> tuple[str, Any, Any] | None:
    if isinstance(old, dict) and isinstance(new, dict):
        for k in sorted(set(old) | set(new)):
            found = _first_difference(old.get(k), new.get(k), f"{key}.{k}" if key else k)
            if found:
                return found
        return None
    return None if old == new else (key, old, new)


def _plain(value: Any) -> Any:
    """A JSON round trip of settings (dataclasses as dicts, tuples as lists, paths as absolute strings)."""
    def default(obj):
        if is_dataclass(obj):
            return asdict(obj)
        return os.path.abspath(obj) if isinstance(obj, Path) else str(obj)

    return json.loads(json.dumps(value, default=default))


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
