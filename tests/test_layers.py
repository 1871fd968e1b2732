"""The package's architecture as a test: file-level imports only run down the layers, and none forms a circle.

Layers, top to bottom: ``cli`` -> ``pipelines`` / ``report`` -> ``methods`` -> ``analysis`` (the metrics every method scores
itself with) -> ``engine`` / ``features`` / ``diffusion`` -> ``data`` -> ``viz`` -> ``io``; the top-level helpers
(``errors``, ``project``, ``checks``...) sit beside every layer. ``analysis`` (the judges) imports no method, and no
method imports another method's files except the MindEye2 decoder that TROI builds on.
"""

import ast
from pathlib import Path

import fmrikit

PACKAGE = Path(fmrikit.__file__).parent

#: Top-level part of the package -> its layer (higher imports lower only).
LAYERS = {"cli": 8, "pipelines": 7, "report": 7, "methods": 6, "analysis": 5, "engine": 4, "features": 4, "diffusion": 4,
          "data": 3, "viz": 2, "io": 1}
#: Method folders another method may import.
METHOD_BASES = {"troi": {"mindeye"}}


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Module -> the fmrikit modules (files, not package ``__init__``s) it imports, anywhere in the file."""
    files = {_module(p): p for p in PACKAGE.rglob("*.py")}
    edges: dict[str, set[str]] = {}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")
                    base = ".".join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
                names = [f"{base}.{a.name}" for a in node.names] + [base]
            else:
                continue
            for target in names:
                while target and target not in files:
                    target = target.rpartition(".")[0]
                if target and target != name and files[target].name != "__init__.py":
                    targets.add(target)
        edges[name] = targets
    return edges


def _part(module: str) -> str:
    """The top-level part of the package a module is in (``top`` for the top-level helper modules)."""
    part = module.split(".")[1] if "." in module else "top"
    return part if part in LAYERS else "top"


def test_no_import_circle():
    edges = import_graph()
    index, low, stack, on_stack, circles = {}, {}, [], set(), []

    def visit(v):  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for v in edges:
        if v not in index:
            visit(v)
    assert circles == []


def test_imports_only_run_down_the_layers():
    bad = []
    for module, targets in import_graph().items():
        src = _part(module)
        for target in targets:
            dst = _part(target)
            if src == "top" or dst == "top" or src == dst:
                continue
            if LAYERS[dst] >= LAYERS[src]:
                bad.append(f"{module} -> {target}")
    assert bad == []


def test_analysis_imports_no_method_and_methods_stay_apart():
    bad = []
    for module, targets in import_graph().items():
        for target in targets:
            if module.startswith("fmrikit.analysis") and target.startswith("fmrikit.methods"):
                bad.append(f"{module} -> {target}")
            if module.startswith("fmrikit.methods.") and target.startswith("fmrikit.methods."):
                src, dst = module.split(".")[2], target.split(".")[2]
                if src != dst and dst not in METHOD_BASES.get(src, set()):
                    bad.append(f"{module} -> {target}")
    assert bad == []


def test_the_scan_sees_real_edges():
    edges = import_graph()
    assert "fmrikit.methods.mindeye.model" in edges["fmrikit.methods.troi.stages"] or \
        "fmrikit.methods.mindeye.adapt" in edges["fmrikit.methods.troi.stages"]
    assert "fmrikit.io.atomic" in edges["fmrikit.engine.checkpoint"]
