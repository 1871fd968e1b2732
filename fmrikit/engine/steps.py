"""What every training loop does per step and epoch: a guarded optimiser step, the seeded, sharded data order, the
result it returns, and one clear error when a batch does not fit in memory."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from fmrikit.engine.distributed import Distributed
from fmrikit.errors import RunError

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
