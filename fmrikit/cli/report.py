"""``fmrikit report``: the project's HTML page, and a short summary of what has been run and what comes next."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from fmrikit.cli import options as o
from fmrikit.cli._common import call, int_list, out_console


def report(
    out: Annotated[Optional[Path], typer.Option(help="The HTML page [default: <root>/report.html]; its pictures go "
                                                     "to report_files/ beside it.")] = None,
    subjects: Annotated[Optional[str], typer.Option("--subject", "--subjects",
                                                    help="Only these subjects' sections, e.g. 1 or 1,2.")] = None,
    results: Annotated[Optional[list[Path]], typer.Option(help="A folder of evaluate results kept outside the project "
                                                                "(repeatable).")] = None,
    root: o.Root = None,
) -> None:
    """One HTML page per project (opens from disk): datasets, voxel selections, models with their training curves,
    reconstructions, encoder maps, evaluations."""
    from rich.table import Table

    from fmrikit.report import build_report

    result = call(build_report, root, out=out, subjects=int_list(subjects, "--subject"), extra=results or [])
    inv = result.inventory
    table = Table(title=f"fmrikit project {inv.root}", title_justify="left")
    for column in ("section", "outputs"):
        table.add_column(column)
    kinds = (("dataset", "datasets"), ("selection", "TROI voxel selections"), ("subject-model", "subject models"),
             ("model", "models"), ("reconstruction", "reconstructions"), ("encoding", "encoder predictions"),
             ("clusters", "functional clusters"), ("evaluation", "evaluations"))
    for kind, label in kinds:
        items = inv.of(kind)
        if items:
            table.add_row(label, ", ".join(o.subject or o.path.name for o in items) if kind != "evaluation"
                          else str(len(items)))
    out_console.print(table)
    for step in result.steps:
        out_console.print(f"[yellow]next:[/] {step}")
    out_console.print(f"report: {result.page}")
