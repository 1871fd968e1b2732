"""``fmrikit report``: one HTML page per project with every output's pictures, numbers and training curves, and
what is missing for the next step of the usual chain.

Library entry point: :func:`build_report`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from fmrikit.io.atomic import claim_outputs, one_run, staged_outputs
from fmrikit.report.inventory import Inventory, Output, inventory

__all__ = ["ReportResult", "build_report", "next_steps", "Inventory", "Output", "inventory"]

FILES = "report_files"


@dataclass
class ReportResult:
    """The page, its folder of pictures, what it showed and the next steps it suggests."""

    page: Path
    files: Path
    inventory: Inventory
    steps: list[str]


def next_steps(inv: Inventory) -> list[str]:
    """What the usual chain still lacks, one line each with the command that does it."""
    steps = []
    numbers = {s: int(s[4:]) for s in inv.subjects}
    datasets = {d.subject: d for d in inv.of("dataset")}
    models = {o.path.name for o in inv.of("model") if o.subject is None}
    if not inv.subjects:
        return ["no subject preprocessed yet -> fmrikit preprocess --nsd-root NSD --subject 1"]
    others = ",".join(str(n) for n in numbers.values())
    decoder = next((o for o in inv.of("model") if o.subject is None and o.path.name == "decoder"), None)
    pretrained_on = set(decoder.sidecar.get("parameters", {}).get("subjects", [])) if decoder else set()
    if "decoder" not in models:
        steps.append(f"no cross-subject decoder yet -> fmrikit pretrain decoder --subjects {others}")
    for subject, n in numbers.items():
        done = "preprocessed" if subject in datasets else "not preprocessed"
        new_subject = subject not in pretrained_on
        if new_subject and not inv.of("selection", subject) and not inv.of("subject-model", subject) and decoder:
            brainmask = any("roi-brainmask" in d.path.name for d in inv.of("dataset", subject))
            first = "" if brainmask else f"fmrikit preprocess --subject {n} --roi brainmask, then "
            steps.append(f"{subject}: {done}; no TROI mask yet -> {first}fmrikit roi-train --subject {n} --budget 3000")
        mappers = [o for o in inv.of("model", subject) if o.path.name.endswith("_latentmapper")]
        if mappers and not inv.of("reconstruction", subject):
            steps.append(f"{subject}: latent mapper trained, nothing reconstructed yet -> fmrikit reconstruct "
                         f"--subject {n} --trials shared")
    if "encoder" not in models:
        steps.append(f"no universal encoder yet -> fmrikit pretrain encoder --subjects {others}")
    elif not inv.of("clusters"):
        steps.append("no functional clusters yet -> fmrikit cluster-embeddings --k 20")
    evaluated = {str(Path(p).resolve()) for e in inv.of("evaluation") if e.sidecar.get("kind") == "recon"
                 for p in [e.sidecar.get("details", {}).get("pred_dir", "")] if p}
    for recon in inv.of("reconstruction"):
        if str((recon.path / "images").resolve()) not in evaluated and not any(
                recon.path.name in str(e.sidecar.get("provenance", {}).get("argv", "")) for e in inv.of("evaluation")):
            steps.append(f"{recon.subject}: {recon.path.name} not evaluated -> fmrikit evaluate recon --pred "
                         f"{recon.path / 'images'} --truth STIMULI")
    return steps


@one_run
def build_report(root: str | os.PathLike | None = None, *, out: str | os.PathLike | None = None,
                 subjects: list[int] | None = None, extra: list[str | os.PathLike] = (),
                 overwrite: bool = True) -> ReportResult:
    """Write the project's HTML report.

    Parameters
    ----------
    root : path-like, optional
        The project folder (default as every command).
    out : path-like, optional
        The page (default ``<root>/report.html``); its pictures go to ``report_files/`` beside it.
    subjects : list of int, optional
        Only these subjects' sections (models, clusters and evaluations are always shown).
    extra : list of path-like
        More folders of ``evaluate`` results kept outside the project.
    overwrite : bool
        Replace an existing report (a report is rebuilt from the project each time).

    Returns
    -------
    ReportResult
    """
    from fmrikit.report.overlays import draw_selection_overlays
    from fmrikit.report.page import Assets, render
    from fmrikit.viz.curves import save_training_curves

    inv = inventory(root, extra=extra, subjects=subjects)
    out = Path(out) if out is not None else inv.root / "report.html"
    steps = next_steps(inv)
    claim_outputs([out, out.parent / FILES], kind="report", overwrite=overwrite, root=inv.root)
    with staged_outputs(out.parent, [out.name, FILES], overwrite=overwrite, kind="report") as staged:
        assets = Assets(staged[FILES], inv.root)
        staged[FILES].mkdir()
        curves = {}
        for item in inv.outputs:  # logs written before curves were drawn beside them
            if item.log is not None:
                png = item.log.with_suffix(".png")
                if not png.is_file():
                    png = save_training_curves(item.log, staged[FILES] / f"curve{len(curves):03d}.png", item.title)
                if png is not None:
                    curves[item.log] = png
        draw_selection_overlays(inv, staged[FILES])
        staged[out.name].write_text(render(inv, assets, curves, steps))
    return ReportResult(page=out, files=out.parent / FILES, inventory=inv, steps=steps)
