"""What a project folder holds, read from its files and sidecars: the contents of ``fmrikit report``.

Every output is recognised by the file its command writes beside it: a dataset by its ``*_betas.json``
sidecar, a model folder by ``config.json`` (+ ``run.json`` and ``training_log.tsv``), a subject decoder by its
``<stem>.json`` sidecar, a reconstruction by ``reconstruct.json``, predictions by ``encode.json``, a clustering
by ``clusters.json``, an evaluation by a ``results.json`` of schema ``fmrikit.evaluate/1``. Nothing is computed
here: numbers are those of the files.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fmrikit.project import project_root
from fmrikit.viz.curves import read_log

SUBJECT = re.compile(r"^sub-(\d+)$")


@dataclass
class Output:
    """One output of a command: where it is, what it says about itself, its pictures and its numbers.

    Attributes
    ----------
    kind : str
        ``dataset``, ``selection``, ``subject-model``, ``model``, ``reconstruction``, ``encoding``,
        ``clusters`` or ``evaluation``.
    title : str
    path : Path
        The output (file or folder).
    sidecar : dict
        Its JSON sidecar (``{}`` when none).
    images : list of (Path, str)
        Pictures and their captions.
    numbers : list of (str, str)
        Label and value, as the files give them.
    log : Path or None
        Its per-epoch training log.
    subject : str or None
        ``sub-NN`` when the output belongs to one subject.
    mask : Path or None
        The binary voxel mask of a dataset or voxel selection (NIfTI), when it exists.
    linked : list of Output
        Evaluations shown on this output's card.
    """

    kind: str
    title: str
    path: Path
    sidecar: dict[str, Any] = field(default_factory=dict)
    images: list[tuple[Path, str]] = field(default_factory=list)
    numbers: list[tuple[str, str]] = field(default_factory=list)
    log: Path | None = None
    subject: str | None = None
    mask: Path | None = None
    linked: list[Output] = field(default_factory=list)


@dataclass
class Inventory:
    """Everything :func:`inventory` found, by section."""

    root: Path
    description: dict[str, Any]
    outputs: list[Output]

    def of(self, kind: str, subject: str | None = None) -> list[Output]:
        """The outputs of a kind (of one subject, if given), in path order."""
        return [o for o in self.outputs if o.kind == kind and (subject is None or o.subject == subject)]

    @property
    def subjects(self) -> list[str]:
        return sorted({o.subject for o in self.outputs if o.subject})


def _json(path: Path) -> dict[str, Any]:
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def _fmt(value: Any, digits: int = 3) -> str:
    if isinstance(value, float):
        return f"{value:.{digits}f}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value)


def _pct(value: Any) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _retrieval_numbers(scores: dict | None, prefix: str = "") -> list[tuple[str, str]]:
    if not scores:
        return []
    return [(f"{prefix}image retrieval (of {scores['n_candidates']}, chance {_pct(scores['chance'])})",
             _pct(scores["image_retrieval"])),
            (f"{prefix}brain retrieval (of {scores['n_candidates']})", _pct(scores["brain_retrieval"]))]


def _encoding_numbers(scores: dict | None, prefix: str = "") -> list[tuple[str, str]]:
    if not scores:
        return []
    out = [(f"{prefix}voxel r, median ({scores['n_test_images']} test images)", _fmt(scores["median_r"])),
           (f"{prefix}voxel r, 75th percentile", _fmt(scores["p75_r"]))]
    if scores.get("nc_score_median") is not None:
        out.append((f"{prefix}noise-ceiling score, median (%)", _fmt(scores["nc_score_median"], 1)))
    return out


def _pngs(folder: Path, pattern: str = "*.png") -> list[Path]:
    return sorted(p for p in folder.glob(pattern) if p.is_file())


def _dataset(sidecar_path: Path, subject: str) -> Output:
    sidecar = _json(sidecar_path)
    p = sidecar.get("parameters", {})
    stem = sidecar_path.name[:-len("_betas.json")]
    numbers = [("trials", _fmt(sidecar.get("n_trials"))), ("voxels", _fmt(sidecar.get("n_voxels"))),
               ("sessions", _fmt(sidecar.get("n_sessions"))), ("shared (test) trials", _fmt(sidecar.get("n_shared_trials"))),
               ("voxel selection", str(p.get("roi"))), ("betas", str(p.get("betas", p.get("betas_file", "")))),
               ("z-scored on", "non-shared trials" if p.get("zscore_exclude_shared") else "all trials of a session")]
    if sidecar.get("n_dropped_constant"):
        numbers.append(("constant voxels dropped", _fmt(sidecar["n_dropped_constant"])))
    images = [(png, "noise ceiling (%)" if "noiseceiling" in png.name else png.stem)
              for png in _pngs(sidecar_path.parent, f"{stem}_*.png")]
    mask = sidecar_path.with_name(f"{stem}_mask.nii.gz")
    return Output("dataset", f"{stem} (voxel selection {p.get('roi', '?')})", sidecar_path.with_name(f"{stem}_betas.h5"),
                  sidecar, images, numbers, subject=subject, mask=mask if mask.is_file() else None)


def _subject_run(sidecar_path: Path, subject: str) -> Output | None:
    """A subject decoder run (``roi-train`` / ``adapt-subject``): its sidecar, maps, log and scores."""
    sidecar = _json(sidecar_path)
    command = sidecar.get("command")
    if command not in ("roi-train", "adapt-subject"):
        return None
    stem = sidecar_path.stem
    kind = "selection" if command == "roi-train" else "subject-model"
    numbers = [("voxels", _fmt(sidecar.get("n_voxels"))), ("training trials", _fmt(sidecar.get("n_train_trials")))]
    if command == "roi-train":
        numbers.append(("coarse-region voxels", _fmt(sidecar.get("n_coarse_voxels"))))
    numbers += _retrieval_numbers(sidecar.get("retrieval"))
    images = sorted(((png, _caption(png.name)) for png in _pngs(sidecar_path.parent, f"{stem}_*.png")),
                    key=lambda item: _ORDER.get(item[1], len(_ORDER)))
    log, mask = sidecar_path.with_name(f"{stem}_log.tsv"), sidecar_path.with_name(f"{stem}_mask.nii.gz")
    return Output(kind, f"{stem} ({command})", sidecar_path.with_name(f"{stem}_decoder"), sidecar, images, numbers,
                  log=log if log.is_file() else None, subject=subject, mask=mask if mask.is_file() else None)


#: Order of a subject run's pictures: the mask first (the report adds its overlays after it), training curves last.
_ORDER = {"selected voxels": 0, "mask weights": 2, "training curves": 9}


def _caption(name: str) -> str:
    if name.startswith("training_log_") and name.endswith(".png"):  # one log per part of a model
        return f"training curves ({name[len('training_log_'):-4]})"
    for key, text in (("_mask.png", "selected voxels"), ("_weights.png", "mask weights"), ("_log.png", "training curves"),
                      ("noiseceiling", "noise ceiling (%)"), ("clusters", "clusters")):
        if key in name:
            return text
    return Path(name).stem


def _model(folder: Path, subject: str | None) -> Output:
    """A model folder: ``config.json``, ``run.json`` and its training log(s)."""
    config, run = _json(folder / "config.json"), _json(folder / "run.json")
    numbers: list[tuple[str, str]] = []
    for key, scores in (run.get("retrieval") or {}).items():
        numbers += _retrieval_numbers(scores, f"{key}: ")
    for key, scores in (run.get("encoding") or {}).items():
        numbers += _encoding_numbers(scores, f"{key}: ")
    for key, s in (run.get("scores") or {}).items():
        if isinstance(s, dict) and "test_mse" in s:
            numbers.append((f"{key} mapper ({s.get('arch')}): test MSE (training-mean predictor)",
                            f"{_fmt(s['test_mse'], 4)} ({_fmt(s.get('baseline_mse_train_mean'), 4)})"))
        elif isinstance(s, dict) and "mse_ratio" in s:
            numbers.append((f"{key}: masked MSE / mean-flatmap MSE", _fmt(s["mse_ratio"])))
    logs = sorted(folder.glob("training_log*.tsv"))
    single = [log for log in logs if len(read_log(log).get("epoch", [])) == 1]
    for log in single:  # a closed-form fit logs one row: its numbers, not a curve
        numbers += [(f"{log.stem.replace('training_log', 'fit').replace('_', ' ')}: {name}", _fmt(values[0], 4))
                    for name, values in read_log(log).items() if name != "epoch"]
    images = [(png, _caption(png.name)) for png in _pngs(folder) if png.with_suffix(".tsv") not in single]
    logs = [log for log in logs if log not in single]
    name = config.get("class") or run.get("command") or folder.name
    return Output("model", f"{folder.name} ({name})", folder, run, images, numbers,
                  log=logs[0] if logs else None, subject=subject)


def _reconstruction(folder: Path, subject: str) -> Output:
    sidecar = _json(folder / "reconstruct.json")
    p = sidecar.get("parameters", {})
    numbers = [("method", str(p.get("method"))), ("inputs", _fmt(sidecar.get("n_inputs"))),
               ("samples per input", _fmt(p.get("samples"))), ("input", str(p.get("betas") or p.get("trials")))]
    images = [(folder / "contact_sheet.png", "ground truth | reconstruction")] \
        if (folder / "contact_sheet.png").is_file() else []
    return Output("reconstruction", folder.name, folder, sidecar, images, numbers, subject=subject)


def _encoding(folder: Path, subject: str) -> Output:
    sidecar = _json(folder / "encode.json")
    p = sidecar.get("parameters", {})
    numbers = [("images", _fmt(p.get("n_images") or sidecar.get("n_images"))),
               ("which", "the subject's shared (test) images" if p.get("shared") else str(p.get("images")))]
    images = [(png, _prediction_caption(png.name)) for png in _pngs(folder)[:6]]
    return Output("encoding", folder.name, folder, sidecar, images, numbers, subject=subject)


def _prediction_caption(name: str) -> str:
    """``sub-01_img-stim-26_pred.png`` -> ``predicted response to stim-26 (z-scored betas)``."""
    image = name.split("_img-", 1)[1].rsplit("_pred", 1)[0] if "_img-" in name else Path(name).stem
    return f"predicted response to {image} (z-scored betas)"


def _clusters(folder: Path) -> Output:
    sidecar = _json(folder / "clusters.json")
    sizes = sidecar.get("sizes") or {}
    numbers = [("clusters", _fmt(len(sidecar.get("top_images", {})) or None))]
    if isinstance(sizes, dict):
        numbers += [(f"{k} voxels", _fmt(sum(v) if isinstance(v, list) else v)) for k, v in sizes.items()]
    images = [(png, "clusters of " + png.name.split("_")[0]) for png in _pngs(folder, "sub-*_desc-clusters*.png")]
    images += [(png, png.stem.replace("_top-images", ": top images")) for png in _pngs(folder, "cluster-*_top-images.png")]
    return Output("clusters", folder.name, folder, sidecar, images, numbers)


_EVALUATION_CAPTIONS = {
    ("mask", "figure.png"): "the mask over its reference (yellow: both; red: mask only; blue: reference only)",
    ("recon", "figure.png"): "ground truth (top) and reconstruction (bottom), with the computed metrics",
    ("retrieval", "figure.png"): "top-1 retrieval accuracy with 95% intervals",
    ("encoding", "figure.png"): "voxel r histogram",
    ("encoding", "r.png"): "encoding accuracy per voxel (Pearson r, predicted vs measured)"}


def result_name(path: Path) -> str:
    """A results file's short name: its folder and that folder's parent (``troi/sub-01``)."""
    path = Path(path)
    return f"{path.parent.parent.name}/{path.parent.name}" if path.parent.parent.name else path.parent.name


def _evaluation(path: Path) -> Output | None:
    record = _json(path)
    if record.get("schema") != "fmrikit.evaluate/1":
        return None
    numbers = []
    skipped = []
    for m in record.get("metrics", {}).values():
        if m.get("status") == "ok":
            chance = "" if m.get("chance") is None else f" (chance {_fmt(m['chance'], 4)})"
            numbers.append((m["label"], _fmt(m["value"], 4) + chance))
        else:
            skipped.append(m["label"])
    if skipped:
        numbers.append(("skipped (no weights or network here)", ", ".join(skipped)))
    images = [(path.parent / name, _EVALUATION_CAPTIONS.get((record["kind"], name.split("_")[-1]),
                                                          f"{record['kind']} evaluation"))
              for name in record.get("outputs", []) if name.endswith(".png") and (path.parent / name).is_file()]
    title = f"{record['kind']}: {result_name(path)} (n = {record.get('n')})"
    return Output("evaluation", title, path, record, images, numbers)


def inventory(root: str | os.PathLike | None = None, *, extra: list[str | os.PathLike] = (),
              subjects: list[int] | None = None) -> Inventory:
    """Read a project folder (and folders of evaluations kept outside it).

    Parameters
    ----------
    root : path-like, optional
        The project folder (default as every command: ``$FMRIKIT_ROOT`` or ``./derivatives/fmrikit``).
    extra : list of path-like
        More folders searched for ``results.json`` files.
    subjects : list of int, optional
        Only these subjects' outputs (models, clusters and evaluations are kept).

    Returns
    -------
    Inventory
    """
    root = project_root(root)
    keep = None if subjects is None else {f"sub-{int(s):02d}" for s in subjects}
    outputs: list[Output] = []
    for folder in sorted(p for p in root.glob("sub-*") if p.is_dir() and SUBJECT.match(p.name)):
        label = folder.name
        if keep is not None and label not in keep:
            continue
        for sidecar in sorted(folder.glob("*_betas.json")):
            outputs.append(_dataset(sidecar, label))
        for sidecar in sorted(folder.glob(f"{label}_desc-*.json")):
            run = _subject_run(sidecar, label)
            if run is not None:
                outputs.append(run)
        for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
            if (sub / "reconstruct.json").is_file():
                outputs.append(_reconstruction(sub, label))
            elif (sub / "encode.json").is_file():
                outputs.append(_encoding(sub, label))
            elif (sub / "run.json").is_file():
                outputs.append(_model(sub, label))
    models = root / "models"
    if models.is_dir():
        outputs += [_model(p, None) for p in sorted(models.iterdir()) if (p / "config.json").is_file()]
    clusters = root / "clusters"
    if clusters.is_dir():
        outputs += [_clusters(p) for p in sorted(clusters.iterdir()) if (p / "clusters.json").is_file()]
    seen = set()
    for base in [root, *map(Path, extra)]:
        for path in sorted(Path(base).rglob("results.json")):
            if path.resolve() not in seen:
                seen.add(path.resolve())
                item = _evaluation(path)
                if item is not None:
                    outputs.append(item)
    _link_mask_evaluations(outputs)
    _link_scored_evaluations(outputs)
    return Inventory(root=root, description=_json(root / "dataset_description.json"), outputs=outputs)


def evaluation_inputs(record: dict[str, Any]) -> tuple[Path | None, Path | None]:
    """The first two inputs an evaluation scored (``evaluate mask``: the mask and the reference; ``evaluate recon``:
    the reconstructions and the truth), resolved, None when unrecorded."""
    inputs = record.get("provenance", {}).get("inputs") or []
    paths = [Path(i["path"]).resolve() if isinstance(i, dict) and i.get("path") else None for i in inputs[:2]]
    return tuple(paths + [None] * (2 - len(paths)))


def _reference_name(path: Path | None) -> str:
    if path is None:
        return "reference"
    name = path.name[:-7] if path.name.endswith(".nii.gz") else path.stem
    return f"{path.parent.name}/{name}" if path.parent.name else name


def _link_mask_evaluations(outputs: list[Output]) -> None:
    """Show each ``evaluate mask`` result on the card of the mask it scored: its overlap numbers and figure."""
    by_mask: dict[Path, list[Output]] = {}
    for item in outputs:
        if item.kind == "evaluation" and item.sidecar.get("kind") == "mask":
            mask, _ = evaluation_inputs(item.sidecar)
            if mask is not None:
                by_mask.setdefault(mask, []).append(item)
    for item in outputs:
        if item.mask is None:
            continue
        for evaluation in by_mask.get(item.mask.resolve(), []):
            _, reference = evaluation_inputs(evaluation.sidecar)
            name = _reference_name(reference)
            metrics = evaluation.sidecar.get("metrics", {})
            item.numbers += [(f"vs {name}: {metrics[k]['label']}", _fmt(metrics[k]["value"]))
                             for k in ("dice", "precision", "recall")
                             if metrics.get(k, {}).get("status") == "ok"]
            at = 1 if item.kind == "selection" else len(item.images)  # beside the selection's mask
            item.images[at:at] = [(path, f"overlap with {name} (yellow: both)") for path, _ in evaluation.images]


def _link_scored_evaluations(outputs: list[Output]) -> None:
    """Show each ``evaluate recon`` / ``evaluate encoding`` result beside the output it scored (the folder of the
    reconstructions' ``images/``, of the predictions' HDF5): its numbers, named by the results folder, and pictures."""
    by_folder: dict[tuple[str, Path], list[Output]] = {}
    for item in outputs:
        kind = {"recon": "reconstruction", "encoding": "encoding"}.get(item.sidecar.get("kind"))
        if item.kind == "evaluation" and kind:
            scored, _ = evaluation_inputs(item.sidecar)
            if scored is not None:
                by_folder.setdefault((kind, scored.parent), []).append(item)
    for item in outputs:
        for evaluation in by_folder.get((item.kind, item.path.resolve()), []):
            item.numbers += [(f"{result_name(evaluation.path)}: {label}", value) for label, value in evaluation.numbers]
            at = 0 if item.kind == "encoding" else len(item.images)  # an accuracy map before example predictions
            item.images[at:at] = sorted(evaluation.images, key=lambda image: image[0].name == "figure.png")
            item.linked.append(evaluation)
