"""TROI: data-driven voxel selection for a new subject on a pretrained decoder (``roi-train``).

Stage 1 (sparse mask training) learns a weight per voxel of a coarse region together with a new
input layer, the backbone frozen: task loss + LASSO x L1(weights), weights under a threshold set
to zero after every step. After each epoch the weights are low-pass filtered in 3D (Gaussian,
sigma in mm; on a surface dataset over distance along the mid-thickness surface, :mod:`fmrikit.data.mesh`)
and only the best voxels are kept, on a geometric schedule that reaches the budget after ``stage1_epochs``
epochs. Stage 2 (learning-rate rewinding) trains a fresh input layer over
the selected voxels from scratch with the initial learning-rate schedule.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from fmrikit.data.dataset import read_info
from fmrikit.errors import InputError, MissingInputError, RunError
from fmrikit.io.provenance import new_run_id
from fmrikit.methods.mindeye.model import MindEyeDecoder
from fmrikit.project import subject_key
from fmrikit.project import check_desc, default_decoder_path, preproc_betas_path, subject_dir, subject_label
from fmrikit.methods.mindeye.adapt import (SubjectResult, load_backbone, set_trainable,
                                    subject_output_names, train_input_layer, write_subject_outputs)
from fmrikit.methods.mindeye.targets import image_embeddings, retrieval_scores, set_target_statistics
from fmrikit.features.registry import feature_spec
from fmrikit.data.splits import SubjectData, load_subject_data
from fmrikit.engine.distributed import distributed
from fmrikit.methods.mindeye.loop import fit
from fmrikit.methods.troi.gate import VoxelGate
from fmrikit.engine.runs import finish_run, one_run, start_run
from fmrikit.methods.mindeye.settings import SUBJECT_BATCH_SIZE, ModelSize, TrainSettings
from fmrikit.methods.troi.settings import TroiSettings
from fmrikit.engine.runs import settings_record

log = logging.getLogger("fmrikit")


def keep_count(n_start: int, budget: int, epochs: int, epoch: int, warmup: int = 0) -> int:
    """Voxels kept after stage-1 epoch ``epoch`` (0-based).

    All of them during the first ``warmup`` epochs (the new input layer must learn before the
    mask's gradients mean anything), then geometrically fewer until ``budget`` at the last epoch.
    """
    if n_start <= budget or epoch < warmup:
        return n_start
    done = (epoch + 1 - warmup) / max(1, epochs - warmup)
    return max(budget, int(math.floor(n_start * (budget / n_start) ** min(1.0, done))))


def lowpass(values: np.ndarray, ijk: np.ndarray, volume_shape: tuple[int, int, int], affine: np.ndarray,
            sigma_mm: float) -> np.ndarray:
    """Gaussian low-pass filter of per-voxel values in the 3D grid.

    Parameters
    ----------
    values : ndarray, shape (n_voxels,)
    ijk : ndarray of int, shape (n_voxels, 3)
    volume_shape : tuple of int
    affine : ndarray, shape (4, 4)
        Voxel sizes (mm) are the norms of its first three columns.
    sigma_mm : float

    Returns
    -------
    ndarray, shape (n_voxels,)
        Gaussian-weighted mean over the listed voxels (normalised convolution), so voxels at the
        edge of the region are not pulled towards zero by the empty space beyond it.
    """
    from scipy.ndimage import gaussian_filter

    vol, support = np.zeros(volume_shape, np.float64), np.zeros(volume_shape, np.float64)
    index = tuple(np.asarray(ijk).T)
    vol[index], support[index] = values, 1.0
    sigma = sigma_mm / np.linalg.norm(np.asarray(affine)[:3, :3], axis=0)
    return (gaussian_filter(vol, sigma, mode="constant")[index]
            / gaussian_filter(support, sigma, mode="constant")[index])


def column_lowpass(info, ijk: np.ndarray, sigma_mm: float):
    """TROI's low-pass of per-column weights: :func:`lowpass` in 3D for a volume dataset, a Gaussian over surface
    distance for a surface dataset (its kernel built once here).

    Returns
    -------
    callable
        ``f(values (V,)) -> ndarray (V,)``.
    """
    if info.is_surface:
        from fmrikit.data.mesh import mesh_kernel, smooth

        kernel = mesh_kernel(info, ijk, sigma_mm)
        return lambda values: smooth(values, kernel)
    return lambda values: lowpass(values, ijk, info.volume_shape, info.affine, sigma_mm)


def select(scores: np.ndarray, alive: np.ndarray, keep: int) -> np.ndarray:
    """The ``keep`` alive voxels with the highest positive scores (ties to the lower index)."""
    candidates = np.nonzero(alive & (scores > 0))[0]
    order = candidates[np.argsort(-scores[candidates], kind="stable")]
    out = np.zeros_like(alive)
    out[order[:keep]] = True
    return out


@one_run
def roi_train(subject: int, *, root: str | os.PathLike | None = None, troi: TroiSettings | None = None,
              sessions: list[int] | None = None, coarse_roi: str = "brainmask",
              backbone: str | os.PathLike | None = None, pretrained: bool = True, unfreeze_backbone: bool = False,
              features: str = "gabor", image_model: str | None = None, size: ModelSize | None = None,
              settings: TrainSettings | None = None, desc: str = "troi", flatmap: bool = True,
              device: str = "auto", resume: bool = False, overwrite: bool = False) -> SubjectResult:
    """Select a subject's voxels with TROI and train its decoder input layer on them.

    Parameters
    ----------
    subject : int
    root : path-like, optional
        Project folder.
    troi : TroiSettings, optional
    sessions : list of int, optional
        Sessions whose trials train (default all); shared images are the test set.
    coarse_roi : str
        Dataset of the coarse region to select from (``preprocess --roi brainmask``).
    backbone : path-like, optional
        Pretrained decoder (default ``<root>/models/decoder``).
    pretrained : bool
        False: no pretrained backbone; a fresh decoder of ``size`` is trained on this subject only
        (the paper's "w/o PT"); ``features`` / ``image_model`` then choose the targets.
    unfreeze_backbone : bool
        Train the pretrained shared parts too.
    settings : TrainSettings, optional
        Stage-2 training (stage 1 uses it with ``stage1_epochs`` and ``troi.stage1_lr``); default
        batch size :data:`~fmrikit.methods.mindeye.settings.SUBJECT_BATCH_SIZE`.
    desc : str
        ``desc-`` entity of the outputs (``sub-01_desc-troi_mask.nii.gz``...).
    flatmap : bool
        Draw pictures of the mask and weights (their NIfTIs are always written): pycortex flatmaps when the
        dataset names a pycortex subject, else nilearn mosaics (:mod:`fmrikit.viz.maps`).

    Returns
    -------
    SubjectResult
        ``extra`` holds the stage-1 voxel counts per epoch and the selected count.
    """
    troi, settings = troi or TroiSettings(), settings or TrainSettings(batch_size=SUBJECT_BATCH_SIZE)
    size = size or ModelSize()
    troi.check()
    settings.check()
    size.check()
    dataset = preproc_betas_path(root, subject, coarse_roi)
    out_dir, stem = subject_dir(root, subject), f"{subject_label(subject)}_desc-{check_desc(desc)}"
    if not dataset.is_file():
        raise MissingInputError("no preprocessed dataset of the coarse region", path=dataset,
                                expected=f"run fmrikit preprocess --subject {subject} --roi {coarse_roi} first")
    surface = read_info(dataset).is_surface
    names = subject_output_names(stem, _surface_map_names(stem, flatmap) if surface else
                                 {"mask": f"{stem}_mask.nii.gz", "weights": f"{stem}_weights.nii.gz"})
    if flatmap and not surface:
        names.update(mask_png=f"{stem}_mask.png", weights_png=f"{stem}_weights.png")
    backbone_path = (Path(backbone) if backbone is not None else default_decoder_path(root)) if pretrained else None
    checkpoint = start_run([out_dir / n for n in names.values()], kind="roi-train", overwrite=overwrite,
                           resume=resume, inputs=[dataset, backbone_path, image_model], root=root,
                           settings={"subject": subject, "coarse_roi": coarse_roi, "sessions": sessions, "troi": troi,
                                     "backbone": backbone_path, "pretrained": pretrained,
                                     "unfreeze_backbone": unfreeze_backbone,
                                     "features": None if pretrained else feature_spec(features, image_model),
                                     "size": None if pretrained else size, "training": settings})
    n_voxels = read_info(dataset).n_voxels
    if troi.budget >= n_voxels:
        raise InputError("--budget must be below the coarse region's voxel count (nothing to select otherwise)",
                         path=dataset, expected=f"fewer than {n_voxels}", found=str(troi.budget))
    # what the pictures need, checked before the work
    target = None if surface else read_info(dataset).map_target.check(pycortex=flatmap)
    if pretrained:
        model, record, backbone_path = load_backbone(backbone_path, root)
        spec = record["features"]
    else:
        spec = feature_spec(features, image_model)
    run_id = new_run_id()
    key = subject_key(subject)
    with distributed(device) as ctx:
        data = load_subject_data(dataset, key, sessions=sessions)
        targets = image_embeddings([data], spec, ctx, root=root)[key]
        if not pretrained:
            torch.manual_seed(settings.seed)
            model = MindEyeDecoder({key: data.n_voxels}, embed_dim=targets[0].shape[1], hidden=size.hidden,
                                   n_blocks=size.n_blocks, proj_hidden=size.proj_hidden, dropout=size.dropout)
            set_target_statistics(model, [targets[0]])
        model.to(ctx.device)
        train_shared = unfreeze_backbone or not pretrained
        weights, counts = _stage1(model, data, targets[0], troi, settings, ctx, train_shared, checkpoint / "stage1",
                                  resume)
        selected = np.nonzero(weights > 0)[0]
        if len(selected) == 0:
            raise RunError("TROI stage 1 kept no voxel", path=dataset,
                                 expected="some mask weights above the threshold (lower --lasso or --threshold)",
                                 found="all zero")
        log.info("TROI stage 1: %d of %d voxels selected", len(selected), data.n_voxels)
        stage1_layer = model.inputs[key].linear
        init = None
        stage2 = settings
        if not troi.rewind:
            w = torch.from_numpy(weights[selected]).to(ctx.device, torch.float32)
            init = (stage1_layer.weight.detach()[:, selected] * w, stage1_layer.bias.detach().clone())
            stage2 = TrainSettings(**dict(asdict(settings), schedule="constant",
                                          lr=settings.lr * troi.finetune_lr_factor))
        sub = _restrict(data, selected)
        result = train_input_layer(model, sub, targets[0], stage2, ctx, train_shared=train_shared, init=init,
                                   checkpoint=checkpoint / "stage2", resume=resume, description="TROI stage 2")
        scores = retrieval_scores(model, sub, targets[1], device=ctx.device)
        if ctx.is_main:
            parameters = {"subject": subject, "coarse_roi": coarse_roi, "sessions": sessions, "troi": asdict(troi),
                          "backbone": str(backbone_path) if backbone_path else None, "pretrained": pretrained,
                          "unfreeze_backbone": unfreeze_backbone, "features": spec, "desc": desc,
                          "training": settings_record(settings), "world_size": ctx.world_size}
            info = data.info

            pictures: dict[str, dict] = {}

            def write_maps(tmp: dict[str, Path]) -> None:
                from fmrikit.io.nifti import save_nifti
                from fmrikit.viz.flatmap import voxels_to_volume
                from fmrikit.viz.maps import save_voxel_map

                if surface:
                    _write_surface_maps(tmp, info, selected, weights, stem, flatmap)
                    return
                binary = voxels_to_volume(np.ones(len(selected)), info.ijk[selected], info.volume_shape, fill=0)
                save_nifti(binary.astype(np.uint8), info.affine, tmp["mask"])
                save_nifti(voxels_to_volume(weights, info.ijk, info.volume_shape, fill=0).astype(np.float32),
                           info.affine, tmp["weights"])
                if flatmap:
                    pictures[names["mask_png"]] = save_voxel_map(
                        np.ones(len(selected)), info.ijk[selected], target, png_path=tmp["mask_png"], style="roi",
                        vmin=0, vmax=1, cmap="Reds", title=f"{stem}: {len(selected)} voxels")["picture"]
                    pictures[names["weights_png"]] = save_voxel_map(
                        weights, info.ijk, target, png_path=tmp["weights_png"], vmin=0, cmap="viridis",
                        title=f"{stem}: mask weights")["picture"]

            write_subject_outputs(out_dir, names, model, sub, base=backbone_path, shared_trained=train_shared,
                                  history=result.history, scores=scores, command="roi-train", parameters=parameters,
                                  inputs=[data.checksum], seed=settings.seed, run_id=run_id,
                                  overwrite=overwrite, kind="roi-train", root=root, write_extra=write_maps,
                                  extra={"features": spec, "stage1_voxels_per_epoch": counts,
                                         "n_coarse_voxels": data.n_voxels, "pictures": pictures})
            finish_run(checkpoint)
        ctx.barrier()
    return SubjectResult(model=out_dir / names["model"], outputs={k: out_dir / v for k, v in names.items()},
                         retrieval=scores, history=result.history, n_voxels=len(selected),
                         extra={"stage1_voxels_per_epoch": counts, "selected": data.ijk[selected]})


def _surface_map_names(stem: str, flatmap: bool) -> dict[str, str]:
    """Output names of the mask (label GIFTI) and weights (GIFTI) of a surface dataset, and their pictures: ``mask``
    and ``weights`` are the left hemisphere's files, ``mask_rh`` and ``weights_rh`` the right one's."""
    from fmrikit.viz.surface import vertex_map_names

    names = {}
    for kind in ("mask", "weights"):
        files = vertex_map_names(stem, kind, label=kind == "mask")
        names.update({kind: files["lh"], f"{kind}_rh": files["rh"]})
        if flatmap:
            names.update({f"{kind}_png": files["flat"], f"{kind}_inflated": files["inflated"]})
    return names


def _write_surface_maps(tmp: dict[str, Path], info, selected: np.ndarray, weights: np.ndarray, stem: str,
                        flatmap: bool) -> None:
    from fmrikit.viz.surface import save_vertex_map

    for kind, values, cols, style in (
            ("mask", np.ones(len(selected)), selected,
             dict(label_names={1: "selected"}, title=f"{stem}: {len(selected)} vertices")),
            ("weights", weights, np.arange(info.n_voxels),
             dict(vmin=0, cmap="viridis", title=f"{stem}: mask weights"))):
        save_vertex_map(values, info.hemi[cols], info.vertex[cols], info.n_mesh_vertices,
                        gifti={"lh": tmp[kind], "rh": tmp[f"{kind}_rh"]},
                        flat_png=tmp[f"{kind}_png"] if flatmap else None,
                        inflated_png=tmp[f"{kind}_inflated"] if flatmap else None, **style)


def _stage1(model: MindEyeDecoder, data: SubjectData, train_targets: torch.Tensor, troi: TroiSettings,
            settings: TrainSettings, ctx, train_shared: bool, checkpoint: Path, resume: bool
            ) -> tuple[np.ndarray, list[int]]:
    """Sparse mask training; returns the final mask weights (zero = not selected), shape (V,), and counts."""
    torch.manual_seed(settings.seed)
    layer = model.add_subject(data.key, data.n_voxels)
    layer.ijk.copy_(torch.from_numpy(data.ijk))
    params = set_trainable(model, data.key, train_shared)
    gate = VoxelGate(data.n_voxels, troi.threshold, troi.lasso).to(ctx.device)
    groups = [{"params": params}, {"params": [gate.weight], "lr": troi.mask_lr, "weight_decay": 0.0}]
    counts: list[int] = []
    smoothing = column_lowpass(data.info, data.ijk, troi.lowpass_sigma) if troi.lowpass else None

    def epoch_end(epoch: int) -> dict:
        with torch.no_grad():
            w = (gate.weight * gate.alive).detach().cpu().numpy().astype(np.float64)
            alive = gate.alive.cpu().numpy()
            score = smoothing(w) if smoothing else w
            keep = select(score, alive, keep_count(data.n_voxels, troi.budget, troi.stage1_epochs, epoch, troi.warmup_epochs))
            gate.alive.copy_(torch.from_numpy(keep))
            gate.weight.mul_(gate.alive)
        counts.append(int(keep.sum()))
        return {"voxels": counts[-1], "stop": counts[-1] <= troi.budget}

    stage1 = TrainSettings(**dict(asdict(settings), epochs=troi.stage1_epochs, lr=troi.stage1_lr))
    done = checkpoint / "selected.npz"
    if resume and done.is_file():
        saved = np.load(done)
        layer.load_state_dict({"linear.weight": torch.from_numpy(saved["layer_weight"]),
                               "linear.bias": torch.from_numpy(saved["layer_bias"]), "ijk": layer.ijk.cpu()})
        return saved["weights"], saved["counts"].tolist()
    result = fit(model, [data], {data.key: model.standardize(train_targets.to(ctx.device))}, stage1, ctx,
                 param_groups=groups, gates={data.key: gate}, checkpoint=checkpoint, resume=resume,
                 epoch_end=epoch_end, description="TROI stage 1")
    counts = [row["voxels"] for row in result.history]
    weights = (gate.weight * gate.alive).detach().cpu().numpy().astype(np.float32)
    if ctx.is_main:
        np.savez(done, weights=weights, counts=np.array(counts),
                 layer_weight=layer.linear.weight.detach().cpu().numpy(),
                 layer_bias=layer.linear.bias.detach().cpu().numpy())
    ctx.barrier()
    return weights, counts


def _restrict(data: SubjectData, selected: np.ndarray) -> SubjectData:
    """The subject's data over a subset of its columns."""
    return SubjectData(key=data.key, info=data.info, columns=data.columns[selected],
                       train_x=data.train_x[:, selected].contiguous(), train_stim=data.train_stim,
                       test_x=data.test_x[:, selected].contiguous(), test_stim=data.test_stim, checksum=data.checksum,
                       train_sessions=data.train_sessions)
