"""The package's structure holds: areas import only the areas below them, no import circle, few top-level modules,
no module over 300 lines (docs/ARCHITECTURE.md, "Package")."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "openrs"
# Bottom to top; an area may import only areas on an earlier line (areas on one line do not import each other).
LAYERS = (
    ("errors",),
    ("procpool",),
    ("rewards",),
    ("config",),
    ("data", "records"),
    ("models", "cli"),
    ("training",),
    ("runtime",),
    ("evaluate",),
    ("gpu_check",),
    ("train", "compare", "warmstart", "__init__"),
)
RANK = {area: i for i, areas in enumerate(LAYERS) for area in areas}
MAX_LINES = 300
MAX_TOP_LEVEL = 10


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def area(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def imported_modules(path: Path) -> set[str]:
    """Every openrs module this file imports, at the top or inside a function (TYPE_CHECKING included)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("openrs")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("openrs"):
            for alias in node.names:  # `from openrs.x import y` may import the module openrs.x.y
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in MODULES else node.module)
    return found


FILES = sorted(PACKAGE.rglob("*.py"))
MODULES = {module_name(p): p for p in FILES}
GRAPH = {name: {m for m in imported_modules(p) if m in MODULES and m != name} for name, p in MODULES.items()}


def test_every_area_has_a_place_in_the_layers():
    assert {area(m) for m in MODULES} <= set(RANK), {area(m) for m in MODULES} - set(RANK)


def test_areas_import_only_the_areas_below_them():
    upward = sorted(
        f"{src} -> {dst}"
        for src, targets in GRAPH.items()
        for dst in targets
        if area(src) != area(dst) and RANK[area(dst)] >= RANK[area(src)]
    )
    assert upward == [], "imports that run up (or sideways) through the layers:\n" + "\n".join(upward)


def test_no_import_circle():
    """Tarjan's strongly connected components over the module graph: every one must be a single module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for v in GRAPH:
        if v not in index:
            visit(v)
    assert circles == []


def test_few_top_level_modules_and_none_too_long():
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top) <= MAX_TOP_LEVEL, top
    long = {module_name(p): n for p in FILES if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}, f"modules over {MAX_LINES} lines: {long}"
