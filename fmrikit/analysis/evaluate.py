"""The field's evaluation protocol, computed one documented way (see ../shared/docs/metrics.md).

Each ``evaluate_*`` function reads its inputs, computes the metrics with
:mod:`fmrikit.analysis.metrics`, and writes ``results.json``, ``results.md`` and a figure
with :func:`fmrikit.analysis.results.write_report`. Every protocol choice (sizes,
interpolation, candidates, draws, seed, direction, formulas) is recorded in the results.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from fmrikit._logging import logger
from fmrikit.analysis import metrics as M
from fmrikit.analysis.results import Metric, write_report
from fmrikit.errors import DataValueError, FmrikitError, InputError, MissingInputError
from fmrikit.io.atomic import claim_outputs, one_run
from fmrikit.io.provenance import file_checksum, new_run_id
from fmrikit.project import preproc_betas_path, project_root, subject_label
from fmrikit.checks import check_number, check_option
from fmrikit.devices import memory_guard

#: Protocol presets; every key is recorded in results.json.
PRESETS: dict[str, dict[str, Any]] = {
    "mindeye2": {"first_resize": 256, "pixel_size": 425, "interpolation": "bilinear",
                 "antialias": M.PROTOCOL_ANTIALIAS,
                 "ssim": "rgb2gray, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0",
                 "two_way": "corrcoef(F_gt, F_rec); count i != j with R[i, j] < R[j, j]; ties fail",
                 "retrieval": {"n_candidates": 300, "n_draws": 30, "seed": 42}},
    "braindiffuser": {"first_resize": None, "pixel_size": 425, "interpolation": "bilinear",
                      "antialias": M.PROTOCOL_ANTIALIAS,
                      "ssim": "rgb2gray, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, "
                              "data_range=1.0",
                      "two_way": "corrcoef(F_gt, F_rec); count i != j with R[i, j] < R[j, j]; ties fail",
                      "retrieval": {"n_candidates": 300, "n_draws": 30, "seed": 42}},
}

#: Local weight files looked up in ``weights_dir`` for the torchvision networks.
TORCHVISION_WEIGHTS = {"alexnet2": "alexnet.pth", "alexnet5": "alexnet.pth", "inception": "inception_v3.pth",
                       "effnet-b": "efficientnet_b1.pth", "swav": "swav_resnet50.pth"}
#: (key, label, kind) of the protocol's network metrics, in the published table's order.
NETWORK_METRICS = [("alexnet2", "AlexNet(2)", "two_way"), ("alexnet5", "AlexNet(5)", "two_way"),
                   ("inception", "Inception", "two_way"), ("clip", "CLIP", "two_way"),
                   ("effnet-b", "EffNet-B", "distance"), ("swav", "SwAV", "distance")]
OFFLINE_LABEL = "EffNet-Lite0 two-way (offline, not a protocol metric)"
#: Side (px) of the images whose pixels are the features of the pixel two-way identification.
PIXEL_TWO_WAY_SIZE = 64
PIXEL_LABEL = f"Pixel two-way ({PIXEL_TWO_WAY_SIZE} px, not a protocol metric)"


def default_out(kind: str, root: str | os.PathLike | None = None) -> Path:
    """A new folder for one evaluation: ``<root>/evaluate/<kind>-<run id>``."""
    return project_root(root) / "evaluate" / f"{kind}-{new_run_id()}"


#: How several reconstructions of one stimulus (one per trial of a session file) are scored.
REPEATS = ("trials", "average")


@one_run
@memory_guard
def evaluate_recon(pred: str | os.PathLike, truth: str | os.PathLike, out: str | os.PathLike, *,
                   preset: str = "mindeye2", truth_dataset: str = "imgBrick", repeats: str | None = None,
                   clip_model: str | None = None, weights_dir: str | os.PathLike | None = None, device: str = "auto",
                   batch_size: int = 32, offline_network: bool = True, root: str | os.PathLike | None = None,
                   overwrite: bool = False) -> dict[str, Any]:
    """Reconstruction metrics: PixCorr, SSIM, AlexNet(2/5), Inception, CLIP, EffNet-B, SwAV.

    Parameters
    ----------
    pred : path-like
        Folder of reconstructions named by stimulus id (``..._stim-<id>.png``) or like the truth files.
    truth : path-like
        Folder of ground-truth images, or an HDF5 brick (row = stimulus id).
    out : path-like
        Output folder.
    preset : str
        Protocol preset (:data:`PRESETS`).
    truth_dataset : str
        Dataset of an HDF5 truth.
    repeats : {"trials", "average"}, optional
        When a stimulus has several reconstructions (``reconstruct`` of a session file writes one per trial):
        ``trials`` scores each as a pair with the stimulus's image (two-way identification then compares a
        reconstruction only with the other stimuli's images); ``average`` averages each stimulus's
        reconstructions pixel by pixel (after the first resize) and scores one image per stimulus. None
        refuses repeated stimuli.
    clip_model : str, optional
        Local folder or HF-cache id of an OpenAI CLIP ViT-L/14 vision model; without it CLIP is skipped.
    weights_dir : path-like, optional
        Folder with the torchvision weight files of :data:`TORCHVISION_WEIGHTS`.
    device : str
        ``auto``, ``cpu`` or ``cuda``.
    batch_size : int
    offline_network : bool
        Also report two-way identification on EfficientNet-Lite0 features (labelled as not protocol).
    root : path-like, optional
        Project folder, which ``out`` must not be.
    overwrite : bool

    Returns
    -------
    dict
        The results record.
    """
    from fmrikit.devices import resolve_device
    from fmrikit.io.images import load_image_pairs

    protocol = _preset(preset)
    if repeats is not None:
        check_option("--repeats", repeats, REPEATS)
    check_number("--batch-size", batch_size, low=1)
    resolve_device(device)
    claim_outputs([out], kind="evaluate recon", overwrite=overwrite, inputs=[pred, truth, clip_model, weights_dir],
                  root=root)
    keys, gt_list, rec_list = load_image_pairs(pred, truth, truth_dataset, repeats=repeats is not None)
    stimuli = list(dict.fromkeys(keys))
    if len(stimuli) < 2:
        raise DataValueError("at least two stimuli are needed", path=pred, expected=">= 2", found=str(len(stimuli)))
    first = protocol["first_resize"]
    interp, antialias = protocol["interpolation"], protocol["antialias"]
    gt = _stack_resized(gt_list, first or protocol["pixel_size"], interp, antialias)
    rec = _stack_resized(rec_list, first or protocol["pixel_size"], interp, antialias)
    n_reconstructions, groups = len(keys), None
    if len(stimuli) < len(keys):
        position = {k: i for i, k in enumerate(stimuli)}
        index = np.array([position[k] for k in keys])
        if repeats == "average":
            rec = np.stack([rec[index == i].mean(0) for i in range(len(stimuli))])
            gt = gt[np.unique(index, return_index=True)[1]]
            keys = stimuli
        else:
            groups = index
    n = len(keys)
    # PixCorr and SSIM are means over pairs: compute them in blocks so 425-px copies stay small
    sums = np.zeros(2)
    for start in range(0, n, 64):
        gt_pix = M.resize_images(gt[start:start + 64], protocol["pixel_size"], interp, antialias)
        rec_pix = M.resize_images(rec[start:start + 64], protocol["pixel_size"], interp, antialias)
        sums += len(gt_pix) * np.array([M.pixcorr(gt_pix, rec_pix), M.ssim(gt_pix, rec_pix)])
    metrics = {"pixcorr": Metric("PixCorr", float(sums[0] / n), chance=0.0, n=n),
               "ssim": Metric("SSIM", float(sums[1] / n), n=n)}
    try:
        metrics["pixel_two_way"] = Metric(PIXEL_LABEL, M.two_way_identification(
            M.resize_images(gt, PIXEL_TWO_WAY_SIZE, interp, antialias),
            M.resize_images(rec, PIXEL_TWO_WAY_SIZE, interp, antialias), groups), chance=0.5, n=n)
    except FmrikitError as exc:  # e.g. a uniform image has no pixel correlation
        metrics["pixel_two_way"] = Metric.skipped(PIXEL_LABEL, exc.one_line())
    for key, label, kind in NETWORK_METRICS:
        try:
            net = _network(key, clip_model, weights_dir)
        except FmrikitError as exc:
            metrics[key] = Metric.skipped(label, exc.one_line(), higher_is_better=kind == "two_way")
            continue
        net.antialias = antialias  # the networks' own resize follows the protocol too
        metrics[key] = _network_metric(net, label, kind, gt, rec, batch_size, device, groups)
    if offline_network:
        from fmrikit.features.networks import effnet_lite0

        try:
            metrics["effnet_lite0_two_way"] = _network_metric(effnet_lite0(), OFFLINE_LABEL, "two_way", gt, rec,
                                                              batch_size, device, groups)
        except FmrikitError as exc:
            metrics["effnet_lite0_two_way"] = Metric.skipped(OFFLINE_LABEL, exc.one_line())
    source = _reconstruction_record(pred)
    protocol = {**protocol, "preset": preset, "n_test_images": len(stimuli), "pairing": "stimulus id or file name",
                "repeats": repeats, "n_reconstructions": n_reconstructions, "n_pairs_scored": n,
                "antialias_note": "low-pass when a bilinear resize shrinks, as torchvision >= 0.17's Resize on "
                                  "tensors (MindEye2 pins 0.17.0) and PIL's BILINEAR do; torchvision < 0.17 did not "
                                  "filter tensors; enlarging is unaffected",
                "clip_model": clip_model, "weights_dir": None if weights_dir is None else str(weights_dir),
                "conventions": source.get("conventions"), "warnings": source.get("warnings", [])}
    inputs = [{"path": str(Path(pred).resolve()), "n_images": n_reconstructions}, _input(truth)]
    return write_report(out, kind="recon", preset=preset, protocol=protocol, n=n, metrics=metrics,
                        details={"keys": [str(k) for k in keys]}, inputs=inputs,
                        figure=lambda p: _recon_figure(gt, rec, keys, p, metrics), overwrite=overwrite)


@one_run
def evaluate_retrieval(brain: str | os.PathLike, image: str | os.PathLike, out: str | os.PathLike, *,
                       n_candidates: int = 300, n_draws: int = 30, seed: int = 42, key: str = "embeddings",
                       root: str | os.PathLike | None = None, overwrite: bool = False) -> dict[str, Any]:
    """Image retrieval (brain -> image) and brain retrieval (image -> brain), top-1.

    Parameters
    ----------
    brain, image : path-like
        HDF5 files with ``key`` (n, ...) and optionally ``stim_id`` (n,) for pairing; without
        ``stim_id`` rows pair by order.
    out : path-like
    n_candidates, n_draws, seed : int
        Candidates per draw, number of draws, seed of the draws.
    key : str
        Dataset name of the embeddings.
    root : path-like, optional
        Project folder, which ``out`` must not be.
    overwrite : bool
    """
    check_number("--candidates", n_candidates, low=2)
    check_number("--draws", n_draws, low=1)
    claim_outputs([out], kind="evaluate retrieval", overwrite=overwrite, inputs=[brain, image], root=root)
    b_ids, b = _read_embeddings(brain, key)
    i_ids, i = _read_embeddings(image, key)
    if b_ids is not None and i_ids is not None:
        if set(b_ids) != set(i_ids):
            raise DataValueError("brain and image embeddings cover different stimuli", path=image,
                                 expected=f"the {len(b_ids)} stim ids of {brain}",
                                 found=f"{len(set(i_ids) ^ set(b_ids))} ids differ")
        b, i = b[np.argsort(b_ids)], i[np.argsort(i_ids)]
    elif len(b) != len(i):
        raise DataValueError("brain and image embeddings differ in count", path=image, expected=str(len(b)),
                             found=str(len(i)))
    if len(b) < n_candidates:
        raise InputError("--candidates is larger than the test set (retrieval is never silently among fewer)",
                         path=brain, expected=f"--candidates {len(b)} or fewer", found=f"--candidates {n_candidates}")
    res = M.retrieval(b, i, n_candidates=n_candidates, n_draws=n_draws, seed=seed)
    chance = res["chance"]
    metrics = {name: Metric(label, res[name]["mean"], chance=chance, n=len(b))
               for name, label in (("image_retrieval", "Image retrieval (brain -> image), top-1"),
                                   ("brain_retrieval", "Brain retrieval (image -> brain), top-1"))}
    protocol = {"n_candidates": n_candidates, "n_draws": n_draws, "seed": seed, "similarity": "cosine",
                "normalisation": "flatten, L2", "interval": "mean +- 1.96 sd / sqrt(n_draws)",
                "pairing": "stim_id" if b_ids is not None and i_ids is not None else "row order"}
    details = {name: {"ci95": res[name]["ci95"], "per_draw": res[name]["per_draw"]}
               for name in ("image_retrieval", "brain_retrieval")}
    return write_report(out, kind="retrieval", preset=None, protocol=protocol, n=len(b), metrics=metrics,
                        details=details, inputs=[_input(brain), _input(image)],
                        figure=lambda p: _retrieval_figure(metrics, details, p), overwrite=overwrite)


@one_run
def evaluate_encoding(pred: str | os.PathLike, subject: int, out: str | os.PathLike, *,
                      root: str | os.PathLike | None = None, roi: str | None = None, flatmap: bool = True,
                      overwrite: bool = False) -> dict[str, Any]:
    """Per-voxel Pearson r of predicted vs measured responses, noise-ceiling-normalised.

    Parameters
    ----------
    pred : path-like
        HDF5 with ``pred`` (n_images, n_voxels), ``stim_id`` (n_images,) and optionally
        ``voxels/ijk`` (n_voxels, 3) to match voxels of the subject's dataset.
    subject : int
    out : path-like
    root : path-like, optional
        Project folder with the subject's preprocessed dataset.
    roi : str, optional
        Voxel selection of the dataset (default nsdgeneral).
    flatmap : bool
        Draw a picture of r (its NIfTI is always written): a pycortex flatmap when the dataset names a pycortex
        subject, else a nilearn mosaic.
    overwrite : bool
    """
    from fmrikit.data.dataset import read_betas, read_info
    from fmrikit.io.hdf5 import INTEGERS, NUMBERS, check_dtype, open_h5

    data_path = preproc_betas_path(root, subject, roi)
    claim_outputs([out], kind="evaluate encoding", overwrite=overwrite, inputs=[pred, data_path], root=root)
    info = read_info(data_path)
    # what the picture needs, checked before the work (a surface is drawn on its mesh)
    target = None if info.is_surface else info.map_target.check(pycortex=flatmap)
    with open_h5(pred, "pred") as f:
        for name in ("stim_id",):
            if name not in f:
                raise DataValueError("prediction file lacks a dataset", path=pred, expected=name,
                                     found=", ".join(f.keys()))
        check_dtype(f["pred"], NUMBERS, pred)
        check_dtype(f["stim_id"], INTEGERS, pred)
        if "voxels/ijk" in f:
            check_dtype(f["voxels/ijk"], INTEGERS, pred)
        predicted = np.asarray(f["pred"][:], dtype=np.float64)
        stim = f["stim_id"][:].astype(np.int64)
        pred_ijk = f["voxels/ijk"][:] if "voxels/ijk" in f else None
        if "vertices/hemi" in f:  # a surface prediction: its columns' (hemi, vertex, 0) addresses
            index = f["vertices/index"][:].astype(np.int64)
            pred_ijk = np.stack([f["vertices/hemi"][:].astype(np.int64), index, np.zeros_like(index)], 1)
    if predicted.ndim != 2 or len(stim) != len(predicted) or (pred_ijk is not None and pred_ijk.shape != (
            predicted.shape[1], 3)):
        raise DataValueError("prediction tables of inconsistent shapes", path=pred,
                             expected="pred (n_images, n_voxels), stim_id (n_images,), voxels/ijk (n_voxels, 3)",
                             found=f"pred {predicted.shape}, stim_id {stim.shape}"
                                   + (f", voxels/ijk {pred_ijk.shape}" if pred_ijk is not None else ""))
    if not np.isfinite(predicted).all():
        raise DataValueError("predictions contain NaN or Inf", path=pred, expected="finite values",
                             found=f"{int((~np.isfinite(predicted)).sum())} non-finite values")
    cols = _match_voxels(pred_ijk, predicted.shape[1], info.ijk, pred)
    missing = np.setdiff1d(stim, info.stim_id)
    if missing.size:
        raise DataValueError("predicted images were never shown to the subject", path=pred,
                             expected=f"stim ids of {data_path.name}", found=f"{missing.size} unseen, e.g. {missing[0]}")
    trials = np.nonzero(np.isin(info.stim_id, stim))[0]
    betas = read_betas(data_path, trials)[:, cols]
    order = {s: k for k, s in enumerate(stim)}
    rows = np.array([order[s] for s in info.stim_id[trials]])
    repeats = np.bincount(rows, minlength=len(stim))
    measured = np.zeros((len(stim), len(cols)))
    np.add.at(measured, rows, betas)
    measured /= repeats[:, None]
    r = M.voxel_pearson(predicted, measured)

    metrics = {"median_r": Metric("median voxel r", float(np.nanmedian(r)), chance=0.0, n=len(r))}
    for q in (25, 75, 90):
        metrics[f"r_p{q}"] = Metric(f"voxel r, {q}th percentile", float(np.nanpercentile(r, q)), chance=0.0)
    n_candidates = min(M.ENCODER_CANDIDATES, len(stim))
    if n_candidates >= 2:
        found = M.encoder_retrieval(predicted, measured, n_candidates=n_candidates, n_draws=30, seed=42)
        for k in (1, 5):
            metrics[f"retrieval_top{k}"] = Metric(f"encoder retrieval top-{k} among {n_candidates}",
                                                  found[f"top{k}"]["mean"], chance=found["chance"][f"top{k}"],
                                                  n=n_candidates)
    else:
        for k in (1, 5):
            metrics[f"retrieval_top{k}"] = Metric.skipped(f"encoder retrieval top-{k}", "fewer than 2 images")
    details: dict[str, Any] = {"r_summary": M.summarize(r), "repeats": {int(k): int(v) for k, v in
                                                                         zip(*np.unique(repeats, return_counts=True))}}
    protocol = {"r": "Pearson over images, per voxel", "measured": "z-scored betas averaged over repeats",
                "retrieval": f"measured pattern vs predicted patterns of {n_candidates} candidates (Pearson over "
                             "voxels), 30 draws, seed 42",
                "dataset": str(data_path), "noise_ceiling": None, "conventions": info.conventions,
                "picture": target.record() if flatmap and target else None}
    if info.ncsnr is not None:
        ncsnr = info.ncsnr[cols].astype(np.float64)
        counts = {int(k): int(v) for k, v in zip(*np.unique(repeats, return_counts=True))}
        nc_alg = M.noise_ceiling_algonauts(ncsnr, counts)
        n_nsd = int(np.median(repeats))
        nc_nsd = M.noise_ceiling_nsd(ncsnr, n_nsd)
        for name, nc, label in (("nc_score_algonauts", nc_alg, "noise-normalised score (Algonauts NC), median %"),
                                ("nc_score_nsd", nc_nsd, f"noise-normalised score (NSD NC, n={n_nsd}), median %")):
            score = M.noise_normalized_score(r, nc)
            metrics[name] = Metric(label, float(np.nanmedian(score)), n=int(np.isfinite(score).sum()))
            details[name] = M.summarize(score)
        details["noise_ceiling_median_percent"] = {"algonauts": float(np.nanmedian(nc_alg)),
                                                   "nsd": float(np.nanmedian(nc_nsd))}
        protocol["noise_ceiling"] = {"algonauts": "100 ncsnr^2 / (ncsnr^2 + k), k = sum(n_r / r) / sum(n_r)",
                                     "nsd": f"100 ncsnr^2 / (ncsnr^2 + 1/{n_nsd})",
                                     "score": "100 max(r, 0)^2 / NC, capped at 100",
                                     "zero_ceiling": f"NC = 0 taken as {M.NC_ZERO} (Algonauts 2023 code), not NaN"}
    else:
        for name in ("nc_score_algonauts", "nc_score_nsd"):
            metrics[name] = Metric.skipped(name.replace("_", " "), f"{data_path.name} has no voxels/ncsnr")
    ijk = info.ijk[cols]
    details["roi"] = _surface_roi_breakdown(info, cols, r) if info.is_surface else _roi_breakdown(info, ijk, r)

    from fmrikit.viz.maps import save_voxel_map

    label = subject_label(subject)
    extra: dict[str, Any] = {}
    if info.is_surface:
        extra.update(_surface_r_maps(r, ijk, info.n_mesh_vertices, label, flatmap))
    else:
        extra[f"{label}_r.nii.gz"] = lambda p: save_voxel_map(r, ijk, target, nifti_path=p)
        if flatmap:
            lim = 0.5 if np.nanmax(np.abs(r)) <= 0.5 else 1.0  # symmetric, so r = 0 is white
            extra[f"{label}_r.png"] = lambda p: save_voxel_map(r, ijk, target, png_path=p, vmin=-lim, vmax=lim,
                                                               cmap="RdBu_r", title=f"{label} encoding accuracy",
                                                               units="Pearson r, predicted vs measured")
    inputs = [file_checksum(pred), {"path": str(data_path.resolve())}]
    return write_report(out, kind="encoding", preset=None, protocol=protocol, n=len(stim), metrics=metrics,
                        details=details, inputs=inputs, figure=lambda p: _r_histogram(r, p), extra_files=extra,
                        overwrite=overwrite)


@one_run
def evaluate_mask(mask: str | os.PathLike, reference: str | os.PathLike, out: str | os.PathLike, *,
                  root: str | os.PathLike | None = None, overwrite: bool = False) -> dict[str, Any]:
    """Dice, precision and recall of a voxel mask against a reference mask (values > 0).

    ``figure.png`` draws the mask over the reference (overlap, mask only, reference only): a pycortex flatmap when
    the subject's preprocessed dataset on the same grid names a pycortex subject, else a nilearn mosaic.
    """
    from fmrikit.io.nifti import check_same_grid, image_data, load_image

    claim_outputs([out], kind="evaluate mask", overwrite=overwrite, inputs=[mask, reference], root=root)
    a, b = load_image(mask, ndim=3), load_image(reference, ndim=3)
    check_same_grid({str(reference): (b.shape, b.affine), str(mask): (a.shape, a.affine)})
    in_mask, in_reference = image_data(a, mask) > 0, image_data(b, reference) > 0
    res = M.mask_overlap(in_mask, in_reference)
    metrics = {"dice": Metric("Dice", res["dice"]), "precision": Metric("precision", res["precision"]),
               "recall": Metric("recall", res["recall"])}
    target = _mask_target(mask, reference, a, root)

    def figure(path: Path) -> None:
        from fmrikit.viz.maps import save_overlay

        save_overlay(in_mask, in_reference, target, path, mask_name=_mask_name(mask),
                     reference_name=_mask_name(reference),
                     title=f"{_mask_name(mask)} vs {_mask_name(reference)}: Dice {res['dice']:.3f}, "
                           f"precision {res['precision']:.3f}, recall {res['recall']:.3f}")

    return write_report(out, kind="mask", preset=None, protocol={"foreground": "value > 0"}, n=res["n_mask"],
                        metrics=metrics, details=res, inputs=[file_checksum(mask), file_checksum(reference)],
                        figure=figure, overwrite=overwrite)


@one_run
def evaluate_labels(labels: str | os.PathLike, reference: str | os.PathLike, out: str | os.PathLike, *,
                    within: str | os.PathLike | None = None, root: str | os.PathLike | None = None,
                    overwrite: bool = False) -> dict[str, Any]:
    """Adjusted Rand index and normalised mutual information of a label volume vs a reference.

    Voxels compared: those labelled (> 0) in both volumes, or all voxels of ``within``.
    """
    from fmrikit.io.nifti import check_same_grid, image_data, load_image

    claim_outputs([out], kind="evaluate labels", overwrite=overwrite, inputs=[labels, reference, within], root=root)
    a, b = load_image(labels, ndim=3), load_image(reference, ndim=3)
    grids = {str(reference): (b.shape, b.affine), str(labels): (a.shape, a.affine)}
    w = None
    if within is not None:
        w = load_image(within, ndim=3)
        grids[str(within)] = (w.shape, w.affine)
    check_same_grid(grids)
    la, lb = (np.rint(image_data(img, path, np.float64)).astype(np.int64)
              for img, path in ((a, labels), (b, reference)))
    sel = image_data(w, within) > 0 if w is not None else (la > 0) & (lb > 0)
    res = M.label_agreement(la[sel], lb[sel])
    metrics = {"ari": Metric("adjusted Rand index", res["ari"], chance=0.0),
               "nmi": Metric("normalised mutual information", res["nmi"], chance=0.0)}
    protocol = {"voxels": "within mask" if within else "labelled (> 0) in both volumes"}
    inputs = [file_checksum(labels), file_checksum(reference)]
    return write_report(out, kind="labels", preset=None, protocol=protocol, n=int(sel.sum()), metrics=metrics,
                        details=res, inputs=inputs, overwrite=overwrite)


# -- helpers ----------------------------------------------------------------------------------

def _mask_name(path) -> str:
    """A mask's short name for figures: its file name without the NIfTI extension."""
    name = Path(path).name
    return name[:-7] if name.endswith(".nii.gz") else Path(name).stem


def _mask_target(mask, reference, img, root):
    """Where a mask of ``img``'s grid is drawn: the grid of the subject's preprocessed dataset (its pycortex subject
    and anatomy) when one of the same grid is found from a ``sub-NN`` / ``subjNN`` in the paths, else a mosaic."""
    import re

    from fmrikit.data.dataset import read_info
    from fmrikit.viz.maps import MapTarget

    plain = MapTarget(tuple(img.shape[:3]), np.asarray(img.affine, np.float64))
    for path in (mask, reference):
        found = re.findall(r"sub-?j?(\d+)", str(Path(path).resolve()))
        if not found:
            continue
        subject = int(found[-1])
        for dataset in (Path(mask).resolve().parent / f"{subject_label(subject)}_desc-preproc_betas.h5",
                        preproc_betas_path(root, subject)):
            try:
                info = read_info(dataset)
                if tuple(info.volume_shape) == plain.volume_shape and np.allclose(info.affine, plain.affine):
                    return info.map_target.check()
            except (FmrikitError, OSError, KeyError, TypeError, ValueError) as exc:
                logger.debug("mask picture: %s not used (%s)", dataset, exc)
    return plain


def _preset(name: str) -> dict[str, Any]:
    check_option("preset", name, PRESETS)
    return dict(PRESETS[name])


def _stack_resized(images: list[np.ndarray], size: int, interpolation: str, antialias: bool) -> np.ndarray:
    return np.concatenate([M.resize_images(im[None], size, interpolation, antialias) for im in images])


def _network(key: str, clip_model, weights_dir):
    from fmrikit.features import networks

    if key == "clip":
        if not clip_model:
            raise MissingInputError("no CLIP model given", expected="--clip-model PATH_OR_ID (ViT-L/14)",
                                    found="none")
        return networks.clip_vision(clip_model)
    if weights_dir is None:
        raise MissingInputError("no weights folder given", expected=f"--weights-dir with {TORCHVISION_WEIGHTS[key]}",
                                found="none")
    return networks.torchvision_network(key, str(Path(weights_dir) / TORCHVISION_WEIGHTS[key]))


def _network_metric(net, label: str, kind: str, gt: np.ndarray, rec: np.ndarray, batch_size: int,
                    device: str, groups: np.ndarray | None = None) -> Metric:
    f_gt = net.extract(gt, batch_size=batch_size, device=device)
    f_rec = net.extract(rec, batch_size=batch_size, device=device)
    if kind == "two_way":
        return Metric(label, M.two_way_identification(f_gt, f_rec, groups), chance=0.5, n=len(gt))
    return Metric(label, M.correlation_distance(f_gt, f_rec), higher_is_better=False, n=len(gt))


def _read_embeddings(path, key):
    from fmrikit.io.hdf5 import INTEGERS, NUMBERS, check_dtype, open_h5

    with open_h5(path, key) as f:
        check_dtype(f[key], NUMBERS, path)
        if "stim_id" in f:
            check_dtype(f["stim_id"], INTEGERS, path)
        emb = np.asarray(f[key][:], dtype=np.float64).reshape(f[key].shape[0], -1)
        ids = f["stim_id"][:].astype(np.int64) if "stim_id" in f else None
    if not np.isfinite(emb).all():
        raise DataValueError("embeddings contain NaN or Inf", path=path, expected="finite values",
                             found=f"{int((~np.isfinite(emb)).sum())} non-finite values")
    if ids is not None and len(ids) != len(emb):
        raise DataValueError("stim_id and the embeddings differ in length", path=path, expected=str(len(emb)),
                             found=str(len(ids)))
    if ids is not None and len(np.unique(ids)) != len(ids):
        raise DataValueError("repeated stim ids", path=path, expected="one row per stimulus",
                             found=f"{len(ids) - len(np.unique(ids))} repeats")
    return ids, emb


def _match_voxels(pred_ijk, n_pred, data_ijk, path) -> np.ndarray:
    """Columns of the dataset that the prediction's voxels are."""
    if pred_ijk is None:
        if n_pred != len(data_ijk):
            raise DataValueError("prediction and dataset differ in voxel count", path=path,
                                 expected=f"{len(data_ijk)} voxels (or a voxels/ijk table)", found=str(n_pred))
        return np.arange(n_pred)
    lookup = {tuple(v): k for k, v in enumerate(np.asarray(data_ijk).tolist())}
    cols = [lookup.get(tuple(v), -1) for v in np.asarray(pred_ijk).tolist()]
    if min(cols) < 0:
        raise DataValueError("predicted voxels missing from the dataset", path=path,
                             expected="voxels/ijk within the dataset's voxels", found=f"{cols.count(-1)} missing")
    return np.asarray(cols)


def _roi_breakdown(info, ijk: np.ndarray, r: np.ndarray) -> dict[str, Any]:
    """Median r per label of every NSD atlas of the subject (when the source tree is known)."""
    if not info.nsd_root:
        return {}
    from fmrikit.io.nifti import load_image
    from fmrikit.io.nsd import NSDLayout, atlas_names, read_ctab

    try:
        layout = NSDLayout(info.nsd_root)
        names = atlas_names(layout, info.subject, info.space)
    except FmrikitError as exc:
        logger.warning("no per-ROI breakdown: %s", exc.one_line())
        return {}
    out: dict[str, Any] = {}
    for atlas in names:
        img = load_image(layout.roi_path(info.subject, info.space, atlas), ndim=3)
        if tuple(img.shape) != tuple(info.volume_shape):
            continue
        values = np.rint(np.asarray(img.dataobj)[tuple(ijk.T)]).astype(np.int64)
        for label, name in read_ctab(layout.ctab_path(info.subject, atlas)).items():
            sel = values == label
            if sel.any():
                out[f"{atlas}/{name}"] = {"n_voxels": int(sel.sum()), "median_r": float(np.nanmedian(r[sel]))}
    return out


def _surface_r_maps(r: np.ndarray, ijk: np.ndarray, n_vertices: int, label: str, pictures: bool) -> dict[str, Any]:
    """Writers of a surface dataset's r map: a GIFTI per hemisphere, and the flat-mesh and inflated pictures."""
    from fmrikit.viz.surface import save_vertex_map, vertex_map_names

    names = vertex_map_names(label, "r")
    lim = 0.5 if np.nanmax(np.abs(r)) <= 0.5 else 1.0
    style = dict(vmin=-lim, vmax=lim, cmap="RdBu_r", title=f"{label} encoding accuracy",
                 units="Pearson r, predicted vs measured")
    out = {names[h]: (lambda p, h=h: save_vertex_map(r, ijk[:, 0], ijk[:, 1], n_vertices, gifti={h: p}))
           for h in ("lh", "rh")}
    if pictures:
        out[names["flat"]] = lambda p: save_vertex_map(r, ijk[:, 0], ijk[:, 1], n_vertices, flat_png=p, **style)
        out[names["inflated"]] = lambda p: save_vertex_map(r, ijk[:, 0], ijk[:, 1], n_vertices, inflated_png=p,
                                                           **style)
    return out


def _surface_roi_breakdown(info, cols: np.ndarray, r: np.ndarray) -> dict[str, Any]:
    """Median r per label of every fsaverage atlas of the dataset's source (NSD tree or Algonauts folder)."""
    from fmrikit.data.surface import surface_atlas_labels, surface_atlases, surface_label_names

    out: dict[str, Any] = {}
    try:
        atlases = surface_atlases(info)
        for atlas in atlases:
            values = surface_atlas_labels(info, atlas)[cols]
            for label, name in surface_label_names(info, atlas).items():
                sel = values == label
                if sel.any():
                    out[f"{atlas}/{name}"] = {"n_voxels": int(sel.sum()), "median_r": float(np.nanmedian(r[sel]))}
    except FmrikitError as exc:
        logger.warning("no per-ROI breakdown: %s", exc.one_line())
    return out


def _reconstruction_record(pred) -> dict[str, Any]:
    """The sidecar of the ``reconstruct`` run that wrote a folder of reconstructions (``OUT/images`` or its
    ``sample-KK`` folders), {} when there is none."""
    import json

    for folder in (Path(pred), *Path(pred).parents[:2]):
        if (folder / "reconstruct.json").is_file():
            try:
                return json.loads((folder / "reconstruct.json").read_text())
            except json.JSONDecodeError:
                return {}
    return {}


def _input(path) -> dict[str, Any]:
    path = Path(path)
    return file_checksum(path) if path.is_file() else {"path": str(path.resolve())}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def recon_title(metrics: dict[str, Metric], n: int, width: int = 110) -> str:
    """The recon figure's title: what is shown, then the computed metrics (chance in brackets) wrapped at ``width``
    characters."""
    shown = [f"{m.label.split(' (')[0]} {m.value:.3f}" + ("" if m.chance is None else f" (chance {m.chance:g})")
             for m in metrics.values() if m.status == "ok"]
    import textwrap

    return "\n".join([f"reconstructions (bottom) vs ground truth (top), {n} pairs scored",
                      *textwrap.wrap(", ".join(shown), width)])


def _recon_figure(gt: np.ndarray, rec: np.ndarray, keys: list, path: Path, metrics: dict[str, Metric],
                  n_max: int = 8) -> None:
    plt = _pyplot()
    n = min(n_max, len(gt))
    fig, axes = plt.subplots(2, n, figsize=(max(1.6 * n, 7.5), 4.3), squeeze=False)
    for j in range(n):
        for row, (images, title) in enumerate(((gt, "truth"), (rec, "reconstruction"))):
            ax = axes[row, j]
            ax.imshow(images[j])
            ax.set_xticks([]), ax.set_yticks([])
            if j == 0:
                ax.set_ylabel(title)
        axes[0, j].set_title(f"stimulus {keys[j]}", fontsize=8)
    fig.suptitle(recon_title(metrics, len(gt), width=int(fig.get_figwidth() * 14)), fontsize=9)  # 9 pt: ~14 chars/in
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _retrieval_figure(metrics: dict[str, Metric], details: dict, path: Path) -> None:
    plt = _pyplot()
    names = list(metrics)
    means = [metrics[k].value for k in names]
    err = np.array([[m - details[k]["ci95"][0], details[k]["ci95"][1] - m] for k, m in zip(names, means)]).T
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.bar(["image", "brain"], means, yerr=err, color=["tab:blue", "tab:orange"], capsize=4)
    ax.axhline(metrics[names[0]].chance, color="k", ls="--", lw=1, label="chance")
    ax.set_ylim(0, 1)
    ax.set_ylabel("top-1 accuracy (fraction)")
    ax.set_title(f"top-1 retrieval, chance {metrics[names[0]].chance:.3f} (bars: 95% CI over draws)", fontsize=9)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _r_histogram(r: np.ndarray, path: Path) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 3))
    ax.hist(r[np.isfinite(r)], bins=60, color="tab:blue")
    ax.axvline(float(np.nanmedian(r)), color="k", ls="--", lw=1, label=f"median {np.nanmedian(r):.3f}")
    ax.set_xlabel("voxel Pearson r (predicted vs measured)")
    ax.set_ylabel("voxels")
    ax.set_title(f"encoding accuracy of {int(np.isfinite(r).sum())} voxels", fontsize=9)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
