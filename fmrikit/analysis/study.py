"""Run a study over world seeds x model seeds and write one table: mean +- sd and n per variant and
metric, and the differences between variants that exceed 2 standard errors.

A study is any command that, given the environment variables ``WORLD_SEED`` (the simulated world),
``SEED`` (the models), ``STUDY_RUN_DIR`` (a folder of its own) and ``STUDY_ROWS`` (a file to write),
writes its rows with :func:`write_rows`. :func:`run_study` runs it once per seed pair (its output goes
to ``<run dir>/run.log``), then :func:`aggregate` pairs the runs: a difference between a variant and
the one it is compared with (its ``versus``, else the study's reference) is their per-run
difference, averaged over the model seeds of each world, then over worlds; it is called only when it
exceeds twice its standard error (sd over worlds / sqrt(n worlds), n >= 2; with one world, over its
model seeds). Oracle rows (the same scorer on the ground truth) are listed beside the method rows
and are never compared.

Run as ``python -m fmrikit.cli.study run --world-seeds 0,1,2 --model-seeds 0,1 --out DIR --
COMMAND ...`` or ``python -m fmrikit.cli.study table DIR`` (re-aggregate finished runs).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fmrikit.errors import FmrikitError, InputError, MissingInputError
from fmrikit.io.provenance import write_json

ROWS_FILE = "rows.json"


class StudyRunError(FmrikitError):
    """One run of a study failed."""


@dataclass
class Row:
    """One variant's metrics in one run.

    Attributes
    ----------
    variant : str
    metrics : dict of str to float
        None or NaN for a metric the variant does not have.
    oracle : bool
        The scorer run on the ground truth (a ceiling), not a method.
    versus : str, optional
        Variant this one is compared with (default: the study's reference).
    """

    variant: str
    metrics: dict[str, float | None]
    oracle: bool = False
    versus: str | None = None


@dataclass
class Study:
    """Rows of one run, the variant differences are measured from, and display names of the metrics."""

    rows: list[Row]
    reference: str | None = None
    labels: dict[str, str] = field(default_factory=dict)


def write_rows(path: str | os.PathLike, rows: list[Row], *, reference: str | None = None,
               labels: dict[str, str] | None = None) -> Path:
    """Write one run's rows (``STUDY_ROWS``).

    Parameters
    ----------
    path : path-like
    rows : list of Row
    reference : str, optional
        Variant the others are compared with (default: the first method row).
    labels : dict of str to str, optional
        Column titles of the metrics.
    """
    names = [r.variant for r in rows]
    if len(set(names)) != len(names):
        raise InputError("variant names must be unique", found=", ".join(names))
    for name in [reference] + [r.versus for r in rows]:
        if name is not None and name not in names:
            raise InputError("compared variant not among the rows", expected=", ".join(names), found=name)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, {"rows": [asdict(r) for r in rows], "reference": reference, "labels": labels or {}})
    return path


def read_study(path: str | os.PathLike) -> Study:
    """One run's rows, as :func:`write_rows` wrote them."""
    path = Path(path)
    if not path.is_file():
        raise MissingInputError("a study run wrote no rows", path=path)
    doc = json.loads(path.read_text())
    return Study(rows=[Row(**r) for r in doc["rows"]], reference=doc.get("reference"), labels=doc.get("labels", {}))


def aggregate(runs: dict[str, Study]) -> dict[str, Any]:
    """Mean, sd and n per variant and metric over runs, and paired differences from the reference.

    Parameters
    ----------
    runs : dict of str to Study
        Run name (e.g. ``world-0_model-1``) to its rows.

    Returns
    -------
    dict
        ``runs``, ``reference``, ``metrics``, ``labels``, ``variants`` (name -> oracle flag, and per
        metric ``mean``, ``sd``, ``n``, ``values``) and ``differences`` (variant -> metric ->
        ``mean``, ``se``, ``n`` (worlds, or runs with one world), ``called``; and ``versus``, the
        variant it is compared with).
    """
    if not runs:
        raise InputError("no study runs to aggregate")
    variants: dict[str, bool] = {}
    versus: dict[str, str | None] = {}
    metrics: list[str] = []
    labels: dict[str, str] = {}
    for study in runs.values():
        for row in study.rows:
            variants.setdefault(row.variant, row.oracle)
            versus.setdefault(row.variant, row.versus)
            metrics += [m for m in row.metrics if m not in metrics]
        labels.update(study.labels)
    first = next(iter(runs.values()))
    reference = first.reference or next((v for v, oracle in variants.items() if not oracle), None)
    value = {(name, r.variant, m): _number(r.metrics.get(m)) for name, s in runs.items() for r in s.rows
             for m in metrics}
    table: dict[str, Any] = {"runs": list(runs), "reference": reference, "metrics": metrics,
                             "labels": {m: labels.get(m, m) for m in metrics}, "variants": {}, "differences": {}}
    for variant, oracle in variants.items():
        entry: dict[str, Any] = {"oracle": oracle}
        for m in metrics:
            vals = [value[(run, variant, m)] for run in runs if (run, variant, m) in value]
            vals = [v for v in vals if v is not None]
            entry[m] = _summary(vals)
        table["variants"][variant] = entry
        other = versus[variant] or reference
        if oracle or other is None or other == variant:
            continue
        diffs: dict[str, Any] = {"versus": other}
        for m in metrics:
            by_world: dict[str, list[float]] = {}
            for run in runs:
                a, b = value.get((run, variant, m)), value.get((run, other, m))
                if a is not None and b is not None:
                    by_world.setdefault(run.split("_model-")[0], []).append(a - b)
            d = [float(np.mean(v)) for v in by_world.values()] if len(by_world) > 1 else \
                [x for v in by_world.values() for x in v]
            n = len(d)
            se = float(np.std(d, ddof=1) / math.sqrt(n)) if n >= 2 else None
            mean = float(np.mean(d)) if n else None
            diffs[m] = {"mean": mean, "se": se, "n": n, "called": bool(se is not None and abs(mean) > 2 * se)}
        table["differences"][variant] = diffs
    return table


def markdown(table: dict[str, Any]) -> str:
    """The aggregated table as markdown: values, then the differences from the reference."""
    metrics, labels = table["metrics"], table["labels"]
    n_runs = len(table["runs"])
    lines = [f"{n_runs} run(s): {', '.join(table['runs'])}. Values: mean ± sd over runs (n = runs).", "",
             "| variant | " + " | ".join(labels[m] for m in metrics) + " |",
             "|---|" + "---|" * len(metrics)]
    for oracle in (False, True):
        for variant, entry in table["variants"].items():
            if entry["oracle"] == oracle:
                name = f"oracle: {variant}" if oracle else variant
                lines.append(f"| {name} | " + " | ".join(_cell(entry[m]) for m in metrics) + " |")
    if table["differences"]:
        lines += ["", "Differences (paired per run, averaged within each world; mean ± standard error over worlds, "
                      "or over runs with one world; * beyond 2 standard errors):", "",
                  "| variant | versus | " + " | ".join(labels[m] for m in metrics) + " |",
                  "|---|---|" + "---|" * len(metrics)]
        for variant, diffs in table["differences"].items():
            if any(diffs[m]["n"] for m in metrics):  # a variant with no metric in common says nothing
                lines.append(f"| {variant} | {diffs['versus']} | "
                             + " | ".join(_diff_cell(diffs[m]) for m in metrics) + " |")
    return "\n".join(lines) + "\n"


def collect(out: str | os.PathLike, names: list[str] | None = None) -> dict[str, Any]:
    """Aggregate the runs under ``out`` (folders with a ``rows.json``) and write ``table.md`` and
    ``table.json`` there.

    Parameters
    ----------
    out : path-like
    names : list of str, optional
        Run folders to use (default: every one that has rows).
    """
    out = Path(out)
    names = names if names is not None else sorted(p.parent.name for p in out.glob(f"*/{ROWS_FILE}"))
    table = aggregate({name: read_study(out / name / ROWS_FILE) for name in names})
    for name, text in (("table.md", markdown(table)), ("table.json", json.dumps(table, indent=2) + "\n")):
        (out / f".{name}.part").write_text(text)
        os.replace(out / f".{name}.part", out / name)
    return table


def run_study(command: list[str], world_seeds: list[int], model_seeds: list[int], out: str | os.PathLike,
              env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run ``command`` once per (world seed, model seed) and aggregate the runs.

    Parameters
    ----------
    command : list of str
        The study, e.g. ``["bash", "examples/troi_ablation.sh"]``.
    world_seeds, model_seeds : list of int
    out : path-like
        Receives ``world-W_model-M/`` per run (``rows.json``, ``run.log``), ``table.md`` and ``table.json``.
    env : dict, optional
        Extra environment variables.

    Raises
    ------
    StudyRunError
        A run exited non-zero (its log is named).
    """
    if not command or not world_seeds or not model_seeds:
        raise InputError("a study needs a command and at least one world seed and one model seed")
    out = Path(out)
    names = []
    for world in world_seeds:
        for model in model_seeds:
            name = f"world-{world}_model-{model}"
            run_dir = (out / name).resolve()
            run_dir.mkdir(parents=True, exist_ok=True)
            (run_dir / ROWS_FILE).unlink(missing_ok=True)
            variables = {**os.environ, **(env or {}), "WORLD_SEED": str(world), "SEED": str(model),
                         "STUDY_RUN_DIR": str(run_dir), "STUDY_ROWS": str(run_dir / ROWS_FILE)}
            with open(run_dir / "run.log", "w") as log:
                code = subprocess.run(command, env=variables, stdout=log, stderr=subprocess.STDOUT).returncode
            if code != 0:
                raise StudyRunError(f"study run failed with exit status {code}", path=run_dir / "run.log")
            names.append(name)
    return collect(out, names)


def _number(v) -> float | None:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)


def _summary(vals: list[float]) -> dict[str, Any]:
    """Mean, sd (None below 2 values) and n of a metric's values."""
    n = len(vals)
    return {"mean": float(np.mean(vals)) if n else None, "sd": float(np.std(vals, ddof=1)) if n >= 2 else None,
            "n": n, "values": vals}


def _fmt(v: float) -> str:
    return f"{v:.0f}" if abs(v) >= 100 or (abs(v) >= 10 and float(v).is_integer()) else f"{v:.3f}"


def _cell(s: dict[str, Any]) -> str:
    if not s["n"]:
        return "-"
    return _fmt(s["mean"]) + ("" if s["sd"] is None else f" ± {_fmt(s['sd'])}") + f" (n={s['n']})"


def _diff_cell(d: dict[str, Any]) -> str:
    if not d["n"]:
        return "-"
    text = f"{d['mean']:+.3f}" + ("" if d["se"] is None else f" ± {d['se']:.3f}")
    return text + (" *" if d["called"] else "")

