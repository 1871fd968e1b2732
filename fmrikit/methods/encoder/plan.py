"""GPU memory plan of the universal encoder's paper preset (``fmrikit sys-info --plan encoder``), without a GPU.

The paper's setting (Beliy et al., appendix B.3): every voxel of 8 NSD subjects owns an E = 256 embedding, a step
takes 32 images with 5000 voxels drawn for each, Adam at 1e-3, features of 5 DINOv2 ViT-L/14 layers at 224 px
(16 x 16 patches of 1024 values). The plan is :func:`~fmrikit.engine.memory.training_plan` on that model: exact
parameter counts, Adam's state, and what autograd keeps for one image with its voxels, scaled by the batch. The
image features are cached before training (the frozen backbone, and the paper's LoRA on it, are not part of the
step here), so the backbone's memory is not counted.
"""

from __future__ import annotations

from typing import Any

from fmrikit.checks import check_number
from fmrikit.methods.encoder.settings import encoder_preset

#: The paper's NSD training: 8 subjects, about 40,000 nsdgeneral voxels each (its Table S3: 39,198-39,548).
PAPER_SUBJECTS, PAPER_VOXELS = 8, 40_000
#: (L, P, C) of DINOv2 ViT-L/14 features at 224 px, layers 1, 6, 12, 18, 24.
DINOV2_L14_FEATURES = (5, 256, 1024)


def plan_encoder(batch_size: int | None = None, *, n_subjects: int = PAPER_SUBJECTS,
                 voxels_per_subject: int = PAPER_VOXELS, feature_shape: tuple[int, int, int] = DINOV2_L14_FEATURES,
                 precision: str = "bf16") -> dict[str, Any]:
    """Estimate the GPU memory of one training step of the paper preset.

    Parameters
    ----------
    batch_size : int, optional
        Images per step and GPU (default the preset's 32).
    n_subjects, voxels_per_subject : int
        Subjects trained jointly and voxels of each (default 8 x 40,000, about NSD's nsdgeneral).
    feature_shape : (int, int, int)
        (L, P, C) of the cached image features (default DINOv2 ViT-L/14 at 224 px: (5, 256, 1024)).
    precision : {"bf16", "fp16", "fp32"}

    Returns
    -------
    dict
        :func:`~fmrikit.engine.memory.training_plan`'s plan; ``settings`` adds the preset's sizes.

    Raises
    ------
    InputError
        A size below 1.
    """
    import torch

    from fmrikit.engine.memory import training_plan
    from fmrikit.methods.encoder.model import UniversalEncoder

    preset = encoder_preset("paper")
    batch_size = preset.settings.batch_images if batch_size is None else batch_size
    for name, value in (("--batch-size", batch_size), ("subjects", n_subjects), ("voxels", voxels_per_subject),
                        *((f"feature shape {k}", v) for k, v in zip("LPC", feature_shape))):
        check_number(name, value, low=1)
    n_levels, n_patches, in_channels = feature_shape
    per_image = min(preset.settings.voxels_per_image, voxels_per_subject)

    def build():
        subjects = {f"sub-{s + 1:02d}": voxels_per_subject for s in range(n_subjects)}
        return {"encoder": UniversalEncoder(subjects, n_levels, n_patches, in_channels,
                                            channels=preset.size.channels, embed_dim=preset.size.embed_dim)}

    def step(models, batch):
        encoder = models["encoder"]
        features = torch.empty(batch, n_levels, n_patches, in_channels, device="meta")
        # one image's voxels, all distinct; a batch's voxel side is at most this times the batch (conservative)
        distinct = torch.empty(batch * per_image, dtype=torch.int64, device="meta")
        pairs = torch.empty(batch, per_image, dtype=torch.int64, device="meta")
        pred = encoder.pairs(features, encoder.voxel_embeddings["sub-01"][distinct], pairs)
        target = torch.empty_like(pred)
        mse = torch.nn.functional.mse_loss(pred.float(), target)
        cosine = torch.nn.functional.cosine_similarity(pred.float(), target, dim=-1).mean()
        return (1 - preset.settings.cosine_weight) * mse + preset.settings.cosine_weight * (1 - cosine)

    return training_plan("encoder", build, step, trainable={"encoder"}, batch_size=batch_size, precision=precision,
                         settings={"preset": "paper", "subjects": n_subjects, "voxels_per_subject": voxels_per_subject,
                                   "voxels_per_image": per_image, "embed_dim": preset.size.embed_dim,
                                   "channels": preset.size.channels, "feature_shape": list(feature_shape),
                                   "optimizer": "Adam (state as AdamW's)"})
