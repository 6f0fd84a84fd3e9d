"""The house rules, checked on the code's own imports (README, "Layout"):

- the core (the modules at the top of `jaxdoctor/`) imports neither pass, nor a rule, nor the
  command line, and the registry imports no rule module when it is imported;
- the renderers see findings only: nothing from `static/`, `trace/` or `rules/`;
- the static pass never reaches the trace pass (lint never imports jax) or a renderer;
- JAX's, XLA's and Equinox's private modules are used in `trace/jax_internals.py`,
  `trace/xla_internals.py` and `trace/eqx_internals.py` only;
- there is one Finding decoder, and no import loop.
"""

from __future__ import annotations

import ast
import functools
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "jaxdoctor"
INTERNALS = {"trace/jax_internals.py", "trace/eqx_internals.py", "trace/xla_internals.py"}
PRIVATE = ("jax._src", "jax.core", "jax.interpreters", "jax.extend", "equinox._")
#: Import loops allowed: none (the static value model's old traced <-> flow <-> kinds loop is gone).
KNOWN_LOOPS: list[set[str]] = []


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@functools.cache
def _sources() -> dict[str, Path]:
    return {_module(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _type_checking_only(tree: ast.Module) -> set[int]:
    """ids of import nodes under `if TYPE_CHECKING:`."""
    out: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            out.update(id(n) for n in ast.walk(node) if isinstance(n, (ast.Import, ast.ImportFrom)))
    return out


def _imports(path: Path) -> set[str]:
    """Every module this file imports, at module level or inside a function (not type-only)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _type_checking_only(tree)
    package = _module(path) if path.name == "__init__.py" else _module(path).rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            out.add(base)
            out.update(f"{base}.{alias.name}" for alias in node.names)
    return out


def _ours(names: set[str], modules: dict[str, Path]) -> set[str]:
    return {n for n in names if n in modules}


def _graph() -> dict[str, set[str]]:
    modules = _sources()
    return {name: _ours(_imports(path), modules) - {name} for name, path in modules.items()}


def _part(module: str) -> str:
    """face (the command line), core (the modules at the top of the package), or the subpackage."""
    parts = _sources()[module].relative_to(PACKAGE).parts
    if len(parts) == 1:
        return "face" if parts[0] in ("cli.py", "__main__.py") else "core"
    return parts[0]  # static, rules, trace, render


@pytest.mark.parametrize("part, never", [
    ("core", {"static", "trace", "rules", "render", "face"}),
    ("render", {"static", "trace", "rules", "face"}),
    ("static", {"trace", "render", "face"}),
    ("rules", {"trace", "render", "face"}),
])
def test_parts_import_only_what_the_layout_allows(part, never):
    found = sorted((m, t) for m, targets in _graph().items() if _part(m) == part
                   for t in targets if _part(t) in never)
    assert not found, found


def test_no_import_loops():
    graph = _graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    loops: list[set[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                loops.append(component)

    for v in graph:
        if v not in index:
            visit(v)
    assert [c for c in loops if c not in KNOWN_LOOPS] == []


def test_registry_imports_no_rule_when_imported():
    code = "import sys, jaxdoctor.registry; print(sorted(m for m in sys.modules if m.startswith('jaxdoctor.rules')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_private_jax_and_equinox_only_in_the_internals_modules():
    found = []
    for name, path in _sources().items():
        rel = path.relative_to(PACKAGE).as_posix()
        if rel in INTERNALS:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        used = _imports(path) | {ast.unparse(n) for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
        found += [(rel, u) for u in sorted(used) if any(u == p or u.startswith(p + ".") or
                                                         (p.endswith("_") and u.startswith(p)) for p in PRIVATE)]
    assert not found, found


def test_one_finding_decoder():
    decoders = []
    for name, path in _sources().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.endswith("from_dict"):
                decoders.append((name, node.name))
    assert decoders == [("jaxdoctor.findings", "from_dict")]
