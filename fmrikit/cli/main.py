"""Entry point of the ``fmrikit`` command."""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

from fmrikit import __version__
from fmrikit.cli import adapt, data, encode, evaluate, pretrain, reconstruct, report, troi
from fmrikit.cli._common import FmrikitGroup, call, out_console, setup_logging, warning_line

app = typer.Typer(name="fmrikit", cls=FmrikitGroup, no_args_is_help=True, add_completion=False,
                  pretty_exceptions_enable=False, rich_markup_mode=None,
                  help="Voxel selection, decoding, encoding, reconstruction and evaluation for visual fMRI.")


def _version(value: bool) -> None:
    if value:
        out_console.print(f"fmrikit {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[Optional[bool], typer.Option("--version", callback=_version, is_eager=True,
                                                    help="Print the version and exit.")] = None,
    verbose: Annotated[int, typer.Option("-v", "--verbose", count=True, help="More log output (-vv: debug).")] = 0,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks instead of one-line errors.")] = False,
) -> None:
    setup_logging(verbose, debug)


@app.command("sys-info")
def sys_info(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    plan: Annotated[Optional[str], typer.Option(
        "--plan", metavar="MODEL",
        help="Instead: estimate the GPU memory a model preset needs to train and sample (neuropictor).")] = None,
    batch_size: Annotated[Optional[int], typer.Option(
        "--batch-size", min=1, help="Batch size per GPU for --plan [default: 16].")] = None,
) -> None:
    """Versions, compute device, pycortex filestore and model cache locations; or a GPU memory plan."""
    import json

    from rich.table import Table

    if plan is not None:
        _show_plan(plan, batch_size, as_json)
        return
    if batch_size is not None:
        raise typer.BadParameter("only used with --plan", param_hint="--batch-size")

    from fmrikit.sysinfo import system_info

    info = system_info()
    if as_json:
        out_console.print_json(json.dumps(info, default=str))
    else:
        table = Table(show_header=False, box=None)
        for key, value in info.items():
            table.add_row(f"[bold]{key}[/]", str(value))
        out_console.print(table)
    if "pycortex_filestore_warning" in info:
        warning_line(info["pycortex_filestore_warning"])


def _show_plan(name: str, batch_size: Optional[int], as_json: bool) -> None:
    """Print :func:`fmrikit.pipelines.plans.make_plan` as a table or JSON."""
    import json

    from rich.markup import escape
    from rich.table import Table

    from fmrikit.pipelines.plans import make_plan

    result, rows = call(make_plan, name, batch_size)
    if as_json:
        out_console.print_json(json.dumps(result))
        return
    table = Table(title=f"{name} GPU memory plan (an estimate, not a measurement)", title_justify="left")
    for column in ("", "item", "value"):
        table.add_column(column, overflow="fold")
    previous = None
    for section, item, value in rows:
        table.add_row(f"[bold]{section}[/]" if section != previous else "", escape(item), escape(value))
        previous = section
    out_console.print(table)


app.command("simulate")(data.simulate)
app.command("preprocess")(data.preprocess)
app.add_typer(pretrain.app, name="pretrain")
app.command("roi-train")(troi.roi_train)
app.add_typer(adapt.app, name="adapt-subject")
app.command("encode")(encode.encode)
app.command("cluster-embeddings")(encode.cluster_embeddings)
app.command("reconstruct")(reconstruct.reconstruct)
app.add_typer(evaluate.app, name="evaluate")
app.command("report")(report.report)


def main() -> None:
    """Console-script entry point."""
    app(args=_rewrite_compare(sys.argv[1:]))


def _rewrite_compare(args: list[str]) -> list[str]:
    """Accept ``evaluate --compare A.json B.json`` as ``evaluate compare A.json B.json``."""
    if "evaluate" in args:
        i = args.index("evaluate")
        if args[i + 1:i + 2] == ["--compare"]:
            return args[:i + 1] + ["compare"] + args[i + 2:]
    return args


if __name__ == "__main__":
    main()
