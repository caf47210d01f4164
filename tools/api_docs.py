"""Write the API reference of ngramds's public modules (HTML, from the docstrings) with pdoc.

    python tools/api_docs.py                # -> build/api/index.html
    python tools/api_docs.py -o some/dir    # elsewhere
    python tools/api_docs.py --check        # only check the public docstrings' style

Needs pdoc (in the `dev` extra). The public modules are those a user imports: ``ngramds``
(its ``__all__``), ``ngramds.torch``, ``ngramds.hf`` (when transformers is installed) and
``ngramds.errors``. Docstrings are read as Google style (``Args:`` / ``Returns:`` /
``Raises:``); ``--check`` (also run by tests/test_docs.py) fails when a public function or
class does not document each of its parameters under ``Args:``.
"""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import inspect
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODULES = ["ngramds", "ngramds.torch", "ngramds.hf", "ngramds.errors"]
SECTIONS = ("Args:", "Returns:", "Yields:", "Raises:", "Attributes:", "Example:", "Examples:")


def public_modules() -> list[str]:
    """The public modules importable here (``ngramds.hf`` needs transformers, ``ngramds.torch``
    torch)."""
    need = {"ngramds.torch": "torch", "ngramds.hf": "transformers"}
    return [m for m in MODULES if m not in need or importlib.util.find_spec(need[m])]


def public_callables() -> list[tuple[str, object]]:
    """(qualified name, object) of every public function and class of the public modules."""
    out = []
    for name in public_modules():
        module = importlib.import_module(name)
        for attr in getattr(module, "__all__", []):
            obj = getattr(module, attr)
            if inspect.isfunction(obj) or inspect.isclass(obj):
                out.append((f"{name}.{attr}", obj))
    return out


def _parameters(obj) -> list[str]:
    target = obj.__init__ if inspect.isclass(obj) else obj
    if inspect.isclass(obj) and target is object.__init__:
        return []
    try:
        sig = inspect.signature(target)
    except (TypeError, ValueError):
        return []
    return [p.name for p in sig.parameters.values()
            if p.name not in ("self", "cls")
            and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def style_problems() -> list[str]:
    """One line per public docstring that does not follow the Args/Returns/Raises style."""
    problems = []
    for name, obj in public_callables():
        doc = inspect.getdoc(obj) or ""
        if not doc:
            problems.append(f"{name}: no docstring")
            continue
        if issubclass(obj, BaseException) if inspect.isclass(obj) else False:
            continue  # an exception says when it is raised; it takes a message
        params = _parameters(obj)
        if params and "Args:" not in doc:
            problems.append(f"{name}: no Args: section for {', '.join(params)}")
            continue
        if params:
            args = doc.split("Args:", 1)[1]
            args = re.split(r"\n(?:" + "|".join(map(re.escape, SECTIONS)) + r")\n", args)[0]
            listed = set(re.findall(r"^    (\w+)(?: \([^)]*\))?:", args, re.M))
            missing = [p for p in params if p not in listed]
            if missing:
                problems.append(f"{name}: Args: does not list {', '.join(missing)}")
    return problems


def build(output: Path) -> Path:
    """Write the HTML reference into ``output``.

    Args:
        output: the directory to write (created; its pages are replaced).

    Returns:
        The reference's start page, ``output / "index.html"``.
    """
    import pdoc
    import pdoc.render

    pdoc.render.configure(docformat="google", show_source=False,
                          footer_text="ngramds API reference (python tools/api_docs.py)")
    pdoc.pdoc(*public_modules(), output_directory=output)
    return output / "index.html"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("-o", "--output", type=Path, default=ROOT / "build" / "api",
                   help="output directory (default build/api)")
    p.add_argument("--check", action="store_true", help="only check the docstrings' style")
    a = p.parse_args(argv)
    problems = style_problems()
    for line in problems:
        print(f"api_docs: {line}", file=sys.stderr)
    if a.check:
        return 1 if problems else 0
    print(build(a.output))
    return 0


if __name__ == "__main__":
    sys.exit(main())
