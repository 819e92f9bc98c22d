"""The package's layers, read from the source (nothing is imported): every import points down, none
is circular, and no module re-exports another lazily. The same picture is in docs/DEVELOPING.md.

A module may import from a lower layer and from its own package; two packages on the same floor
never import each other (``data`` and ``viz``; ``studies``, ``runs`` and ``bench``).
"""
import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "hetskel"

# floor -> top-level parts of hetskel on it, bottom first (hetskel/__init__.py, the public API, is above all)
FLOORS = [
    ("foundation", {"layouts", "io", "config"}),
    ("data and figures", {"data", "viz"}),
    ("optimisation", {"train"}),
    ("model", {"model"}),
    ("heterogeneous processing", {"hetero"}),
    ("evaluation", {"eval"}),
    ("experiment", {"experiment"}),
    ("applications", {"studies", "runs", "bench"}),
    ("benchmark over any dataset", {"benchmark"}),
]
FLOOR_OF = {part: i for i, (_, parts) in enumerate(FLOORS) for part in parts}


def modules() -> dict[str, Path]:
    out = {}
    for p in PKG.rglob("*.py"):
        name = ".".join(p.relative_to(ROOT).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = p
    return out


def imports_of(name: str, path: Path, known: dict) -> set[str]:
    """hetskel modules imported anywhere in the file (top level or inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")[: (None if path.name == "__init__.py" else -1)]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            cands = [target] + [f"{target}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            cands = [a.name for a in node.names]
        else:
            continue
        for c in cands:
            if c in known and c != name and not name.startswith(c + "."):
                found.add(c)
    return found


def part_of(module: str) -> str:
    return module.split(".")[1] if module.count(".") else ""


@pytest.fixture(scope="module")
def graph():
    mods = modules()
    return {m: imports_of(m, p, mods) for m, p in mods.items()}


def test_every_part_of_the_package_has_a_floor():
    parts = {p.stem if p.is_file() else p.name for p in PKG.iterdir()
             if (p.suffix == ".py" and p.name != "__init__.py") or (p / "__init__.py").exists()}
    assert parts == set(FLOOR_OF), f"give these a floor in FLOORS (and docs/DEVELOPING.md): {parts ^ set(FLOOR_OF)}"


def test_imports_only_point_down(graph):
    upward = []
    for src, targets in graph.items():
        if src == "hetskel":  # the public API lists names from every floor
            continue
        for dst in targets:
            a, b = part_of(src), part_of(dst)
            if a == b:
                continue
            if dst == "hetskel" or FLOOR_OF[b] >= FLOOR_OF[a]:
                upward.append(f"{src} -> {dst}")
    assert not upward, "imports that point up or sideways:\n" + "\n".join(sorted(upward))


def test_no_import_cycles(graph):
    index, low, stack, on, cycles = {}, {}, [], set(), []

    def visit(v):  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    assert not cycles, cycles


def test_no_lazy_reexports():
    """Only the package root may load names on first use (PEP 562); a module's names are its own."""
    shims = []
    for name, path in modules().items():
        if name == "hetskel":
            continue
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef) and node.name == "__getattr__":
                shims.append(str(path.relative_to(ROOT)))
    assert not shims, shims


def test_developing_md_draws_the_same_floors():
    text = (ROOT / "docs" / "DEVELOPING.md").read_text()
    picture = re.search(r"<!-- layers -->\n```\n(.*?)```", text, re.S)
    assert picture, "docs/DEVELOPING.md lost its layers picture (between <!-- layers --> and a ``` block)"
    drawn = [set(re.findall(r"hetskel/(\w+)", line)) for line in picture.group(1).splitlines()]
    drawn = [parts for parts in drawn if parts]
    assert drawn == [parts for _, parts in reversed(FLOORS)]


def test_public_api_resolves_and_import_stays_light():
    import subprocess
    import sys

    code = ("import sys, hetskel; assert 'torch' not in sys.modules and 'open_clip' not in sys.modules; "
            "[getattr(hetskel, n) for n in hetskel.__all__]; print(len(hetskel.__all__))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    import hetskel

    for name in hetskel.__all__:
        obj = getattr(hetskel, name)
        assert getattr(obj, "__name__", name) == name and obj.__module__.startswith("hetskel."), name
