"""The HTML page of ``fmrikit report``: one file, its pictures in ``report_files/`` beside it, no server, no network."""

from __future__ import annotations

import html
import shutil
from pathlib import Path
from typing import Any

from fmrikit.report.inventory import Inventory, Output, result_name

STYLE = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 0; color: #1d1d1f; }
nav { position: sticky; top: 0; background: #20344d; padding: 8px 16px; z-index: 2; }
nav a { color: #fff; margin-right: 16px; text-decoration: none; font-size: 14px; }
nav a:hover { text-decoration: underline; }
main { padding: 8px 24px 48px; max-width: 1400px; }
h1 { font-size: 24px; } h2 { border-bottom: 2px solid #20344d; padding-bottom: 4px; margin-top: 36px; }
h3 { margin: 20px 0 6px; font-size: 16px; } .where { color: #666; font-size: 12px; word-break: break-all; }
table { border-collapse: collapse; margin: 6px 0 12px; font-size: 13px; }
td, th { border: 1px solid #ccd; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #eef1f6; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.figures { display: flex; flex-wrap: wrap; gap: 12px; }
figure { margin: 0; } figure img { max-width: 560px; border: 1px solid #dde; }
figcaption { font-size: 13px; color: #333; max-width: 560px; }
section { scroll-margin-top: 40px; }
.card { border: 1px solid #dde; border-radius: 6px; padding: 6px 14px 10px; margin: 10px 0; background: #fcfcfe; }
.missing { color: #8a5a00; }
.cards { display: flex; flex-wrap: wrap; gap: 10px; } .cards > .card { flex: 1 1 560px; margin: 0; }
"""

SECTIONS = [("project", "Project"), ("subjects", "Subjects"), ("models", "Models"),
            ("reconstructions", "Reconstructions"), ("encoder", "Encoder"), ("evaluations", "Evaluations")]


class Assets:
    """Copies the pictures the page shows into ``report_files/`` under unique names."""

    def __init__(self, folder: Path, root: Path):
        self.folder, self.root, self.names = folder, root, {}

    def add(self, path: Path) -> str:
        """The page's relative link to a copy of ``path``."""
        key = Path(path).resolve()
        if key.parent == self.folder.resolve():  # drawn for the page
            return f"{self.folder.name}/{key.name}"
        if key not in self.names:
            try:
                rel = key.relative_to(self.root.resolve())
                name = "__".join(rel.parts)
            except ValueError:
                name = f"extra{len(self.names):03d}__{key.name}"
            self.folder.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(key, self.folder / name)
            self.names[key] = name
        return f"{self.folder.name}/{self.names[key]}"


def _e(text: Any) -> str:
    return html.escape(str(text))


def _table(rows: list[tuple[str, str]], header: tuple[str, str] | None = None) -> str:
    if not rows:
        return ""
    head = f"<tr><th>{_e(header[0])}</th><th>{_e(header[1])}</th></tr>" if header else ""
    body = "".join(f"<tr><td>{_e(a)}</td><td class='num'>{_e(b)}</td></tr>" for a, b in rows)
    return f"<table>{head}{body}</table>"


def _grid(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td{' class=num' if i else ''}>{_e(c)}</td>" for i, c in enumerate(r)) + "</tr>"
                   for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _figures(images: list[tuple[Path, str]], assets: Assets) -> str:
    if not images:
        return ""
    items = "".join(f"<figure><img src='{assets.add(path)}' alt='{_e(caption)}'><figcaption>{_e(caption)}"
                    f"</figcaption></figure>" for path, caption in images if Path(path).is_file())
    return f"<div class='figures'>{items}</div>"


def _card(item: Output, assets: Assets, curves: dict[Path, Path]) -> str:
    images = list(item.images)
    if item.log is not None and item.log in curves and all(curves[item.log] != p for p, _ in images):
        images.append((curves[item.log], "training curves"))
    where = f"<div class='where'>{_e(item.path)}</div>"
    params = item.sidecar.get("parameters") if isinstance(item.sidecar.get("parameters"), dict) else None
    details = ""
    if params:
        flat = [(k, v if not isinstance(v, (dict, list)) else _compact(v)) for k, v in params.items()]
        details = f"<details><summary>parameters</summary>{_table([(k, str(v)) for k, v in flat])}</details>"
    return f"<div class='card'><h3>{_e(item.title)}</h3>{where}{_table(item.numbers)}{_figures(images, assets)}" \
           f"{details}</div>"


def _compact(value: Any) -> str:
    import json

    text = json.dumps(value, default=str)
    return text if len(text) < 200 else text[:197] + "..."


def project_rows(inv: Inventory) -> list[tuple[str, str]]:
    """The project section's table: version, data source, subjects, sessions, betas, normalisation, test set."""
    import json

    datasets = inv.of("dataset")
    params = [d.sidecar.get("parameters", {}) for d in datasets]
    versions = {d.sidecar.get("versions", {}).get("fmrikit") for d in datasets} - {None}
    sources = sorted({str(p.get("nsd_root") or p.get("trials") or "?") for p in params})
    simulated = []
    for src in sources:
        marker = Path(src) / "fmrikit_simulation.json"
        if marker.is_file():
            world = json.loads(marker.read_text())
            simulated.append(f"{src}: simulated world {world.get('world_version', world.get('version', ''))}".strip())
        elif (Path(src) / "simulation_truth.h5").is_file():
            simulated.append(f"{src}: simulated world")
    rows = [("fmrikit", ", ".join(sorted(versions)) or str(inv.description.get("GeneratedBy", [{}])[0].get("Version"))),
            ("project folder", str(inv.root)),
            ("data source", "; ".join(simulated) or "; ".join(sources) or "none yet"),
            ("subjects", ", ".join(inv.subjects) or "none yet")]
    if datasets:
        rows += [("sessions", "; ".join(f"{d.subject} {d.sidecar.get('parameters', {}).get('sessions')}"
                                        for d in datasets if "roi-" not in d.path.name)),
                 ("beta version", ", ".join(sorted({str(p.get("betas")) for p in params}))),
                 ("normalisation", ", ".join(sorted({"z-score per session, statistics from non-shared trials"
                                                     if p.get("zscore_exclude_shared") else
                                                     "z-score per session over all its trials" for p in params}))),
                 ("test images (shared trials / 3 repeats)", "; ".join(
                     f"{d.subject} {d.sidecar.get('n_test_images', (d.sidecar.get('n_shared_trials') or 0) // 3)}"
                     for d in datasets if "roi-" not in d.path.name))]
    return rows


def _section(key: str, body: str) -> str:
    return f"<section id='{key}'>{body}</section>"


def render(inv: Inventory, assets: Assets, curves: dict[Path, Path], steps: list[str]) -> str:
    """The whole page as HTML text (the pictures are copied by ``assets`` while rendering)."""
    from fmrikit._version import __version__
    from fmrikit.analysis.results import compare_rows

    parts = [f"<h1>fmrikit report</h1><div class='where'>{_e(inv.root)} &middot; fmrikit {__version__}</div>"]
    project = "<h2>Project</h2>" + _table(project_rows(inv))
    if steps:
        project += "<h3>Next steps</h3><ul>" + "".join(f"<li class='missing'>{_e(s)}</li>" for s in steps) + "</ul>"
    parts.append(_section("project", project))
    present = {"project"}
    sub_html = []
    for subject in inv.subjects:
        items = [o for o in inv.outputs if o.subject == subject and o.kind in ("dataset", "selection", "subject-model",
                                                                              "model")]
        if items:
            sub_html.append(f"<h3 id='{subject}'>{subject}</h3>" + "".join(_card(o, assets, curves) for o in items))
    if sub_html:
        present.add("subjects")
        parts.append(_section("subjects", "<h2>Subjects</h2>" + "".join(sub_html)))
    models = [o for o in inv.of("model") if o.subject is None]
    if models:
        present.add("models")
        parts.append(_section("models", "<h2>Models</h2>" + "".join(_card(o, assets, curves) for o in models)))
    recon = inv.of("reconstruction")
    if recon:
        present.add("reconstructions")
        linked = {id(e) for o in recon for e in o.linked}
        evals = [e for e in inv.of("evaluation") if e.sidecar.get("kind") == "recon" and id(e) not in linked]
        parts.append(_section("reconstructions", "<h2>Reconstructions</h2>"
                              + "".join(_card(o, assets, curves) for o in recon)
                              + "".join(_card(e, assets, curves) for e in evals)))
    encoder = inv.of("encoding") + inv.of("clusters")
    if encoder:
        present.add("encoder")
        parts.append(_section("encoder", "<h2>Encoder</h2>" + "".join(_card(o, assets, curves) for o in encoder)))
    evaluations = inv.of("evaluation")
    if evaluations:
        present.add("evaluations")
        block = ["<h2>Evaluations</h2>"]
        for kind in sorted({e.sidecar["kind"] for e in evaluations}):
            like = [e for e in evaluations if e.sidecar["kind"] == kind]
            if len(like) > 1:
                header = ["metric"] + [result_name(e.path) for e in like]
                block.append(f"<h3>{_e(kind)}: side by side</h3>" + _grid(header, compare_rows([e.sidecar for e in like])))
            block.append("<div class='cards'>" + "".join(_card(e, assets, curves) for e in like) + "</div>")
        parts.append(_section("evaluations", "".join(block)))
    nav = "".join(f"<a href='#{key}'>{label}</a>" for key, label in SECTIONS if key in present)
    nav += "".join(f"<a href='#{s}'>{s}</a>" for s in inv.subjects if "subjects" in present)
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>fmrikit report: {_e(inv.root.name)}"
            f"</title><style>{STYLE}</style></head><body><nav>{nav}</nav><main>{''.join(parts)}</main></body></html>\n")
