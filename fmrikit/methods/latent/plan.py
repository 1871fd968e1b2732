"""GPU memory of the latent mappers' ``paper`` preset (``fmrikit sys-info --plan latent-mapper``), without a GPU.

The report's NSD subject 1 (Table 1): 10631 early visual voxels (V1-V4) for the image mappers, 7604 higher ventral
voxels for the text CNN; targets are Stable Diffusion's 4 x 40 x 40 latents (the report's 320-px images) and the
first 15 of 77 CLIP text tokens of width 768. The GCN's three nodes (V1, V2, V3 + hV4) are taken as equal thirds of
the voxels (the zero-padded node width is the largest node's).
"""

from __future__ import annotations

from typing import Any

from fmrikit.checks import check_number, check_option
from fmrikit.engine.memory import training_plan
from fmrikit.methods.latent.settings import MAPPER_PRESETS, MapperOptions

#: The report's NSD voxel counts and target sizes.
IMAGE_VOXELS, TEXT_VOXELS = 10631, 7604
IMAGE_TARGET, TEXT_TARGET = 4 * 40 * 40, 15 * 768
PLAN_ARCHS = ("ridge", "cnn", "vae", "gcn", "text-cnn")


def plan_latent_mapper(batch_size: int | None = None, *, mapper: str = "gcn", n_voxels: int | None = None,
                       precision: str = "fp32") -> dict[str, Any]:
    """Estimate the training memory of one latent mapper of the ``paper`` preset.

    Parameters
    ----------
    batch_size : int, optional
        Samples per step (default the report's Table 2 batch of ``mapper``).
    mapper : {"ridge", "cnn", "vae", "gcn", "text-cnn"}
        "ridge" is estimated as its gradient-trained equivalent (fmrikit fits it in closed form on the CPU).
    n_voxels : int, optional
        Input voxels (default the report's: 10631 for the image mappers, 7604 for the text CNN).
    precision : {"fp32", "bf16", "fp16"}
        The mappers train in float32.

    Returns
    -------
    dict
        :func:`~fmrikit.engine.memory.training_plan`'s plan, its settings naming the mapper, voxels and target size.
    """
    import torch
    import torch.nn.functional as F

    from fmrikit.methods.latent.models import LatentMapper

    check_option("mapper", mapper, PLAN_ARCHS)
    paper = MAPPER_PRESETS["paper"]
    batch_size = batch_size or paper["training"].get(mapper, {}).get("batch_size", 64)
    check_number("--batch-size", batch_size, low=1)
    text = mapper == "text-cnn"
    n_voxels = n_voxels or (TEXT_VOXELS if text else IMAGE_VOXELS)
    check_number("voxels", n_voxels, low=3)
    out_dim = TEXT_TARGET if text else IMAGE_TARGET
    options = MapperOptions(**paper["sizes"])
    kwargs: dict[str, Any] = {"channels": options.channels, "hidden": options.hidden,
                              "latent_dim": options.latent_dim, "text_hidden": list(options.text_hidden)}
    if mapper == "gcn":
        third = n_voxels // 3
        bounds = [0, third, 2 * third, n_voxels]
        kwargs.update(node_columns=[list(range(a, b)) for a, b in zip(bounds, bounds[1:])],
                      adjacency=[[0.0, 1.0, 1.0], [1.0, 0.0, 1.0], [1.0, 1.0, 0.0]],
                      gcn_width=options.gcn_width, gcn_hidden=options.gcn_hidden)

    def build() -> dict[str, torch.nn.Module]:
        return {"mapper": LatentMapper(mapper, n_voxels, out_dim, **kwargs)}

    def step(models: dict[str, torch.nn.Module], batch: int):
        for m in models["mapper"].modules():  # the plan measures one sample, which training batch norm refuses
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.eval()
        x = torch.zeros(batch, n_voxels, device="meta")
        return F.mse_loss(models["mapper"](x), torch.zeros(batch, out_dim, device="meta"))

    return training_plan(f"latent-mapper ({mapper})", build, step, trainable={"mapper"}, batch_size=batch_size,
                         precision=precision,
                         settings={"mapper": mapper, "preset": "paper", "voxels": n_voxels, "target_size": out_dim})

