"""The compute device of a run (``--device auto|cpu|cuda|cuda:N`` resolved once), its CPU threads, and running out of
memory as one line."""

from __future__ import annotations

import functools
import inspect
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, TypeVar

from fmrikit.errors import InputError, RunError

if TYPE_CHECKING:  # torch is imported on use, so that limit_threads runs before it starts its threads
    import torch

#: Environment variables that already choose the CPU threads (then :func:`limit_threads` leaves them alone).
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def usable_cpus(cgroup: str | os.PathLike = "/sys/fs/cgroup/cpu.max") -> int:
    """CPUs this process may run on: its affinity mask (``taskset``), capped by a cgroup v2 CPU quota
    (``docker --cpus``), at least 1.

    torch and OpenBLAS follow the affinity mask but not the quota: in a container limited to 2 CPUs of a 64-core
    machine they would start 64 threads, and every parallel section would wait for a descheduled one.
    """
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        quota, period = Path(cgroup).read_text().split()[:2]
        if quota != "max":
            n = min(n, math.ceil(int(quota) / int(period)))
    except (OSError, ValueError):
        pass
    return max(1, n)


def limit_threads() -> None:
    """Cap the CPU threads of torch, MKL and OpenBLAS at :func:`usable_cpus`, unless ``OMP_NUM_THREADS`` (or
    ``MKL_NUM_THREADS``, ``OPENBLAS_NUM_THREADS``) already says how many.

    Sets the environment variables, so it must run before torch or numpy start their thread pools (the command
    line calls it first); child processes (``torchrun`` ranks) inherit the choice.
    """
    if any(os.environ.get(name) for name in THREAD_VARIABLES):
        return
    n = str(usable_cpus())
    for name in THREAD_VARIABLES:
        os.environ[name] = n


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
    import torch

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


F = TypeVar("F", bound=Callable[..., Any])


def memory_guard(fn: F) -> F:
    """Turn running out of memory inside ``fn`` into a :class:`~fmrikit.errors.RunError` naming the batch size
    tried (``fn``'s ``batch_size`` argument, or its ``settings``' ``batch_size`` / ``batch_images``) and the option
    that lowers it."""
    signature = inspect.signature(fn)

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (MemoryError, RuntimeError) as exc:  # torch.OutOfMemoryError is a RuntimeError
            if not isinstance(exc, MemoryError) and "out of memory" not in str(exc).lower():
                raise
            call = signature.bind(*args, **kwargs)
            call.apply_defaults()
            bound = call.arguments
            settings = bound.get("settings")
            size = bound.get("batch_size", getattr(settings, "batch_size", getattr(settings, "batch_images", None)))
            raise RunError(f"out of memory with a batch of {size}; lower --batch-size",
                           expected="a batch that fits in memory",
                           found=(f"{type(exc).__name__}: {exc}".splitlines() or [""])[0]) from exc

    return wrapper  # type: ignore[return-value]
