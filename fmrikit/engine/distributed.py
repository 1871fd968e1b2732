"""Process-group set-up for runs under ``torchrun`` (DistributedDataParallel).

A plain ``fmrikit pretrain`` is a world of one; under ``torchrun --nproc_per_node=N`` the
environment variables ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` make it N processes joined by
gloo (CPU) or NCCL (CUDA), each on its own GPU.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Iterator

import torch
import torch.distributed as dist

from fmrikit.devices import resolve_device


@dataclass(frozen=True)
class Distributed:
    """Where this process stands in the run."""

    rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    def barrier(self) -> None:
        if self.active:
            dist.barrier()


def env_rank() -> int:
    """This process's rank from the ``torchrun`` environment (0 outside ``torchrun``)."""
    return int(os.environ.get("RANK", "0"))


@contextlib.contextmanager
def distributed(device: str = "auto") -> Iterator[Distributed]:
    """Join the ``torchrun`` process group if there is one, and leave it at the end.

    Parameters
    ----------
    device : str
        ``auto``, ``cpu``, ``cuda``...; under ``torchrun`` on CUDA each process takes
        ``cuda:LOCAL_RANK``.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    dev = resolve_device(device)
    if world <= 1:
        yield Distributed(0, 1, dev)
        return
    if dev.type == "cuda":
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(dev)
    started = not dist.is_initialized()
    if started:
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    try:
        yield Distributed(dist.get_rank(), dist.get_world_size(), dev)
    finally:
        if started:
            dist.destroy_process_group()
