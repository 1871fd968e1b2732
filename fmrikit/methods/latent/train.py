"""fMRI to Stable Diffusion latents (``pretrain --model latent-mapper``), Takagi & Nishimoto style.

Two mappers per subject, as in the course report (seed 003):

- image: early visual voxels (NSD ``prf-visualrois``, V1-hV4) to the autoencoder's scaled latent
  z (C, h, w), with the chosen architecture: ``ridge`` (himalaya, Takagi's linear model, each alpha by
  5-fold cross-validation over images), ``cnn``, ``vae`` or ``gcn`` (ChebConv over the V1 / V2 / V3+hV4
  nodes with a functional-connectivity graph);
- text: higher visual voxels (NSD ``streams`` ventral) to the CLIP text-condition embeddings of the
  stimulus captions, first ``text_tokens`` (15) tokens, averaged over an image's captions:
  ``ridge`` for the ridge mapper, the report's text CNN otherwise. Only with a Stable Diffusion
  pipeline (the embedded autoencoder has no text encoder).

Targets are standardised per dimension; the torch mappers train with Adam on the MSE (the VAE adds
its fMRI reconstruction and KL terms), with early stopping (patience 5) on a held-out tenth of the
training images. Test scores are the MSE of the scaled latents / embeddings on the shared images
(averaged over repeats), the report's Table 3, in raw and in standardised units (each dimension divided by
its training sd), beside the MSE of predicting the training mean (``mse_ratio_to_mean``: below 1 is
better than the mean predictor).
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fmrikit.errors import DataValueError, MissingInputError
from fmrikit.io.atomic import staged_dir
from fmrikit.io.provenance import (PROJECT_KEY, checksum_digest, new_run_id, portable_path, portable_source,
                                   project_pointer, write_sidecar)
from fmrikit.methods.latent.models import LatentMapper, connectivity_graph, node_columns_from_labels
from fmrikit.project import mapper_dir, preproc_betas_path, subject_label
from fmrikit.engine.runs import SIDECAR_NAME, finish_run, one_run, start_run, write_log
from fmrikit.data.splits import load_subject_data
from fmrikit.engine.supervised import fit_supervised
from fmrikit.engine.settings import SupervisedSettings
from fmrikit.diffusion import component_checksum, image_targets, text_model, text_targets
from fmrikit.checks import check_option
from fmrikit.methods.latent.settings import DEFAULT_MAPPER, MAPPERS, MapperOptions, mapper_settings

log = logging.getLogger("fmrikit")


@dataclass
class MapperResult:
    """What ``pretrain --model latent-mapper`` wrote and scored."""

    model: Path
    scores: dict[str, Any]
    history: dict[str, list[dict]] = field(default_factory=dict)


def generator_source(autoencoder: str | os.PathLike | None, pipeline: str | None, root=None) -> dict[str, Any]:
    """Where the image latents come from: a pipeline's VAE, else the embedded autoencoder.

    Returns
    -------
    dict
        ``kind`` ("pipeline" or "autoencoder"), ``source`` (as given), ``vae_folder``, ``vae_sha256``.
    """
    from fmrikit.project import default_autoencoder_path

    if pipeline is not None:
        from fmrikit.diffusion import resolve_pipeline

        folder, _ = resolve_pipeline(pipeline)
        return {"kind": "pipeline", "source": str(pipeline), "vae_folder": str(folder / "vae"),
                "vae_sha256": component_checksum(folder / "vae")}
    folder = Path(autoencoder) if autoencoder is not None else default_autoencoder_path(root)
    if not (folder / "config.json").is_file():
        raise MissingInputError("no autoencoder", path=folder, expected="run fmrikit pretrain --model autoencoder "
                                "first, or pass --pipeline with a Stable Diffusion folder")
    return {"kind": "autoencoder", "source": str(folder.resolve()), "vae_folder": str(folder.resolve()),
            "vae_sha256": component_checksum(folder)}


@one_run
def pretrain_latent_mapper(subject: int, *, mapper: str = DEFAULT_MAPPER, root: str | os.PathLike | None = None,
                           roi: str = "nsdgeneral", autoencoder: str | os.PathLike | None = None,
                           pipeline: str | None = None, text: bool = True,
                           captions: str | os.PathLike | None = None, sessions: list[int] | None = None,
                           preset: str = "small", options: MapperOptions | None = None,
                           overrides: dict[str, Any] | None = None, device: str = "auto",
                           out: str | os.PathLike | None = None, resume: bool = False,
                           overwrite: bool = False) -> MapperResult:
    """Train a subject's image (and text) latent mappers.

    Parameters
    ----------
    subject : int
    mapper : {"ridge", "cnn", "vae", "gcn"}
        Image mapper; the text mapper is ridge for "ridge", the text CNN otherwise.
    roi : str
        Preprocessed dataset to read (its voxels must include the image and text ROIs).
    autoencoder : path-like, optional
        Embedded autoencoder folder (default ``<root>/models/autoencoder``), used without ``pipeline``.
    pipeline : str, optional
        Stable Diffusion folder or cached id: its VAE gives the image latents and its CLIP text
        encoder the text targets.
    text : bool
        Train the text mapper when a pipeline is given.
    captions : path-like, optional
        Folder of COCO ``captions_*.json`` (default: in the NSD tree).
    sessions : list of int, optional
        Sessions whose non-shared trials train (default all).
    preset : {"small", "paper"}
        Training settings (:data:`~fmrikit.methods.latent.settings.MAPPER_PRESETS`): ``paper`` is the
        report's Table 2 learning rate and batch size of each mapper, 100 epochs, patience 5.
    options : MapperOptions, optional
        Voxels and network sizes (default: the default ROIs with ``preset``'s sizes).
    overrides : dict, optional
        :class:`SupervisedSettings` fields to change (seed 0 unless given).
    out : path-like, optional
        Default :func:`mapper_dir`.

    Returns
    -------
    MapperResult
    """
    from fmrikit.data.rois import roi_columns
    from fmrikit.devices import resolve_device
    from fmrikit.diffusion import latent_shape, load_autoencoder

    check_option("latent mapper", mapper, MAPPERS)
    base = MapperOptions()
    options = options or MapperOptions.for_rois(base.image_roi, None, base.text_roi, None, preset=preset)
    for arch in (mapper, "ridge" if mapper == "ridge" else "text-cnn"):
        mapper_settings(arch, overrides, preset).check()
    dataset = preproc_betas_path(root, subject, roi)
    out = Path(out) if out is not None else mapper_dir(root, subject, mapper)
    checkpoints = start_run([out], kind="pretrain latent-mapper", overwrite=overwrite, resume=resume,
                            inputs=[dataset, autoencoder, pipeline, captions], root=root,
                            settings={"subject": subject, "mapper": mapper, "roi": roi, "autoencoder": autoencoder,
                                      "pipeline": pipeline, "text": text, "sessions": sessions, "preset": preset,
                                      "options": options, "overrides": overrides})
    if not dataset.is_file():
        raise MissingInputError("no preprocessed dataset for this subject and ROI", path=dataset,
                                expected=f"run fmrikit preprocess --subject {subject} first")
    source = generator_source(autoencoder, pipeline, root)
    from fmrikit.data.dataset import read_info

    info = read_info(dataset)
    # the voxels each mapper needs, checked before any work: one line naming the option that supplies them
    image_values = _roi_values(info, options.image_roi, "--image-roi")
    image_cols = roi_columns(info, options.image_roi, list(options.image_labels) if options.image_labels else None,
                             values=image_values)
    if mapper == "gcn":
        try:
            node_columns_from_labels(image_values[image_cols], [list(g) for g in options.gcn_nodes])
        except DataValueError as exc:
            raise DataValueError("--mapper gcn needs the V1 / V2 / V3+hV4 labels of its graph nodes",
                                 path=exc.path or dataset, expected=f"--image-roi prf-visualrois (labels "
                                 f"{list(options.gcn_nodes)}), or --mapper cnn, vae or ridge with --image-roi "
                                 "nsdgeneral", found=f"{options.image_roi}: {exc.found}") from exc
    use_text = text and pipeline is not None
    text_cols = (roi_columns(info, options.text_roi, list(options.text_labels) if options.text_labels else None,
                             values=_roi_values(info, options.text_roi, "--text-roi"))
                 if use_text else np.zeros(0, np.int64))
    dev = resolve_device(device)
    vae, _ = load_autoencoder(source["vae_folder"], device=dev)
    image_size = options.image_size or int(vae.config.sample_size)
    shape = latent_shape(vae, image_size)
    columns = np.union1d(image_cols, text_cols)
    data = load_subject_data(dataset, subject_label(subject), sessions=sessions, columns=columns)
    if len(data.test_stim) < 2:
        raise DataValueError("too few shared test images", path=dataset, expected=">= 2", found=str(len(data.test_stim)))
    stim = np.union1d(data.train_stim, data.test_stim)
    log.info("%s: encoding %d images with the autoencoder", subject_label(subject), len(stim))
    latents = image_targets(info, stim, vae, image_size, dev).reshape(len(stim), -1)
    targets = {"image": latents}
    if use_text:
        from fmrikit.data.captions import read_captions
        from fmrikit.diffusion import resolve_pipeline

        if not info.nsd_root and captions is None:
            raise MissingInputError("captions need an NSD-derived dataset or --captions", path=dataset,
                                    expected="attribute nsd_root, or a captions folder")
        tokenizer, encoder = text_model(resolve_pipeline(pipeline)[0])
        caps = read_captions(info.nsd_root, stim, captions)
        targets["text"] = text_targets(caps, tokenizer, encoder, options.text_tokens, dev).reshape(len(stim), -1)
        text_shape = (options.text_tokens, int(encoder.config.hidden_size))
    pos = {"image": np.searchsorted(columns, image_cols), "text": np.searchsorted(columns, text_cols)}
    rows_train, rows_test = np.searchsorted(stim, data.train_stim), np.searchsorted(stim, data.test_stim)
    labels = image_values[image_cols] if mapper == "gcn" else None

    run_id, scores, histories, models = new_run_id(), {}, {}, {}
    for name in targets:
        arch = mapper if name == "image" else ("ridge" if mapper == "ridge" else "text-cnn")
        x_train, x_test = data.train_x[:, pos[name]], data.test_x[:, pos[name]]
        y = torch.from_numpy(targets[name])
        run_settings = mapper_settings(arch, overrides, preset)
        torch.manual_seed(run_settings.seed)  # the initial weights
        model = _build(arch, x_train, y.shape[1], options, labels if name == "image" else None)
        model.ijk.copy_(torch.from_numpy(data.ijk[pos[name]]))
        model.set_target_statistics(y[rows_train])
        histories[name] = _train(model, arch, x_train, y[rows_train], data.train_stim, run_settings, dev,
                                 checkpoints / name, resume, f"{name} mapper ({arch})")
        model.cpu().eval()
        pred = model.predict(x_test)
        truth = y[rows_test]
        mse_std = float(((model.standardize(pred) - model.standardize(truth)) ** 2).mean())
        mean_std = float((model.standardize(truth) ** 2).mean())  # predicting the training mean, standardised
        scores[name] = {"arch": arch, "n_voxels": int(len(pos[name])), "test_mse": float(((pred - truth) ** 2).mean()),
                        "test_mse_standardised": mse_std, "baseline_mse_standardised": mean_std,
                        "mse_ratio_to_mean": mse_std / mean_std,
                        "baseline_mse_train_mean": float(((model.target_mean - truth) ** 2).mean()),
                        "n_test_images": int(len(rows_test)), "n_train_trials": int(len(x_train))}
        models[name] = (model, {"target": name, "target_shape": list(shape if name == "image" else text_shape),
                                "roi": options.image_roi if name == "image" else options.text_roi})
    record = {"subject": subject, "mapper": mapper, "affine": np.asarray(info.affine).tolist(),
              "volume_shape": list(info.volume_shape), "mesh": info.mesh, "dataset": portable_path(dataset, root),
              "dataset_sha256": checksum_digest(data.checksum), PROJECT_KEY: project_pointer(out / "image", root),
              "generator": {**source, "source": portable_source(source["source"], root),
                            "vae_folder": portable_source(source["vae_folder"], root)},
              "train_sessions": data.train_sessions,
              "image_size": image_size, "normalisation": "z-scored per session over the session's trials "
              "(fmrikit preprocess); integer betas divided by 300 first"}
    with staged_dir(out, overwrite=overwrite, kind="pretrain latent-mapper") as stage:
        for name, (model, extra) in models.items():
            model.save_pretrained(stage / name, extra={**record, **extra})
        for name, hist in histories.items():
            if hist:
                write_log(stage / f"training_log_{name}.tsv", hist,
                          title=f"{name} latent mapper ({scores[name]['arch']})")
        write_sidecar(stage / SIDECAR_NAME, command="pretrain --model latent-mapper",
                      seed=mapper_settings(mapper, overrides, preset).seed, run_id=run_id, inputs=[data.checksum],
                      parameters={"subject": subject, "mapper": mapper, "roi": roi, "sessions": sessions,
                                  "preset": preset, "options": asdict(options), "training": {n: asdict(mapper_settings(
                                      scores[n]["arch"], overrides, preset)) for n in scores},
                                  "text": use_text, "device": str(dev)},
                      outputs=sorted(p.name for p in stage.iterdir()),
                      extra={**record, "scores": scores, "conventions": info.conventions},
                      root=root, folder=out)
    finish_run(checkpoints)
    return MapperResult(model=out, scores=scores, history=histories)


def _roi_values(info, roi: str, option: str) -> np.ndarray:
    """The ROI labels of the dataset's voxels (:func:`~fmrikit.data.rois.atlas_labels`); a missing atlas is one
    line naming the option that supplies other voxels."""
    from fmrikit.data.rois import atlas_labels

    try:
        return atlas_labels(info, roi)
    except MissingInputError as exc:
        raise MissingInputError(f"no {roi} ROI for {subject_label(info.subject)}", path=exc.path,
                                expected=f"{exc.expected}; or {option} nsdgeneral or a mask NIfTI on the dataset's "
                                         "grid",
                                found=exc.found) from exc


def _build(arch: str, x_train: torch.Tensor, out_dim: int, options: MapperOptions,
           labels: np.ndarray | None) -> LatentMapper:
    kwargs: dict[str, Any] = {"channels": options.channels, "hidden": options.hidden,
                              "latent_dim": options.latent_dim, "text_hidden": list(options.text_hidden)}
    if arch == "gcn":
        nodes = node_columns_from_labels(labels, [list(g) for g in options.gcn_nodes])
        activity = np.stack([x_train[:, cols].mean(1).numpy() for cols in nodes], axis=1)
        kwargs.update(node_columns=nodes, adjacency=connectivity_graph(activity).tolist(),
                      gcn_width=options.gcn_width, gcn_hidden=options.gcn_hidden)
    return LatentMapper(arch, x_train.shape[1], out_dim, **kwargs)


def _train(model: LatentMapper, arch: str, x: torch.Tensor, y: torch.Tensor, stim: np.ndarray,
           settings: SupervisedSettings, device, checkpoint: Path, resume: bool, description: str) -> list[dict]:
    """Fit ``model`` on raw targets ``y`` (n_train, D); ridge in closed form, the rest with early stopping."""
    y_std = model.standardize(y)
    if arch == "ridge":
        from fmrikit.engine.ridge import fit_ridge

        fit = fit_ridge(x.numpy(), y_std.numpy(), seed=settings.seed, groups=stim)  # an image's repeats: one fold
        w = fit.weights / fit.feature_std[:, None]  # coefficients on raw betas, (V, D)
        with torch.no_grad():
            model.linear.weight.copy_(torch.from_numpy(w.T.astype(np.float32)))
            model.linear.bias.copy_(torch.from_numpy((fit.intercept - fit.feature_mean @ w).astype(np.float32)))
        return [{"epoch": 0, "alpha_median": float(np.median(fit.alphas)),
                 "cv_r2_mean": float(np.mean(fit.cv_scores))}]
    images = np.unique(stim)
    held = np.random.default_rng(settings.seed).choice(images, max(1, len(images) // 10), replace=False)
    val = np.isin(stim, held)
    tr = np.nonzero(~val)[0]
    model.to(device)
    x_dev, y_dev = x.to(device), y_std.to(device)
    x_val, y_val = x_dev[torch.from_numpy(val).to(device)], y_dev[torch.from_numpy(val).to(device)]

    def batch_loss(rows: np.ndarray, net):  # one process: net is model, whose training_loss the loss calls
        idx = torch.from_numpy(tr[rows]).to(device)
        return model.training_loss(x_dev[idx], y_dev[idx])

    def val_loss() -> float:
        return float(torch.nn.functional.mse_loss(model(x_val).float(), y_val))

    return fit_supervised(model, batch_loss, len(tr), settings, device=device, val_loss=val_loss,
                          checkpoint=checkpoint, resume=resume, description=description).history
