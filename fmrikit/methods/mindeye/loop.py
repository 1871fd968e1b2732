"""The decoder training loop: DDP-ready, checkpointed every epoch, resumable, deterministic by seed.

Each step takes ``batch_size // n_subjects`` trials of every subject (MindEye2's multi-subject
batches), sends each through its own input layer (and voxel gate, for TROI), and optimises

    loss = contrastive + mse_weight * MSE(regression, target) [+ gate penalties]

where the contrastive term is MixCo InfoNCE on mixed betas for the first ``mixco_fraction`` of
the epochs, then soft CLIP (TROI eq. 4). Data order depends only on (seed, epoch), so a resumed
run continues exactly where the interrupted one stopped.
"""

from __future__ import annotations

import contextlib
import logging
import math
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from fmrikit._progress import run_progress
from fmrikit.methods.mindeye.model import MindEyeDecoder
from fmrikit.data.splits import SubjectData
from fmrikit.engine.distributed import Distributed
from fmrikit.methods.mindeye.losses import mixco, mixco_nce, soft_clip_loss
from fmrikit.methods.mindeye.settings import TrainSettings
from fmrikit.engine.checkpoint import has_checkpoint, load_checkpoint, save_checkpoint
from fmrikit.engine.steps import FitResult, epoch_order, optimizer_step, shard_len
from fmrikit.devices import memory_guard

log = logging.getLogger("fmrikit")


class _Step(nn.Module):
    """The model and the gates as one module, so DDP sees every trainable parameter."""

    def __init__(self, model: MindEyeDecoder, gates: dict[str, nn.Module]):
        super().__init__()
        self.model = model
        self.gates = nn.ModuleDict(gates)

    def forward(self, batches: list[tuple[str, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
        outs = [self.model(self.gates[k](x) if k in self.gates else x, k) for k, x in batches]
        return torch.cat([o[0] for o in outs]), torch.cat([o[1] for o in outs])


@memory_guard
def fit(model: MindEyeDecoder, data: list[SubjectData], targets: dict[str, torch.Tensor], settings: TrainSettings,
        ctx: Distributed, *, param_groups: list[dict], gates: dict[str, nn.Module] | None = None,
        checkpoint: Path | None = None, resume: bool = False,
        epoch_end: Callable[[int], dict | None] | None = None, description: str = "training") -> FitResult:
    """Train ``model`` (in place) on the subjects' training trials.

    Parameters
    ----------
    model : MindEyeDecoder
        On ``ctx.device``; frozen parts have ``requires_grad = False``. Every trainable parameter
        must take part in each step (DDP reduces all of them): freeze the input layers of subjects
        not in ``data``.
    data : list of SubjectData
    targets : dict of str to Tensor, shape (n_train, D)
        Standardised image embeddings of each subject's training trials.
    settings : TrainSettings
    ctx : Distributed
    param_groups : list of dict
        AdamW parameter groups (``params``, optional ``lr`` and ``weight_decay``).
    gates : dict of str to nn.Module, optional
        Input masks by subject key (TROI stage 1, :class:`~fmrikit.methods.troi.gate.VoxelGate`): modules
        applied to the subject's betas, with ``penalty()`` (added to the loss) and ``after_step()``.
    checkpoint : Path, optional
        Folder of the per-epoch checkpoint (written by rank 0).
    resume : bool
        Continue from ``checkpoint`` if it holds one.
    epoch_end : callable, optional
        Called with the epoch index after each epoch (before the checkpoint); may return a dict
        for the history, with ``"stop": True`` to end training.
    description : str
        Progress-bar label.

    Returns
    -------
    FitResult
    """
    settings.check()
    gates = gates or {}
    step_module = _Step(model, gates).to(ctx.device)
    per_subject = max(2, settings.batch_size // len(data))
    steps_per_epoch = max(math.ceil(shard_len(len(d.train_x), ctx) / per_subject) for d in data)
    groups = [dict(g, lr=g.get("lr", settings.lr)) for g in param_groups]
    # fused: no temporaries the size of the parameters (a 4096-wide input layer over NSD's brainmask then trains in
    # 20 GiB, not 24+), and faster on CPU (benchmarks/nsd_scale.py)
    optimizer = torch.optim.AdamW(groups, lr=settings.lr, weight_decay=settings.weight_decay, fused=True)
    total = settings.epochs * steps_per_epoch
    if settings.schedule == "onecycle":
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=[g["lr"] for g in groups], total_steps=total,
            pct_start=min(0.3, 2 / settings.epochs) if settings.epochs > 2 else 0.3)
    else:
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _s: 1.0)
    result = FitResult()
    start = 0
    if resume and has_checkpoint(checkpoint):
        start, result.history, _ = load_checkpoint(checkpoint, step_module, optimizer, scheduler)
        log.info("resuming %s at epoch %d of %d", description, start + 1, settings.epochs)
    ddp = step_module
    if ctx.active:
        ddp = nn.parallel.DistributedDataParallel(
            step_module, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None)
    train_x = [d.train_x.to(ctx.device) for d in data]
    train_t = [targets[d.key].to(ctx.device) for d in data]
    mix_epochs = math.ceil(settings.mixco_fraction * settings.epochs)
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if ctx.device.type == "cuda"
                else contextlib.nullcontext())
    with run_progress((settings.epochs - start) * steps_per_epoch, description) as bar:
        for epoch in range(start, settings.epochs):
            torch.manual_seed(settings.seed * 100_003 + epoch * 101 + ctx.rank)  # dropout
            order = epoch_order([len(x) for x in train_x], settings.seed, epoch, ctx)
            mix_rng = np.random.default_rng([settings.seed, epoch, ctx.rank, 1])
            use_mix = epoch < mix_epochs
            ddp.train()
            sums = np.zeros(3)
            for step in range(steps_per_epoch):
                batches, tgt, weights, perms, offset = [], [], [], [], 0
                for k, (x, t, idx) in enumerate(zip(train_x, train_t, order)):
                    sel = torch.from_numpy(idx[(step * per_subject + np.arange(per_subject)) % len(idx)]).to(ctx.device)
                    xb, tb = x[sel], t[sel]
                    if use_mix:
                        xb, w, p = mixco(xb, mix_rng, settings.mixco_beta)
                        weights.append(w)
                        perms.append(p + offset)
                    batches.append((data[k].key, xb))
                    tgt.append(tb)
                    offset += len(sel)
                tgt = torch.cat(tgt)
                with autocast:
                    retrieval, regression = ddp(batches)
                retrieval, regression = retrieval.float(), regression.float()
                if use_mix:
                    contrastive = mixco_nce(retrieval, tgt, settings.temperature, torch.cat(weights), torch.cat(perms))
                else:
                    contrastive = soft_clip_loss(retrieval, tgt, settings.temperature)
                mse = torch.nn.functional.mse_loss(regression, tgt)
                loss = contrastive + settings.mse_weight * mse
                for gate in gates.values():
                    loss = loss + gate.penalty()
                optimizer_step(loss, optimizer, f"{description} epoch {epoch + 1}")
                scheduler.step()
                for gate in gates.values():
                    gate.after_step()
                sums += (loss.item(), contrastive.item(), mse.item())
                bar.step(epoch + 1, settings.epochs, sums[0] / (step + 1))
            row = {"epoch": epoch + 1, "loss": sums[0] / steps_per_epoch, "contrastive": sums[1] / steps_per_epoch,
                   "mse": sums[2] / steps_per_epoch, "lr": scheduler.get_last_lr()[0],
                   "objective": "mixco" if use_mix else "soft_clip"}
            extra = epoch_end(epoch) if epoch_end else None
            stop = bool(extra and extra.pop("stop", False))
            row.update(extra or {})
            result.history.append(row)
            log.info("%s epoch %d: %s", description, epoch + 1,
                     ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()))
            if checkpoint is not None:
                if ctx.is_main:
                    save_checkpoint(checkpoint, step_module, optimizer, epoch=epoch + 1, history=result.history,
                                    scheduler=scheduler)
                ctx.barrier()
            if stop:
                result.stopped_early = epoch + 1 < settings.epochs
                break
    model.eval()
    return result
