"""The per-epoch training checkpoint every trainer writes, and the one reader that resumes from it.

A checkpoint folder holds ``state.safetensors`` (the module's tensors), ``trainer.pt`` (optimizer and
scheduler states, the epoch count and any trainer extras; plain tensors and numbers, read with
``weights_only=True``), ``history.json`` (the per-epoch log so far) and, inside a command's run,
``settings.json`` (what a resumed run must keep: see :func:`fmrikit.engine.runs.start_run`). It is written as
a whole under a temporary name, so an interruption leaves the previous epoch's checkpoint intact.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fmrikit.errors import CorruptFileError
from fmrikit.engine.runs import SETTINGS_NAME
from fmrikit.io.atomic import checkpoint_settings, staged_dir

STATE_NAME = "state.safetensors"
TRAINER_NAME = "trainer.pt"
HISTORY_NAME = "history.json"


def has_checkpoint(folder: Path | None) -> bool:
    """Whether ``folder`` holds a checkpoint to resume from."""
    return folder is not None and (Path(folder) / TRAINER_NAME).is_file()


def save_checkpoint(folder: Path, module: nn.Module, optimizer: torch.optim.Optimizer, *, epoch: int,
                    history: list[dict], scheduler=None, extra: dict[str, Any] | None = None,
                    keep: tuple[str, ...] = ()) -> None:
    """Write the checkpoint after ``epoch`` epochs.

    Parameters
    ----------
    folder : Path
        Checkpoint folder (replaced whole).
    module : nn.Module
        Every trainable tensor of the run (model, gates...).
    optimizer : torch.optim.Optimizer
    epoch : int
        Epochs completed.
    history : list of dict
        Per-epoch log rows so far.
    scheduler : optional
        Learning-rate scheduler whose state is saved too.
    extra : dict, optional
        Trainer state to restore (best validation loss, patience count...): numbers only.
    keep : tuple of str
        Files of the previous checkpoint to carry over (e.g. the best epoch's weights).
    """
    from safetensors.torch import save_file

    folder = Path(folder)
    settings = checkpoint_settings(folder)
    with staged_dir(folder, overwrite=True) as stage:
        if settings is not None:
            (stage / SETTINGS_NAME).write_text(json.dumps(settings, indent=1))
        save_file({k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}, stage / STATE_NAME)
        trainer = {"optimizer": optimizer.state_dict(), "epoch": epoch, **(extra or {})}
        if scheduler is not None:
            trainer["scheduler"] = scheduler.state_dict()
        torch.save(trainer, stage / TRAINER_NAME)
        (stage / HISTORY_NAME).write_text(json.dumps(history, indent=1))
        for name in keep:
            if (folder / name).is_file():
                shutil.copyfile(folder / name, stage / name)


def load_checkpoint(folder: Path, module: nn.Module, optimizer: torch.optim.Optimizer,
                    scheduler=None) -> tuple[int, list[dict], dict[str, Any]]:
    """Restore ``module``, ``optimizer`` (and ``scheduler``) from a checkpoint.

    Returns
    -------
    epoch : int
        Epochs completed.
    history : list of dict
    extra : dict
        The trainer extras saved with it.

    Raises
    ------
    CorruptFileError
        The checkpoint is damaged or belongs to another model.
    """
    from safetensors.torch import load_file

    folder = Path(folder)
    try:
        module.load_state_dict(load_file(folder / STATE_NAME))
        trainer = torch.load(folder / TRAINER_NAME, map_location="cpu", weights_only=True)
        optimizer.load_state_dict(trainer.pop("optimizer"))
        if scheduler is not None:
            scheduler.load_state_dict(trainer.pop("scheduler"))
        history = json.loads((folder / HISTORY_NAME).read_text())
    except Exception as exc:  # safetensors, torch and json raise assorted types for damaged files
        raise CorruptFileError("cannot resume from the checkpoint (start again without --resume)", path=folder,
                               expected="a checkpoint of the same run",
                               found=f"{type(exc).__name__}: {exc}".splitlines()[0]) from exc
    return int(trainer.pop("epoch")), history, trainer
