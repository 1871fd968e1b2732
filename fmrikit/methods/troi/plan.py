"""GPU memory plan of TROI's paper preset (``fmrikit sys-info --plan troi``), estimated without a GPU.

Stage 1 is the heavy step: the new subject's input layer spans the whole coarse region (the paper's occipital crop
of 60 x 40 x 40 voxels, flattened) and trains with the voxel mask, on a pretrained MindEye2 backbone (hidden 4096,
4 residual blocks) that stays frozen, regressing CLIP ViT-L/14 image tokens (256 x 1024). Stage 2 trains an input
layer over the budget's voxels only, so it needs less. Built on the ``meta`` device by
:func:`~fmrikit.engine.memory.training_plan`.
"""

from __future__ import annotations

from typing import Any

#: The paper's coarse region: a 60 x 40 x 40 crop of 1.8 mm voxels (Lin et al. 2025, section 3.2).
PAPER_COARSE_VOXELS = 60 * 40 * 40
#: CLIP ViT-L/14 at 224 px: 16 x 16 patch tokens of 1024 channels (the preset's token targets).
PAPER_TOKENS = (256, 1024)


def plan_troi(batch_size: int = 24, *, n_voxels: int = PAPER_COARSE_VOXELS, unfreeze_backbone: bool = False,
              precision: str = "bf16") -> dict[str, Any]:
    """Estimate the GPU memory of one TROI stage-1 step with the paper preset.

    Parameters
    ----------
    batch_size : int
        Trials per step (the paper's 24).
    n_voxels : int
        Voxels of the coarse region (the input layer's width).
    unfreeze_backbone : bool
        Train the shared parts too (the annotated-ROI full fine-tune arm, or TROI with ``--unfreeze-backbone``).
    precision : {"bf16", "fp16", "fp32"}

    Returns
    -------
    dict
        :func:`~fmrikit.engine.memory.training_plan`'s plan.
    """
    from fmrikit.engine.memory import training_plan
    from fmrikit.methods.mindeye.losses import soft_clip_loss
    from fmrikit.methods.mindeye.model import MindEyeDecoder
    from fmrikit.methods.mindeye.settings import DECODER_PRESETS
    from fmrikit.methods.troi.gate import VoxelGate

    import torch

    size = DECODER_PRESETS["paper"].size
    embed_dim = PAPER_TOKENS[0] * PAPER_TOKENS[1]

    def build() -> dict[str, torch.nn.Module]:
        model = MindEyeDecoder({"new": n_voxels}, embed_dim=embed_dim, hidden=size.hidden, n_blocks=size.n_blocks,
                               proj_hidden=size.proj_hidden, dropout=size.dropout, token_shape=PAPER_TOKENS)
        shared = torch.nn.ModuleDict({"input_norm": model.input_norm, "backbone": model.backbone,
                                      "projector": model.projector, "regressor": model.regressor})
        return {"gate": VoxelGate(n_voxels), "input_layer": model.inputs["new"], "shared": shared}

    def step(modules: dict[str, torch.nn.Module], batch: int) -> torch.Tensor:
        x = torch.empty(batch, n_voxels, device="meta")
        shared = modules["shared"]
        h = shared["backbone"](shared["input_norm"](modules["input_layer"](modules["gate"](x))))
        regression = shared["regressor"](h)
        retrieval = shared["projector"](regression.unflatten(-1, PAPER_TOKENS)).flatten(1)
        target = torch.empty(batch, embed_dim, device="meta")
        return soft_clip_loss(retrieval, target, 0.05) + torch.nn.functional.mse_loss(regression, target)

    trainable = {"gate", "input_layer"} | ({"shared"} if unfreeze_backbone else set())
    return training_plan("troi", build, step, trainable=trainable, batch_size=batch_size, precision=precision,
                         settings={"stage": "1 (sparse mask training)", "coarse_voxels": n_voxels,
                                   "hidden": size.hidden, "blocks": size.n_blocks,
                                   "targets": f"{PAPER_TOKENS[0]} x {PAPER_TOKENS[1]} CLIP ViT-L/14 tokens",
                                   "backbone": "trains" if unfreeze_backbone else "frozen"})
