"""The package's imports run one way: corpus -> builder -> file <- targets <- torch (see the
code map in ngramds/__init__.py). Read from the source with ast, so it stays so."""
import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "ngramds"

# layer -> layers it may import (besides itself); "base" is errors, progress, hashing, shuffle,
# prefetch, validation, version
ALLOWED = {
    "base": set(),
    "file": {"base"},
    "corpus": {"base", "file"},
    "builder": {"base", "file", "corpus"},
    "targets": {"base", "file"},
    "torch": {"base", "file", "targets"},
    "top": {"base", "file", "corpus", "builder", "targets", "torch"},
}
BASE = {"errors", "progress", "hashing", "shuffle", "prefetch", "validation", "version"}
TOP = {"__init__", "cli", "hf", "train"}  # train: the ngramds-train tool


def layer(module: str) -> str:
    """Layer of a module name relative to the package ("file.reader" -> "file")."""
    head = module.split(".")[0]
    if head in BASE:
        return "base"
    if head in TOP:
        return "top"
    return head


def imports(root: Path) -> dict[str, set[str]]:
    """Package-internal imports of every module under ``root``: {"a.b": {"c.d", ...}}."""
    graph = {}
    for path in root.rglob("*.py"):
        rel = path.relative_to(root).with_suffix("")
        parts = list(rel.parts)
        is_pkg = parts[-1] == "__init__"
        name = ".".join(parts[:-1] if is_pkg else parts) or "__init__"
        here = parts[:-1]  # the package the module is in
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = here[:len(here) - (node.level - 1)] if node.level > 1 else here
                mod = ".".join([*base, *(node.module.split(".") if node.module else [])])
                for alias in node.names:
                    sub = f"{mod}.{alias.name}" if mod else alias.name
                    # "from . import x" names a module when x is one; else the module itself
                    targets.add(sub if _exists(root, sub) else mod)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) \
                    else [node.module or ""]
                for n in names:
                    if n.startswith(root.name + "."):
                        targets.add(n[len(root.name) + 1:])
        graph[name] = {t for t in targets if t and t != name}
    return graph


def _exists(root: Path, module: str) -> bool:
    p = root.joinpath(*module.split("."))
    return p.with_suffix(".py").exists() or (p / "__init__.py").exists()


def problems(root: Path) -> list[str]:
    """Upward imports and import cycles among the modules under ``root``."""
    graph = imports(root)
    found = []
    for mod, deps in sorted(graph.items()):
        for dep in sorted(deps):
            a, b = layer(mod), layer(dep)
            if a != b and b not in ALLOWED.get(a, set()):
                found.append(f"{mod} ({a}) imports {dep} ({b}): upward or sideways")
    # cycles: a depth-first search over modules (a package's __init__ counts as the package)
    state = {}

    def visit(m, stack):
        state[m] = 1
        for d in sorted(graph.get(m, ())):
            if d not in graph:
                continue
            if state.get(d) == 1:
                found.append("cycle: " + " -> ".join(stack[stack.index(d):] + [d]))
            elif d not in state:
                visit(d, stack + [d])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    return found


def test_the_package_has_no_upward_import_and_no_cycle():
    assert problems(PACKAGE) == []


def test_every_module_belongs_to_a_known_layer():
    assert {layer(m) for m in imports(PACKAGE)} <= set(ALLOWED)


@pytest.mark.parametrize("plant", ["cycle", "upward"])
def test_the_check_sees_a_planted_cycle_or_upward_import(tmp_path, plant):
    root = tmp_path / "ngramds"
    for pkg in ("file", "targets"):
        (root / pkg).mkdir(parents=True)
        (root / pkg / "__init__.py").write_text("")
    (root / "__init__.py").write_text("")
    (root / "file" / "reader.py").write_text("from .format import MAGIC\n")
    if plant == "cycle":
        (root / "file" / "format.py").write_text("from . import reader\nMAGIC = 1\n")
    else:
        (root / "file" / "format.py").write_text("from ..targets import kernels\nMAGIC = 1\n")
    (root / "targets" / "kernels.py").write_text("import numpy\n")
    found = problems(root)
    assert len(found) == 1 and ("cycle" in found[0]) == (plant == "cycle"), found


def test_every_package_directory_is_a_regular_package():
    """A directory without __init__.py is left out of a built wheel (setuptools' find)."""
    dirs = [d for d in PACKAGE.rglob("*") if d.is_dir() and d.name != "__pycache__"]
    assert [d for d in dirs if not (d / "__init__.py").exists()] == []
