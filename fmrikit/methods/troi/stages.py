"""TROI: data-driven voxel selection for a new subject on a pretrained decoder (``roi-train``).

Stage 1 (sparse mask training, Lin et al. 2025 section 2.2) learns a weight per voxel of a coarse region (the
paper's occipital crop, :func:`occipital_columns`, or the whole dataset) together with a new input layer: task
loss + LASSO x L1(weights). After every step the weights are low-pass filtered (Gaussian, sigma in mm; in 3D, or
on a surface dataset over distance along the mid-thickness surface, :mod:`fmrikit.data.mesh`) and every voxel
whose filtered weight falls below a threshold is zeroed for good (:class:`~fmrikit.methods.troi.gate.VoxelGate`):
the LASSO does the selecting. A schedule guarantees the budget: after each epoch that ends above a geometric
path from all voxels to the budget, the LASSO coefficient grows; if the last epoch still ends above the budget,
the voxels with the highest filtered weights are kept (the log's ``capped`` column counts the voxels removed that
way, so a run shows how much of the selection the LASSO did). Stage 1 ends as soon as the mask is within the
budget.

Stage 2 (learning-rate rewinding) trains a fresh input layer over the selected voxels with the initial
learning-rate schedule; the shared parts, when they train, restart from their state before stage 1, so the two
stages of a pretrained and of a from-scratch decoder differ only in the backbone's initial weights.
"""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import asdict, replace
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
from fmrikit.methods.mindeye.targets import (image_embeddings, retrieval_scores, set_target_statistics, target_shape,
                                             target_spec)
from fmrikit.data.splits import SubjectData, load_subject_data
from fmrikit.engine.checkpoint import HISTORY_NAME
from fmrikit.engine.distributed import distributed
from fmrikit.methods.mindeye.loop import fit
from fmrikit.methods.troi.gate import VoxelGate
from fmrikit.engine.runs import finish_run, one_run, start_run, write_log
from fmrikit.methods.mindeye.settings import SUBJECT_BATCH_SIZE, ModelSize, TrainSettings
from fmrikit.methods.troi.settings import TroiSettings
from fmrikit.engine.runs import settings_record

log = logging.getLogger("fmrikit")

STAGE1_RESULT = "selected.safetensors"


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


def occipital_columns(info, fraction: float) -> np.ndarray:
    """Columns of a dataset in the posterior ``fraction`` of its extent along the anterior-posterior axis.

    TROI's coarse region: "a rough segmentation of the brain (primarily the occipital lobe)" (a 60 x 40 x 40
    crop of 1.8 mm voxels on NSD). Positions are world coordinates (RAS+, mm: the affine of a volume dataset,
    the white surface of a surface dataset); posterior is low y.

    Parameters
    ----------
    info : DatasetInfo
    fraction : float
        In (0, 1].

    Returns
    -------
    ndarray of int64, shape (V,)
        Sorted dataset columns.
    """
    if info.is_surface:
        from fmrikit.data.mesh import surface_geometry
        from fmrikit.io.surface import HEMIS

        y = np.empty(info.n_voxels)
        for h, hemi in enumerate(HEMIS):
            sel = info.hemi == h
            if sel.any():
                y[sel] = surface_geometry(info, hemi, "white")[0][info.vertex[sel], 1]
    else:
        y = (np.asarray(info.ijk, np.float64) @ np.asarray(info.affine)[:3, :3].T + np.asarray(info.affine)[:3, 3])[:, 1]
    return np.nonzero(y <= y.min() + fraction * (y.max() - y.min()))[0].astype(np.int64)


def truth_columns(path: str | os.PathLike, info) -> np.ndarray:
    """Which of a volume dataset's columns a binary ground-truth mask (NIfTI on the dataset's grid) holds, (V,) bool.

    Raises
    ------
    InputError
        A surface dataset.
    GridMismatchError
        The mask's grid is not the dataset's.
    """
    from fmrikit.io.nifti import check_same_grid, load_mask

    if info.is_surface:
        raise InputError("--truth-mask needs a volume dataset", path=path, expected="a NIfTI mask on a voxel grid",
                         found=f"a dataset on {info.mesh}")
    vol, affine = load_mask(path)
    check_same_grid({str(path): (vol.shape, affine), str(info.path): (info.volume_shape, info.affine)})
    return vol[tuple(np.asarray(info.ijk).T)]


@one_run
def roi_train(subject: int, *, root: str | os.PathLike | None = None, troi: TroiSettings | None = None,
              sessions: list[int] | None = None, coarse_roi: str = "brainmask",
              backbone: str | os.PathLike | None = None, pretrained: bool = True, unfreeze_backbone: bool = False,
              features: str = "gabor", image_model: str | None = None, targets: str = "tokens",
              size: ModelSize | None = None, settings: TrainSettings | None = None,
              truth_mask: str | os.PathLike | None = None, preset: str | None = None, desc: str = "troi",
              flatmap: bool = True, device: str = "auto", resume: bool = False,
              overwrite: bool = False) -> SubjectResult:
    """Select a subject's voxels with TROI and train its decoder input layer on them.

    Parameters
    ----------
    subject : int
    root : path-like, optional
        Project folder.
    troi : TroiSettings, optional
        Includes the coarse region (``coarse_region``: the occipital crop of ``coarse_roi``, or all of it).
    sessions : list of int, optional
        Sessions whose trials train (default all); shared images are the test set.
    coarse_roi : str
        Dataset the coarse region is taken from (``preprocess --roi brainmask``).
    backbone : path-like, optional
        Pretrained decoder (default ``<root>/models/decoder``).
    pretrained : bool
        False: the paper's "w/o PT": a decoder of ``size`` with freshly initialised shared parts (seeded by
        ``settings.seed``), trained with everything else as with a pretrained backbone; ``features`` /
        ``image_model`` / ``targets`` then choose the targets. The shared parts then train in both stages (a
        random backbone frozen would be no baseline); compare it with ``unfreeze_backbone=True`` for a
        like-for-like test of pretraining.
    unfreeze_backbone : bool
        Train the pretrained shared parts too (at ``settings.lr``; the input layer takes ``troi.stage1_lr`` in
        stage 1).
    targets : {"tokens", "pooled"}
        Without pretraining: what the decoder predicts (:func:`~fmrikit.methods.mindeye.targets.target_spec`).
    settings : TrainSettings, optional
        Stage-2 training (stage 1 uses it with ``stage1_epochs`` and ``troi.stage1_lr``); default
        batch size :data:`~fmrikit.methods.mindeye.settings.SUBJECT_BATCH_SIZE`.
    truth_mask : path-like, optional
        Binary NIfTI of the truly informative voxels (a simulated world's ``truth/subjNN/informative_mask.nii.gz``):
        stage 1 then logs per epoch the mean mask weight and the fraction still selected of the informative and of
        the other voxels, and the precision of the selection. It changes nothing else.
    preset : str, optional
        Name of the preset the settings came from (recorded).
    desc : str
        ``desc-`` entity of the outputs (``sub-01_desc-troi_mask.nii.gz``...).
    flatmap : bool
        Draw pictures of the mask and weights (their NIfTIs are always written): pycortex flatmaps when the
        dataset names a pycortex subject, else nilearn mosaics (:mod:`fmrikit.viz.maps`).

    Returns
    -------
    SubjectResult
        ``extra`` holds the stage-1 log, its voxel counts per epoch and the selected voxels.
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
    info = read_info(dataset)
    surface = info.is_surface
    names = subject_output_names(stem, {**(_surface_map_names(stem, flatmap) if surface else
                                           {"mask": f"{stem}_mask.nii.gz", "weights": f"{stem}_weights.nii.gz"}),
                                        "stage1_log": f"{stem}_stage1_log.tsv",
                                        "stage1_curves": f"{stem}_stage1_log.png"})
    if flatmap and not surface:
        names.update(mask_png=f"{stem}_mask.png", weights_png=f"{stem}_weights.png")
    backbone_path = (Path(backbone) if backbone is not None else default_decoder_path(root)) if pretrained else None
    spec = None if pretrained else target_spec(features, image_model, targets)
    checkpoint = start_run([out_dir / n for n in names.values()], kind="roi-train", overwrite=overwrite,
                           resume=resume, inputs=[dataset, backbone_path, image_model, truth_mask], root=root,
                           settings={"subject": subject, "coarse_roi": coarse_roi, "sessions": sessions, "troi": troi,
                                     "backbone": backbone_path, "pretrained": pretrained,
                                     "unfreeze_backbone": unfreeze_backbone, "features": spec,
                                     "size": None if pretrained else size, "training": settings, "preset": preset})
    columns = np.arange(info.n_voxels) if troi.coarse_region == "whole" else \
        occipital_columns(info, troi.occipital_fraction)
    if troi.budget >= len(columns):
        raise InputError("--budget must be below the coarse region's voxel count (nothing to select otherwise)",
                         path=dataset, expected=f"fewer than {len(columns)} ({troi.coarse_region} region)",
                         found=str(troi.budget))
    informative = None if truth_mask is None else truth_columns(truth_mask, info)[columns]
    # what the pictures need, checked before the work
    target = None if surface else info.map_target.check(pycortex=flatmap)
    if pretrained:
        model, record, backbone_path = load_backbone(backbone_path, root)
        spec = record["features"]
    run_id = new_run_id()
    key = subject_key(subject)
    with distributed(device) as ctx:
        data = load_subject_data(dataset, key, sessions=sessions, columns=columns)
        embeddings = image_embeddings([data], spec, ctx, root=root)[key]
        if not pretrained:
            torch.manual_seed(settings.seed)
            model = MindEyeDecoder({key: data.n_voxels}, embed_dim=embeddings[0].shape[1], hidden=size.hidden,
                                   n_blocks=size.n_blocks, proj_hidden=size.proj_hidden, dropout=size.dropout,
                                   token_shape=target_shape(spec))
            set_target_statistics(model, [embeddings[0]])
        model.to(ctx.device)
        train_shared = unfreeze_backbone or not pretrained
        initial = {k: v.detach().clone() for k, v in model.state_dict().items()
                   if train_shared and not k.startswith("inputs.")}  # what stage 2 rewinds to
        weights, stage1 = _stage1(model, data, embeddings[0], troi, settings, ctx, train_shared,
                                  checkpoint / "stage1", resume, informative)
        selected = np.nonzero(weights > 0)[0]
        if len(selected) == 0:
            raise RunError("TROI stage 1 kept no voxel", path=dataset,
                           expected="some mask weights above the threshold (lower --lasso or --threshold)",
                           found="all zero")
        log.info("TROI stage 1: %d of %d voxels selected", len(selected), data.n_voxels)
        init, stage2 = None, settings
        if troi.rewind:
            model.load_state_dict(initial, strict=False)  # no-op with the shared parts frozen
        else:
            layer = model.inputs[key].linear
            w = torch.from_numpy(weights[selected]).to(ctx.device, torch.float32)
            init = (layer.weight.detach()[:, selected] * w, layer.bias.detach().clone())
            stage2 = replace(settings, schedule="constant", lr=settings.lr * troi.finetune_lr_factor)
        sub = _restrict(data, selected)
        result = train_input_layer(model, sub, embeddings[0], stage2, ctx, train_shared=train_shared, init=init,
                                   checkpoint=checkpoint / "stage2", resume=resume, description="TROI stage 2")
        scores = retrieval_scores(model, sub, embeddings[1], device=ctx.device)
        counts = [row["voxels"] for row in stage1]
        if ctx.is_main:
            parameters = {"subject": subject, "coarse_roi": coarse_roi, "sessions": sessions, "troi": asdict(troi),
                          "backbone": str(backbone_path) if backbone_path else None, "pretrained": pretrained,
                          "unfreeze_backbone": unfreeze_backbone, "features": spec, "desc": desc,
                          "size": None if pretrained else asdict(size), "training": settings_record(settings),
                          "truth_mask": str(truth_mask) if truth_mask else None, "preset": preset,
                          "world_size": ctx.world_size}
            chosen = data.columns[selected]
            full_weights = np.zeros(info.n_voxels, np.float32)
            full_weights[data.columns] = weights

            pictures: dict[str, dict] = {}

            def write_maps(tmp: dict[str, Path]) -> None:
                from fmrikit.io.nifti import save_nifti
                from fmrikit.viz.flatmap import voxels_to_volume

                write_log(tmp["stage1_log"], stage1, title=f"{stem}: TROI stage 1")
                if surface:
                    _write_surface_maps(tmp, info, chosen, full_weights, stem, flatmap)
                    return
                binary = voxels_to_volume(np.ones(len(chosen)), info.ijk[chosen], info.volume_shape, fill=0)
                save_nifti(binary.astype(np.uint8), info.affine, tmp["mask"])
                save_nifti(voxels_to_volume(full_weights, info.ijk, info.volume_shape, fill=0).astype(np.float32),
                           info.affine, tmp["weights"])
                if flatmap:
                    pictures.update(_volume_pictures(tmp, names, info, chosen, full_weights, target, stem))

            write_subject_outputs(out_dir, names, model, sub, base=backbone_path, shared_trained=train_shared,
                                  history=result.history, scores=scores, command="roi-train", parameters=parameters,
                                  inputs=[data.checksum], seed=settings.seed, run_id=run_id,
                                  overwrite=overwrite, kind="roi-train", root=root, write_extra=write_maps,
                                  extra={"features": spec, "stage1_voxels_per_epoch": counts, "stage1": stage1,
                                         "n_coarse_voxels": data.n_voxels, "n_dataset_voxels": info.n_voxels,
                                         "pictures": pictures})
            finish_run(checkpoint)
        ctx.barrier()
    return SubjectResult(model=out_dir / names["model"], outputs={k: out_dir / v for k, v in names.items()},
                         retrieval=scores, history=result.history, n_voxels=len(selected),
                         extra={"stage1": stage1, "stage1_voxels_per_epoch": counts,
                                "selected": data.ijk[selected]})


#: Colour of the selected voxels in a mask picture, and the colour map of the mask weights (light to dark, so the
#: smallest weights stay visible over the grey cortex).
MASK_COLOR, WEIGHTS_CMAP = "#d62728", "YlOrRd"


def _volume_pictures(tmp: dict[str, Path], names: dict[str, str], info, selected: np.ndarray, weights: np.ndarray,
                     target, stem: str) -> dict[str, dict]:
    """The mask (one colour, a legend with its voxel count) and the weights of the selected voxels (colours over their
    1st to 99th percentile; unselected voxels, weight 0, are not drawn)."""
    from fmrikit.viz.keys import Category
    from fmrikit.viz.maps import save_voxel_map

    mask = save_voxel_map(np.ones(len(selected)), info.ijk[selected], target, png_path=tmp["mask_png"], style="roi",
                          categories=[Category(f"selected by TROI ({len(selected)} of {info.n_voxels} voxels)",
                                               MASK_COLOR)], title=f"{stem}: TROI mask")
    chosen = weights[selected]
    weights_map = save_voxel_map(chosen, info.ijk[selected], target, png_path=tmp["weights_png"], cmap=WEIGHTS_CMAP,
                                 title=f"{stem}: mask weights of the {len(selected)} selected voxels",
                                 units="mask weight (gate value, no unit)")
    return {names["mask_png"]: mask["picture"], names["weights_png"]: weights_map["picture"]}


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

    everywhere = np.arange(info.n_voxels)
    save_vertex_map(weights, info.hemi, info.vertex, info.n_mesh_vertices,
                    gifti={"lh": tmp["weights"], "rh": tmp["weights_rh"]})
    chosen = weights[selected]
    for kind, values, cols, gifti, style in (
            ("mask", np.ones(len(selected)), selected, {"lh": tmp["mask"], "rh": tmp["mask_rh"]},
             dict(label_names={1: f"selected ({len(selected)} of {len(everywhere)})"},
                  title=f"{stem}: TROI mask")),
            ("weights", chosen, selected, None,
             dict(cmap=WEIGHTS_CMAP, units="mask weight (gate value, no unit)",
                  title=f"{stem}: mask weights of the {len(selected)} selected vertices"))):
        save_vertex_map(values, info.hemi[cols], info.vertex[cols], info.n_mesh_vertices, gifti=gifti,
                        flat_png=tmp[f"{kind}_png"] if flatmap else None,
                        inflated_png=tmp[f"{kind}_inflated"] if flatmap else None, **style)


def _stage1(model: MindEyeDecoder, data: SubjectData, train_targets: torch.Tensor, troi: TroiSettings,
            settings: TrainSettings, ctx, train_shared: bool, checkpoint: Path, resume: bool,
            informative: np.ndarray | None) -> tuple[np.ndarray, list[dict]]:
    """Sparse mask training (see the module docstring); the model keeps its stage-1 state.

    Returns
    -------
    weights : ndarray of float32, shape (V,)
        Final mask weights, zero for the voxels not selected.
    history : list of dict
        Per epoch: the task losses, ``voxels`` selected, ``target`` (the schedule), ``lasso`` (the coefficient of
        that epoch), ``lasso_term`` (the LASSO part of the objective at its end), ``capped`` (voxels
        removed by the budget's guarantee rather than by the LASSO), and with ``informative`` the mean mask weight
        (``w_informative``, ``w_other``: 0 once removed) and fraction still selected (``kept_informative``,
        ``kept_other``) of the truly informative and the other voxels, and the ``precision`` of the selection.
    """
    from safetensors.torch import load_file, save_file

    torch.manual_seed(settings.seed)
    layer = model.add_subject(data.key, data.n_voxels)
    layer.ijk.copy_(torch.from_numpy(data.ijk))
    params = set_trainable(model, data.key, train_shared)
    smoothing = column_lowpass(data.info, data.ijk, troi.lowpass_sigma) if troi.lowpass else None
    gate = VoxelGate(data.n_voxels, troi.threshold, 0.0, lowpass=smoothing, step_size=troi.mask_lr,
                     floor=troi.budget).to(ctx.device)
    layer_params = list(layer.parameters())
    groups = [{"params": layer_params},
              {"params": [p for p in params if all(p is not q for q in layer_params)], "lr": settings.lr},
              {"params": [gate.weight], "lr": troi.mask_lr, "weight_decay": 0.0}]
    groups = [g for g in groups if g["params"]]
    done = checkpoint / STAGE1_RESULT
    if resume and done.is_file():
        state = load_file(done)
        model.load_state_dict({k: v for k, v in state.items() if k != "troi.weights"}, strict=False)
        return state["troi.weights"].numpy(), json.loads((checkpoint / HISTORY_NAME).read_text())

    def epoch_end(epoch: int) -> dict:
        alive = gate.alive.cpu().numpy()
        row = {"voxels": int(alive.sum()), "target": keep_count(data.n_voxels, troi.budget, troi.stage1_epochs, epoch,
                                                                 troi.warmup_epochs),
               "lasso": float(gate.lasso), "lasso_term": gate.lasso_value(), "capped": 0}
        if epoch + 1 == troi.stage1_epochs and row["voxels"] > troi.budget:  # the guarantee
            gate.keep_only(select(gate.scores(), alive, troi.budget))
            row["capped"] = row["voxels"] - troi.budget
            row["voxels"] = troi.budget
        if epoch + 1 == troi.warmup_epochs:
            gate.lasso.fill_(troi.lasso)
        elif epoch + 1 > troi.warmup_epochs and row["voxels"] > row["target"]:
            gate.lasso.mul_(troi.lasso_growth)
        if informative is not None:
            row.update(_truth_row(gate, informative))
        return {**row, "stop": row["voxels"] <= troi.budget}

    stage1 = replace(settings, epochs=troi.stage1_epochs, lr=troi.stage1_lr)
    result = fit(model, [data], {data.key: model.standardize(train_targets.to(ctx.device))}, stage1, ctx,
                 param_groups=groups, gates={data.key: gate}, checkpoint=checkpoint, resume=resume,
                 epoch_end=epoch_end, description="TROI stage 1")
    weights = (gate.weight * gate.alive).detach().cpu().float()
    if ctx.is_main:  # the stage-1 model and mask, for a run resumed in stage 2 (the log is in the checkpoint)
        state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()
                 if k.startswith(f"inputs.{data.key}.") or (train_shared and not k.startswith("inputs."))}
        save_file({**state, "troi.weights": weights.contiguous()}, done)
    ctx.barrier()
    return weights.numpy(), result.history


def _truth_row(gate: VoxelGate, informative: np.ndarray) -> dict:
    """How the mask weights of the truly informative and of the other voxels stand (None for an empty group)."""
    w = (gate.weight * gate.alive).detach().cpu().numpy()
    alive = gate.alive.cpu().numpy()

    def mean(values: np.ndarray) -> float | None:
        return float(values.mean()) if len(values) else None

    return {"w_informative": mean(w[informative]), "w_other": mean(w[~informative]),
            "kept_informative": mean(alive[informative]), "kept_other": mean(alive[~informative]),
            "precision": mean(informative[alive])}


def _restrict(data: SubjectData, selected: np.ndarray) -> SubjectData:
    """The subject's data over a subset of its columns."""
    return SubjectData(key=data.key, info=data.info, columns=data.columns[selected],
                       train_x=data.train_x[:, selected].contiguous(), train_stim=data.train_stim,
                       test_x=data.test_x[:, selected].contiguous(), test_stim=data.test_stim, checksum=data.checksum,
                       train_sessions=data.train_sessions)
