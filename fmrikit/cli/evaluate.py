"""``fmrikit evaluate``: the field's metrics, with presets and readable reports."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from fmrikit.cli import options as o
from fmrikit.cli._common import call, out_console

app = typer.Typer(no_args_is_help=True,
                  help="Evaluate reconstructions, retrieval, encoding models, masks and label maps.")

OutOption = Annotated[Optional[Path], typer.Option("--out", help="Output folder [default: "
                                                   "<root>/evaluate/<kind>-<run id>].")]


def _show(record: dict, out: Path) -> None:
    from rich.table import Table

    table = Table(title=f"evaluate {record['kind']} (n = {record['n']})")
    for col in ("metric", "value", "chance", "note"):
        table.add_column(col)
    from fmrikit.analysis.results import format_value

    skipped = []
    for m in record["metrics"].values():
        if m["status"] != "ok":
            skipped.append(m["label"])
            continue
        table.add_row(m["label"], format_value(m["value"]), "" if m["chance"] is None else format_value(m["chance"]),
                      m["reason"])
    out_console.print(table)
    if skipped:  # one line, not a table row each: their reasons are in results.json
        out_console.print(f"[yellow]skipped[/] (no local weights or network): {', '.join(skipped)}")
    out_console.print(f"results: {out / 'results.json'}")


def _out(out: Optional[Path], kind: str, root: Optional[Path]) -> Path:
    from fmrikit.analysis.evaluate import default_out

    return out or default_out(kind, root)


def column_names(paths: list[Path]) -> list[str]:
    """Each results file's shortest distinct name: its folder, with as many parent folders as make it unique
    (``troi/sub-01`` and ``nsdgeneral/sub-01``, not ``sub-01`` twice)."""
    parts = [(p.parent if p.name == "results.json" else p.with_suffix("")).resolve().parts for p in paths]
    for depth in range(1, max(len(p) for p in parts) + 1):
        names = ["/".join(p[-depth:]) for p in parts]
        if len(set(names)) == len(names):
            return names
    return [str(p) for p in paths]


@app.command("compare")
def compare(
    results: Annotated[list[Path], typer.Argument(help="results.json files written by fmrikit evaluate.")],
) -> None:
    """Show results side by side (also spelled: fmrikit evaluate --compare A.json B.json)."""
    from rich.table import Table

    from fmrikit.analysis.results import compare_rows, load_results

    records = [call(load_results, p) for p in results]
    table = Table(title=f"{' / '.join(dict.fromkeys(r['kind'] for r in records))} results side by side")
    table.add_column("metric")
    for name, r in zip(column_names(results), records):
        table.add_column(f"{name}\n{r['kind']}, n = {r['n']}")
    for row in compare_rows(records):
        table.add_row(*row)
    out_console.print(table)


@app.command("recon")
def recon(
    pred: Annotated[Path, typer.Option(help="Folder of reconstructions (named ..._stim-<id>.png or like the truth).")],
    truth: Annotated[Path, typer.Option(help="Folder of ground-truth images or an HDF5 brick (row = stim id).")],
    preset: Annotated[str, typer.Option(help="Protocol preset: mindeye2 | braindiffuser.")] = "mindeye2",
    truth_dataset: Annotated[str, typer.Option(help="Dataset in an HDF5 truth.")] = "imgBrick",
    repeats: Annotated[Optional[str], typer.Option(help="Several reconstructions of one stimulus (a session file's "
                                                        "trials): 'trials' scores each trial, 'average' averages "
                                                        "each stimulus's reconstructions [default: refuse].")]
    = None,
    clip_model: Annotated[Optional[str], typer.Option(help="Local CLIP ViT-L/14 folder or HF-cache id.")] = None,
    weights_dir: Annotated[Optional[Path], typer.Option(help="Folder with alexnet.pth, inception_v3.pth, "
                                                             "efficientnet_b1.pth, swav_resnet50.pth.")] = None,
    device: o.Device = "auto",
    batch_size: Annotated[int, typer.Option(min=1, help="Images per network batch.")] = 32,
    out: OutOption = None,
    root: o.Root = None,
    overwrite: o.Overwrite = False,
) -> None:
    """PixCorr, SSIM, AlexNet(2/5), Inception, CLIP, EffNet-B, SwAV (absent networks are skipped)."""
    from fmrikit.analysis.evaluate import evaluate_recon

    folder = _out(out, "recon", root)
    record = call(evaluate_recon, pred, truth, folder, preset=preset, truth_dataset=truth_dataset, repeats=repeats,
                  clip_model=clip_model, weights_dir=weights_dir, device=device, batch_size=batch_size, root=root,
                  overwrite=overwrite)
    _show(record, folder)


@app.command("retrieval")
def retrieval(
    brain: Annotated[Path, typer.Option(help="HDF5 of brain embeddings (dataset 'embeddings', optional 'stim_id').")],
    image: Annotated[Path, typer.Option(help="HDF5 of image embeddings (same layout).")],
    candidates: Annotated[int, typer.Option(min=2, help="Candidates per draw.")] = 300,
    draws: Annotated[int, typer.Option(min=1, help="Number of draws.")] = 30,
    seed: Annotated[int, typer.Option(help="Seed of the draws.")] = 42,
    key: Annotated[str, typer.Option(help="Dataset name of the embeddings.")] = "embeddings",
    out: OutOption = None,
    root: o.Root = None,
    overwrite: o.Overwrite = False,
) -> None:
    """Top-1 image retrieval (brain -> image) and brain retrieval (image -> brain)."""
    from fmrikit.analysis.evaluate import evaluate_retrieval

    folder = _out(out, "retrieval", root)
    record = call(evaluate_retrieval, brain, image, folder, n_candidates=candidates, n_draws=draws, seed=seed,
                  key=key, root=root, overwrite=overwrite)
    _show(record, folder)


@app.command("encoding")
def encoding(
    pred: Annotated[Path, typer.Option(help="HDF5 with 'pred' (n_images, n_voxels), 'stim_id', optional "
                                            "'voxels/ijk'.")],
    subject: Annotated[int, typer.Option(min=1, help="Subject whose preprocessed dataset holds the measurements.")],
    roi: Annotated[Optional[str], typer.Option(help="Voxel selection of the dataset [default: nsdgeneral].")]
    = None,
    flatmap: Annotated[bool, typer.Option(help="Draw a picture of r (pycortex flatmap, else nilearn mosaic).")]
    = True,
    out: OutOption = None,
    root: o.Root = None,
    overwrite: o.Overwrite = False,
) -> None:
    """Per-voxel r (median, 25/75/90th percentiles), noise-ceiling-normalised score, per-ROI breakdown."""
    from fmrikit.analysis.evaluate import evaluate_encoding

    folder = _out(out, "encoding", root)
    record = call(evaluate_encoding, pred, subject, folder, root=root, roi=roi, flatmap=flatmap,
                  overwrite=overwrite)
    _show(record, folder)


@app.command("mask")
def mask(
    mask_file: Annotated[Path, typer.Option("--mask", help="Mask NIfTI (value > 0).")],
    reference: Annotated[Path, typer.Option(help="Reference mask NIfTI on the same grid.")],
    out: OutOption = None,
    root: o.Root = None,
    overwrite: o.Overwrite = False,
) -> None:
    """Dice, precision and recall of a mask against a reference mask."""
    from fmrikit.analysis.evaluate import evaluate_mask

    folder = _out(out, "mask", root)
    _show(call(evaluate_mask, mask_file, reference, folder, root=root, overwrite=overwrite), folder)


@app.command("labels")
def labels(
    labels_file: Annotated[Path, typer.Option("--labels", help="Label NIfTI (cluster labels, > 0).")],
    reference: Annotated[Path, typer.Option(help="Reference label NIfTI on the same grid.")],
    within: Annotated[Optional[Path], typer.Option(help="Compare inside this mask [default: voxels labelled "
                                                        "in both].")] = None,
    out: OutOption = None,
    root: o.Root = None,
    overwrite: o.Overwrite = False,
) -> None:
    """Adjusted Rand index and normalised mutual information of label maps."""
    from fmrikit.analysis.evaluate import evaluate_labels

    folder = _out(out, "labels", root)
    _show(call(evaluate_labels, labels_file, reference, folder, within=within, root=root, overwrite=overwrite),
          folder)
