"""Every JD50x rule doc's examples are tests of the jaxpr analyzers.

Each block is written to a real file, executed as a fresh module, and its zero-argument `main()`
traced with `jax.make_jaxpr`; the analyzers run on that jaxpr and, as the run-under-doctor
capture does, on each `jit` it calls. The bad block must be flagged exactly on its `# JD50x`
lines, the good block not at all.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import jax
import pytest

from jaxdoctor.trace.analyzers import ANALYZERS, analyze_jaxpr

DOCS = Path(__file__).resolve().parent.parent / "rules"
_BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)
_MARK = re.compile(r"#\s*((?:JD\d{3}[\s,]*)+)\s*$")
CODES = sorted(cls.code for cls in ANALYZERS)
#: Found at run time by the capture, not in a bare jaxpr (their examples: test_trace_docs.py):
#: JD504 (leaked tracers), JD521 (needs the batch axes of a captured `vmap`).
RUNTIME_ONLY = {"JD504", "JD521"}


def _blocks(code: str) -> tuple[str, str]:
    text = (DOCS / f"{code}.md").read_text()
    example = text.split("## Example", 1)[1]
    bad_part, _, good_part = example.partition("Use instead:")
    return _BLOCK.search(bad_part).group(1), _BLOCK.search(good_part).group(1)


def _expected(source: str) -> set[tuple[int, str]]:
    out = set()
    for lineno, line in enumerate(source.splitlines(), start=1):
        m = _MARK.search(line)
        if m:
            out.update((lineno, c) for c in re.findall(r"JD\d{3}", m.group(1)))
    return out


def _run(source: str, tmp_path: Path, name: str) -> set[tuple[int, str]]:
    path = tmp_path / f"{name}.py"
    path.write_text(source)
    x64 = jax.config.jax_enable_x64
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
        closed = jax.make_jaxpr(module.main)()
        found = set()
        # main itself runs eagerly in a real program: its own constants are not captured ones
        top_codes = [c for c in CODES if c != "JD506"]
        for f in analyze_jaxpr(closed, select=top_codes, entry_name="main"):
            assert f.path == str(path), f
            found.add((f.line, f.code))
        for (
            eqn
        ) in closed.jaxpr.eqns:  # each jit the program calls, as the capture sees it
            inner = (
                eqn.params.get("jaxpr")
                if eqn.primitive.name in ("jit", "pjit")
                else None
            )
            if inner is not None:
                for f in analyze_jaxpr(
                    inner, select=CODES, entry_name=eqn.params.get("name", "fn")
                ):
                    found.add((f.line, f.code))
        return found
    finally:
        jax.config.update("jax_enable_x64", x64)
        sys.modules.pop(name, None)


@pytest.mark.parametrize("code", [c for c in CODES if c not in RUNTIME_ONLY])
def test_bad_example_flagged_on_marked_lines(code, tmp_path):
    bad, _ = _blocks(code)
    want = _expected(bad)
    assert any(c == code for _, c in want), f"rules/{code}.md marks no `# {code}` line"
    assert _run(bad, tmp_path, f"bad_{code}") == want


@pytest.mark.parametrize("code", [c for c in CODES if c not in RUNTIME_ONLY])
def test_good_example_is_clean(code, tmp_path):
    _, good = _blocks(code)
    assert _run(good, tmp_path, f"good_{code}") == set()


def test_every_analyzer_has_a_doc():
    for code in CODES + sorted(RUNTIME_ONLY):
        text = (DOCS / f"{code}.md").read_text()
        assert text.startswith("# ") and f"({code})" in text.splitlines()[0]
