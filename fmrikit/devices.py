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

    Raises
    ------
    InputError
        An unknown device, or a CUDA device this machine does not have.
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise InputError("unknown device", expected="auto, cpu, cuda or cuda:N", found=repr(device)) from exc
    if resolved.type not in ("cpu", "cuda"):
        raise InputError("unsupported device", expected="auto, cpu, cuda or cuda:N", found=repr(device))
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError("CUDA is not available; use --device cpu or auto", expected="a CUDA device",
                             found=f"--device {device} on a machine without CUDA")
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise InputError("no such CUDA device", expected=f"cuda:0 to cuda:{torch.cuda.device_count() - 1}",
                             found=repr(device))
    return resolved
