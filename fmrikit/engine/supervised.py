"""A plain minibatch trainer for the reconstruction models (latent mappers, autoencoders, NeuroPictor).

Adam (AdamW with weight decay) on a loss the model computes for a batch of rows; data order
depends only on (seed, epoch); optional early stopping on a validation loss (the best epoch's
weights are kept); a checkpoint after every epoch from which ``resume`` continues exactly.

One process, or DistributedDataParallel under ``torchrun`` (pass the ``ctx`` of
:func:`fmrikit.engine.distributed.distributed`): every rank takes its shard of the epoch's
permutation (padded, as :class:`torch.utils.data.DistributedSampler` does, so every rank runs the
same number of steps of ``batch_size`` rows each), the loss's forward runs through the DDP wrapper
so its gradients are averaged over the ranks, and rank 0 writes the checkpoints.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from fmrikit._progress import run_progress
from fmrikit.engine.distributed import Distributed
from fmrikit.engine.checkpoint import has_checkpoint, load_checkpoint, save_checkpoint
from fmrikit.engine.steps import epoch_order, optimizer_step, shard_len
from fmrikit.devices import memory_guard
from fmrikit.engine.settings import SupervisedSettings

log = logging.getLogger("fmrikit")

BEST_NAME = "best.safetensors"
#: Rank r adds r * RANK_SEED_STRIDE to the per-epoch torch seed, so ranks draw different dropout and noise
#: (rank 0, and a single process, keep ``seed * 100003 + epoch``).
RANK_SEED_STRIDE = 1 << 40


@dataclass
class SupervisedResult:
    """Per-epoch rows and the epoch whose weights were kept."""

    history: list[dict] = field(default_factory=list)
    best_epoch: int = 0


@memory_guard
def fit_supervised(model: nn.Module, batch_loss: Callable[[Any, nn.Module], tuple[torch.Tensor, dict]],
                   n_rows: int, settings: SupervisedSettings, *, device: torch.device,
                   val_loss: Callable[[], float] | None = None, checkpoint: Path | None = None,
                   resume: bool = False, description: str = "training",
                   ctx: Distributed | None = None) -> SupervisedResult:
    """Train ``model`` in place.

    Parameters
    ----------
    model : nn.Module
        On ``device``.
    batch_loss : callable
        ``batch_loss(rows, net)``: rows (int array, shape (b,)) of the training set -> (loss, dict
        of floats to log). ``net`` is the module to call for the forward pass: the
        DistributedDataParallel wrapper of ``model`` when ``ctx`` is active, else ``model`` itself
        (a loss that calls other methods of ``model`` is fine in one process). Under DDP every
        trainable parameter must take part in ``net``'s forward (DDP averages their gradients; it
        runs without ``find_unused_parameters``).
    n_rows : int
        Training rows.
    settings : SupervisedSettings
        ``batch_size`` is per process.
    device : torch.device
        bf16 autocast on CUDA.
    val_loss : callable, optional
        Validation loss of the current weights (eval mode is set around it); with it, the weights
        of the best epoch are restored at the end and ``settings.patience`` stops early. Under DDP
        every rank computes it and rank 0's value counts, so every rank stops at the same epoch.
    checkpoint : Path, optional
        Folder of the per-epoch checkpoint (written by rank 0).
    resume : bool
        Continue from ``checkpoint`` if it holds one (every rank loads it).
    description : str
        Progress-bar and log label.
    ctx : Distributed, optional
        The ``torchrun`` process group. Absent or a world of one: a single process, exactly as
        without it. Otherwise ``model`` is wrapped in DistributedDataParallel, each rank takes
        ``ceil(n_rows / world_size)`` rows per epoch, the per-epoch torch seed gets
        ``rank * RANK_SEED_STRIDE`` added (different dropout and noise per rank; the data
        permutation is shared), the logged per-epoch means are averaged over the ranks, and on
        return every rank holds the same (best) weights.
    """
    ctx = ctx if ctx is not None else Distributed(0, 1, device)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = (torch.optim.AdamW(trainable, lr=settings.lr, weight_decay=settings.weight_decay)
                 if settings.weight_decay > 0 else torch.optim.Adam(trainable, lr=settings.lr))
    result, start, best, bad = SupervisedResult(), 0, float("inf"), 0
    if resume and has_checkpoint(checkpoint):
        start, result.history, extra = load_checkpoint(checkpoint, model, optimizer)
        best, bad, result.best_epoch = float(extra["best"]), int(extra["bad"]), int(extra["best_epoch"])
        log.info("resuming %s at epoch %d of %d", description, start + 1, settings.epochs)
    net = model
    if ctx.active:
        net = nn.parallel.DistributedDataParallel(
            model, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None)
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda"
                else contextlib.nullcontext())
    n_steps = max(1, -(-shard_len(n_rows, ctx) // settings.batch_size))
    with run_progress((settings.epochs - start) * n_steps, description) as bar:
        for epoch in range(start, settings.epochs):
            if val_loss is not None and settings.patience is not None and bad >= settings.patience:
                break
            torch.manual_seed(settings.seed * 100_003 + epoch + ctx.rank * RANK_SEED_STRIDE)  # dropout, VAE sampling
            order = epoch_order([n_rows], settings.seed, epoch, ctx)[0]
            model.train()
            sums: dict[str, float] = {}
            for step in range(n_steps):
                rows = order[step * settings.batch_size:(step + 1) * settings.batch_size]
                with autocast:
                    loss, parts = batch_loss(rows, net)
                optimizer_step(loss.float(), optimizer, f"{description} epoch {epoch + 1}")
                for k, v in {"loss": loss.item(), **parts}.items():
                    sums[k] = sums.get(k, 0.0) + v / n_steps
                bar.step(epoch + 1, settings.epochs, sums["loss"] * n_steps / (step + 1))
            row = {"epoch": epoch + 1, **_mean_over_ranks(sums, ctx)}
            if val_loss is not None:
                model.eval()
                with torch.no_grad():
                    row["val_loss"] = _from_rank0(float(val_loss()), ctx)
                if row["val_loss"] < best:
                    best, bad, result.best_epoch = row["val_loss"], 0, epoch + 1
                    if checkpoint is not None and ctx.is_main:
                        _save_best(checkpoint, model)
                else:
                    bad += 1
            else:
                result.best_epoch = epoch + 1
            result.history.append(row)
            log.info("%s epoch %d: %s", description, epoch + 1, ", ".join(f"{k} {v:.4g}" for k, v in row.items()))
            if checkpoint is not None:
                if ctx.is_main:
                    save_checkpoint(checkpoint, model, optimizer, epoch=epoch + 1, history=result.history,
                                    extra={"best": best, "bad": bad, "best_epoch": result.best_epoch},
                                    keep=(BEST_NAME,))
                ctx.barrier()
    if val_loss is not None and checkpoint is not None and (checkpoint / BEST_NAME).is_file():
        from safetensors.torch import load_file

        model.load_state_dict(load_file(checkpoint / BEST_NAME, device=str(device)))
    ctx.barrier()  # every rank has read the checkpoint: the caller's rank 0 may remove it
    model.eval()
    return result


def _mean_over_ranks(sums: dict[str, float], ctx: Distributed) -> dict[str, float]:
    """The per-epoch means of every rank, averaged (every rank logs the same keys in the same order)."""
    if not ctx.active or not sums:
        return sums
    import torch.distributed as dist

    values = torch.tensor(list(sums.values()), dtype=torch.float64, device=ctx.device)
    dist.all_reduce(values)
    return dict(zip(sums, (values / ctx.world_size).tolist()))


def _from_rank0(value: float, ctx: Distributed) -> float:
    """Rank 0's value on every rank (one early-stopping decision for all)."""
    if not ctx.active:
        return value
    import torch.distributed as dist

    t = torch.tensor([value], dtype=torch.float64, device=ctx.device)
    dist.broadcast(t, src=0)
    return float(t.item())


def _save_best(folder: Path, model: nn.Module) -> None:
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, folder / (BEST_NAME + ".tmp"))
    (folder / (BEST_NAME + ".tmp")).replace(folder / BEST_NAME)
