"""The compute device of a run: ``--device auto|cpu|cuda|cuda:N`` resolved once."""

from __future__ import annotations

import torch

from fmrikit.errors import InputError


def resolve_device(device: str = "auto") -> torch.device:
    """The torch device to run on.

    Parameters
    ----------
    device : str
        ``"auto"`` (CUDA when available, else CPU) or any torch device string (``"cpu"``, ``"cuda:1"``).

    Returns
    -------
    torch.device
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise InputError("unknown device", expected="auto, cpu, cuda or cuda:N", found=repr(device)) from exc
