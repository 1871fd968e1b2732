"""Evaluation reports: ``results.json`` (stable schema), a markdown table, figures, comparisons.

``results.json`` schema (``fmrikit.evaluate/1``)::

    {"schema": "fmrikit.evaluate/1", "kind": "recon" | "retrieval" | "encoding" | "mask" | "labels",
     "preset": str | null, "protocol": {every choice}, "n": int,
     "metrics": {name: {"label", "value" (null if skipped), "status": "ok" | "skipped", "reason",
                        "chance", "higher_is_better", "n"}},
     "details": {...}, "provenance": {run_id, created, argv, versions, inputs}}
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

from fmrikit.errors import CorruptFileError, MissingInputError
from fmrikit.io.atomic import staged_dir
from fmrikit.io.provenance import provenance_record, write_json

SCHEMA = "fmrikit.evaluate/1"


@dataclass
class Metric:
    """One reported number, or the reason it was not computed."""

    label: str
    value: float | None = None
    status: str = "ok"
    reason: str = ""
    chance: float | None = None
    higher_is_better: bool = True
    n: int | None = None

    @classmethod
    def skipped(cls, label: str, reason: str, **kwargs) -> "Metric":
        return cls(label=label, status="skipped", reason=reason, **kwargs)


def write_report(out_dir: str | os.PathLike, *, kind: str, preset: str | None, protocol: dict[str, Any],
                 n: int, metrics: dict[str, Metric], details: dict[str, Any], inputs: list[dict],
                 figure: Callable[[Path], None] | None = None, extra_files: dict[str, Callable[[Path], None]] | None = None,
                 overwrite: bool = False) -> dict[str, Any]:
    """Write the folder ``out_dir`` of ``results.json``, ``results.md`` and ``figure.png`` (plus extra files), an
    output of kind ``evaluate <kind>``.

    Parameters
    ----------
    out_dir : path-like
    kind, preset, protocol, n, metrics, details
        The results (see the module docstring).
    inputs : list of dict
        Input files with checksums.
    figure : callable, optional
        ``figure(path)`` draws the PNG.
    extra_files : dict, optional
        ``{file name: writer(path)}`` for further outputs (a flatmap, a NIfTI).
    overwrite : bool

    Returns
    -------
    dict
        The content of ``results.json``.
    """
    names = ["results.json", "results.md"] + (["figure.png"] if figure else []) + list(extra_files or {})
    with staged_dir(out_dir, overwrite=overwrite, kind=f"evaluate {kind}") as stage:
        tmp = {n: stage / n for n in names}
        record = {"schema": SCHEMA, "kind": kind, "preset": preset, "protocol": protocol, "n": n,
                  "metrics": {k: asdict(m) for k, m in metrics.items()}, "details": details,
                  "outputs": names, "provenance": provenance_record(inputs)}
        write_json(tmp["results.json"], record)
        tmp["results.md"].write_text(markdown_table(record) + "\n")
        if figure:
            figure(tmp["figure.png"])
        for name, writer in (extra_files or {}).items():
            writer(tmp[name])
    return record


def markdown_table(record: dict[str, Any]) -> str:
    """The metrics of one results record as a markdown table."""
    lines = [f"# fmrikit evaluate {record['kind']}" + (f" (preset {record['preset']})" if record.get("preset") else ""),
             "", f"n = {record['n']}", "", "| metric | value | chance | better | note |", "|---|---|---|---|---|"]
    for m in record["metrics"].values():
        value = "skipped" if m["status"] != "ok" else format_value(m["value"])
        chance = "" if m["chance"] is None else format_value(m["chance"])
        lines.append(f"| {m['label']} | {value} | {chance} | {'higher' if m['higher_is_better'] else 'lower'} | "
                     f"{m['reason']} |")
    return "\n".join(lines)


def load_results(path: str | os.PathLike) -> dict[str, Any]:
    """Read a ``results.json`` written by :func:`write_report`."""
    path = Path(path)
    if not path.is_file():
        raise MissingInputError("results file not found", path=path, expected="results.json")
    try:
        record = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CorruptFileError("not valid JSON", path=path, found=str(exc)) from exc
    schema = record.get("schema") if isinstance(record, dict) else f"a JSON {type(record).__name__}"
    if schema != SCHEMA or not {"kind", "n"} <= set(record) or not isinstance(record.get("metrics"), dict) or \
            not all(isinstance(m, dict) and {"label", "status", "value"} <= set(m) for m in record["metrics"].values()):
        raise CorruptFileError("not an fmrikit results file", path=path, expected=SCHEMA + " with its metrics",
                               found=str(schema))
    return record


def compare_rows(records: list[dict[str, Any]]) -> list[list[str]]:
    """Side-by-side rows (metric label, value per record) over the union of metrics, in first-seen order."""
    order: dict[str, str] = {}
    for r in records:
        for key, m in r["metrics"].items():
            order.setdefault(key, m["label"])
    rows = []
    for key, label in order.items():
        row = [label]
        for r in records:
            m = r["metrics"].get(key)
            row.append("-" if m is None else "skipped" if m["status"] != "ok" else format_value(m["value"]))
        rows.append(row)
    return rows


def format_value(v: float) -> str:
    return f"{v:.4f}" if abs(v) < 10 else f"{v:.2f}"
