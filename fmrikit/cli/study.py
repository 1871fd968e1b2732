"""``python -m fmrikit.cli.study``: run a study over world x model seeds, or re-aggregate its runs (the command
line of :mod:`fmrikit.analysis.study`)."""

from __future__ import annotations

import argparse
import sys

from fmrikit.analysis.study import collect, markdown, run_study
from fmrikit.errors import FmrikitError, InputError


def main(argv: list[str] | None = None) -> int:
    """``python -m fmrikit.cli.study``: run a study over seeds, or re-aggregate its runs; prints the table."""
    parser = argparse.ArgumentParser(prog="python -m fmrikit.cli.study", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="action", required=True)
    run = sub.add_parser("run", help="run COMMAND per world seed x model seed, then aggregate")
    run.add_argument("--world-seeds", default="0", help="e.g. 0,1,2")
    run.add_argument("--model-seeds", default="0", help="e.g. 0,1")
    run.add_argument("--out", required=True)
    run.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND ...")
    table = sub.add_parser("table", help="aggregate the finished runs of a study folder")
    table.add_argument("out")
    args = parser.parse_args(argv)
    try:
        if args.action == "run":
            command = args.command[1:] if args.command[:1] == ["--"] else args.command
            result = run_study(command, _ints(args.world_seeds), _ints(args.model_seeds), args.out)
        else:
            result = collect(args.out)
    except FmrikitError as exc:
        print(f"error: {exc.one_line()}", file=sys.stderr)
        return 2
    print(markdown(result), end="")
    return 0


def _ints(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError as exc:
        raise InputError("seeds must be a comma-separated list of integers", found=text) from exc


if __name__ == "__main__":
    sys.exit(main())
