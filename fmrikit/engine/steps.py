"""What every training loop does per step and epoch: a guarded optimiser step, the seeded, sharded data order, the
result it returns, and one clear error when a batch does not fit in memory."""

from __future__ import annotations

import functools
import inspect
import math
from dataclasses import dataclass, field
from typing import Any, Callable, TypeVar

import numpy as np
import torch

from fmrikit.engine.distributed import Distributed
from fmrikit.errors import RunError

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


def optimizer_step(loss: torch.Tensor, optimizer: torch.optim.Optimizer, where: str) -> None:
    """Back-propagate ``loss`` and step; a non-finite loss stops training with a clear error."""
    if not torch.isfinite(loss):
        raise RunError(f"{where}: loss became {loss.item()}", expected="a finite loss (lower the learning rate)")
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def shard_len(n: int, ctx: Distributed) -> int:
    """Trials per process: DistributedSampler's padded share."""
    return math.ceil(n / ctx.world_size)


def epoch_order(sizes: list[int], seed: int, epoch: int, ctx: Distributed) -> list[np.ndarray]:
    """Each subject's trial order for this process and epoch (same permutation on every rank, then sharded)."""
    rng = np.random.default_rng([seed, epoch])
    out = []
    for n in sizes:
        perm = rng.permutation(n)
        padded = np.resize(perm, shard_len(n, ctx) * ctx.world_size)
        out.append(padded[ctx.rank::ctx.world_size])
    return out


@dataclass
class FitResult:
    """A training loop's per-epoch rows, and whether it stopped before its last epoch."""

    history: list[dict] = field(default_factory=list)
    stopped_early: bool = False
