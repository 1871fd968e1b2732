"""Model folders: ``config.json`` (class, init arguments, versions) + ``model.safetensors``.

Pickle is never the format. A model class derives from :class:`PretrainedModule`, takes only
JSON-serialisable init arguments, and is rebuilt from them before its tensors are loaded.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from fmrikit._version import __version__
from fmrikit.errors import CorruptFileError, DataValueError, MissingInputError
from fmrikit.io.provenance import sha256_file

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"

_CLASSES: dict[str, type[PretrainedModule]] = {}


class PretrainedModule(torch.nn.Module):
    """A module saved and loaded as a folder.

    Subclasses call ``super().__init__(**kwargs)`` with their init arguments, which are recorded in
    :attr:`config` and written to ``config.json``.
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        _CLASSES[cls.__name__] = cls

    def __init__(self, **config: Any):
        super().__init__()
        self.config = json.loads(json.dumps(config))  # a JSON-clean copy

    def save_pretrained(self, folder: str | os.PathLike, extra: dict[str, Any] | None = None) -> Path:
        """Write ``config.json`` and ``model.safetensors`` into ``folder`` (created if needed).

        Parameters
        ----------
        folder : path-like
        extra : dict, optional
            More JSON entries for ``config.json`` (training summary, base model...).
        """
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        save_file(state, folder / WEIGHTS_NAME, metadata={"format": "pt"})
        record = {"class": type(self).__name__, "fmrikit_version": __version__, "config": self.config,
                  **(extra or {})}
        (folder / CONFIG_NAME).write_text(json.dumps(record, indent=2) + "\n")
        return folder

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike, device: str | torch.device = "cpu") -> PretrainedModule:
        """Rebuild a model from its folder.

        Raises
        ------
        MissingInputError
            No config or weights file.
        CorruptFileError
            Unreadable files.
        DataValueError
            The folder holds another class, or tensors that do not fit the configuration.
        """
        record = read_config(folder)
        name = record.get("class")
        target = _CLASSES.get(name)
        if target is None or not issubclass(target, cls):
            raise DataValueError("model folder holds another kind of model", path=Path(folder) / CONFIG_NAME,
                                 expected=cls.__name__, found=str(name))
        model = target(**record["config"])
        load_weights(model, Path(folder) / WEIGHTS_NAME)
        return model.to(device)


def read_config(folder: str | os.PathLike) -> dict[str, Any]:
    """The ``config.json`` record of a model folder."""
    path = Path(folder) / CONFIG_NAME
    if not path.is_file():
        raise MissingInputError("not a model folder", path=folder, expected=f"{CONFIG_NAME} and {WEIGHTS_NAME}",
                                found="no config.json" if Path(folder).is_dir() else "no such folder")
    try:
        record = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CorruptFileError("unreadable model config", path=path, expected="JSON", found=str(exc)) from exc
    if not isinstance(record, dict) or "config" not in record:
        raise CorruptFileError("not an fmrikit model config", path=path, expected="keys class, config")
    return record


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file (CPU).

    Raises
    ------
    MissingInputError, CorruptFileError
        No or unreadable file.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if not path.is_file():
        raise MissingInputError("model weights not found", path=path, expected=WEIGHTS_NAME)
    try:
        return load_file(path)
    except (SafetensorError, OSError) as exc:
        raise CorruptFileError("unreadable model weights", path=path, expected="a safetensors file",
                               found=str(exc)) from exc


def load_weights(model: torch.nn.Module, path: Path, strict: bool = True) -> None:
    """Load a safetensors state dict into ``model``; shapes and names must match."""
    state = read_weights(path)
    try:
        result = model.load_state_dict(state, strict=strict)
    except RuntimeError as exc:
        raise DataValueError("weights do not fit the model configuration", path=path,
                             found=str(exc).splitlines()[0]) from exc
    if strict is False and result.unexpected_keys:
        raise DataValueError("weights hold tensors the model does not have", path=path,
                             found=", ".join(result.unexpected_keys[:3]))


def weights_checksum(folder: str | os.PathLike) -> str:
    """SHA-256 of a model folder's ``model.safetensors``."""
    path = Path(folder) / WEIGHTS_NAME
    if not path.is_file():
        raise MissingInputError("model weights not found", path=path, expected=WEIGHTS_NAME)
    return sha256_file(path)
