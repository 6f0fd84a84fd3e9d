"""Autofix: `apply_edits`, the fix loop, and `lint --fix` / `--unsafe-fixes` / `--diff`.

Fix examples are paired fixtures (torchfix's habit): `tests/fixes/<name>.in.py` becomes
`<name>.out.py` under `--fix` (with `--unsafe-fixes` when the name starts with `unsafe_`), and a
second `--fix` changes nothing.
"""

from __future__ import annotations

import os
import py_compile
import stat
import subprocess
from pathlib import Path

import pytest
from cli_support import jaxdoctor

from jaxdoctor import registry
from jaxdoctor.findings import Applicability, Edit, Finding, Fix, Severity
from jaxdoctor.static.engine import static_rules
from jaxdoctor.static.fixes import (
    OverlappingEdits,
    apply_edits,
    choose_fixes,
    fix_source,
)

FIXES = Path(__file__).resolve().parent / "fixes"
PAIRS = sorted(p for p in FIXES.glob("*.in.py"))
ALL_RULES = static_rules(registry.all_rules())


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return jaxdoctor("lint", "--isolated", *args, cwd=cwd)


# ------------------------------------------------------------------ apply_edits


def test_apply_edits_replaces_spans_in_any_order():
    text = "ab\ncd\nef\n"
    edits = [Edit(3, 1, 3, 2, "E"), Edit(1, 2, 2, 2, "X")]
    assert apply_edits(text, edits) == "aXd\nEf\n"


def test_apply_edits_insertion_deletion_and_end_of_text():
    text = "x = 1\r\ny = 2"
    assert apply_edits(text, [Edit(1, 1, 1, 1, "# hi\r\n")]) == "# hi\r\nx = 1\r\ny = 2"
    assert apply_edits(text, [Edit(2, 6, 2, 6, "\r\n")]) == "x = 1\r\ny = 2\r\n"
    assert apply_edits(text, [Edit(1, 5, 1, 6, "")]) == "x = \r\ny = 2"
    assert apply_edits("a\n", [Edit(2, 1, 2, 1, "b\n")]) == "a\nb\n"


def test_apply_edits_counts_columns_in_characters():
    assert apply_edits("s = 'é'; x[0] = 1\n", [Edit(1, 10, 1, 18, "x = x.at[0].set(1)")]) == (
        "s = 'é'; x = x.at[0].set(1)\n"
    )


def test_apply_edits_rejects_overlaps_and_bad_positions():
    with pytest.raises(OverlappingEdits):
        apply_edits("abcdef", [Edit(1, 1, 1, 4, "X"), Edit(1, 3, 1, 5, "Y")])
    with pytest.raises(OverlappingEdits):
        apply_edits("abcdef", [Edit(1, 2, 1, 2, "X"), Edit(1, 2, 1, 2, "Y")])
    with pytest.raises(ValueError):
        apply_edits("abc\n", [Edit(5, 1, 5, 2, "X")])
    with pytest.raises(ValueError):
        apply_edits("abc\n", [Edit(1, 9, 1, 10, "X")])
    # adjacent edits do not overlap
    assert apply_edits("abcdef", [Edit(1, 1, 1, 3, "X"), Edit(1, 3, 1, 5, "Y")]) == "XYef"


def _finding(line, col, end_col, content, applicability=Applicability.SAFE):
    fix = Fix("t", applicability, (Edit(line, col, line, end_col, content),))
    return Finding("JD104", "n", Severity.ERROR, "m", "p.py", line, col, line, end_col, fix=fix)


def test_choose_fixes_skips_overlaps_and_unsafe_unless_asked():
    a = _finding(1, 1, 5, "A")
    b = _finding(1, 3, 7, "B")  # overlaps a: left for the next round
    c = _finding(2, 1, 2, "C", Applicability.UNSAFE)
    assert choose_fixes([b, a, c], unsafe=False) == [a.fix]
    assert choose_fixes([b, a, c], unsafe=True) == [a.fix, c.fix]


# ------------------------------------------------------------------ fix loop


@pytest.mark.parametrize("path", PAIRS, ids=[p.name for p in PAIRS])
def test_fix_pair(path):
    source = path.read_text()
    want = path.with_name(path.name.replace(".in.py", ".out.py")).read_text()
    unsafe = path.name.startswith("unsafe_")
    result = fix_source(source, path.name, ALL_RULES, unsafe=unsafe)
    assert result.source == want
    assert result.applied > 0
    again = fix_source(result.source, path.name, ALL_RULES, unsafe=unsafe)
    assert again.source == result.source and again.applied == 0


def test_unsafe_fixes_need_the_flag():
    for path in PAIRS:
        if path.name.startswith("unsafe_"):
            source = path.read_text()
            assert fix_source(source, path.name, ALL_RULES, unsafe=False).source == source


def test_fix_never_returns_text_that_does_not_parse(monkeypatch):
    from jaxdoctor.static import fixes

    source = "import jax\n\n\n@jax.jit\ndef f(x):\n    x[0] = 1\n    return x\n"
    real = fixes.apply_edits

    def breaking(text, edits):
        return real(text, list(edits)) + "\n)("  # every fix now breaks the file

    monkeypatch.setattr(fixes, "apply_edits", breaking)
    result = fix_source(source, "f.py", ALL_RULES)
    assert result.source == source and result.applied == 0


def test_overlapping_fixes_are_applied_over_several_rounds():
    # the fix of the inner `b[0] = 1` statement and of the outer one don't overlap; the loop
    # still has to re-lint after each round to reach a fixed point
    source = (
        "import jax.numpy as jnp\n\n\ndef f():\n    a = jnp.zeros(3)\n    a[0] = 1; a[1] = 2\n"
        "    return a\n"
    )
    result = fix_source(source, "f.py", ALL_RULES)
    assert "a = a.at[0].set(1); a = a.at[1].set(2)" in result.source
    assert result.findings == []


# ------------------------------------------------------------------ CLI


ACCEPT = """\
import jax
import jax.numpy as jnp


@jax.jit
def step(x, params, i):
    x[i] = 0.0
    params = jax.tree_map(lambda p: p * 0.9, params)
    return x, params
"""


def test_diff_writes_nothing_and_exits_1(tmp_path):
    f = tmp_path / "step.py"
    f.write_text(ACCEPT)
    before = f.stat().st_mtime_ns
    proc = run_cli("--select", "JD104", "--diff", "step.py", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "-    x[i] = 0.0" in proc.stdout and "+    x = x.at[i].set(0.0)" in proc.stdout
    assert proc.stdout.startswith("--- a/step.py\n+++ b/step.py\n")
    assert f.read_text() == ACCEPT and f.stat().st_mtime_ns == before
    clean = tmp_path / "clean.py"
    clean.write_text("import jax\n")
    assert run_cli("--diff", "clean.py", cwd=tmp_path).returncode == 0


def test_fix_rewrites_compiles_and_is_idempotent(tmp_path):
    f = tmp_path / "step.py"
    f.write_text(ACCEPT)
    os.chmod(f, 0o640)
    proc = run_cli("--select", "JD104", "--fix", "--format", "concise", "step.py", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    fixed = f.read_text()
    assert "x = x.at[i].set(0.0)" in fixed and "x[i] = 0.0" not in fixed
    py_compile.compile(str(f), doraise=True)
    assert stat.S_IMODE(f.stat().st_mode) == 0o640
    assert [p.name for p in tmp_path.iterdir() if p.name != "__pycache__"] == ["step.py"]
    again = run_cli("--select", "JD104", "--fix", "step.py", cwd=tmp_path)
    assert again.returncode == 0 and f.read_text() == fixed


def test_acceptance_fix_applies_jd104_and_jd401_together(tmp_path):
    """The issue's check: `x[i] = 0.0` and `jax.tree_map` inside a jitted function."""
    f = tmp_path / "step.py"
    f.write_text(ACCEPT)
    diff = run_cli("--diff", "step.py", cwd=tmp_path)
    assert diff.returncode == 1 and f.read_text() == ACCEPT
    proc = run_cli("--fix", "step.py", cwd=tmp_path)
    fixed = f.read_text()
    assert "x = x.at[i].set(0.0)" in fixed, proc.stdout + proc.stderr
    assert "jax.tree.map(" in fixed and "jax.tree_map" not in fixed, proc.stdout + proc.stderr
    py_compile.compile(str(f), doraise=True)
    run_cli("--fix", "step.py", cwd=tmp_path)
    assert f.read_text() == fixed
    assert run_cli("--diff", "step.py", cwd=tmp_path).returncode == 0


def test_fix_keeps_crlf_bom_and_encoding(tmp_path):
    crlf = tmp_path / "crlf.py"
    crlf.write_bytes(b"import jax.numpy as jnp\r\n\r\ndef f():\r\n    a = jnp.zeros(3)\r\n    a[0] = 1\r\n    return a\r\n")
    bom = tmp_path / "bom.py"
    bom.write_bytes(b"\xef\xbb\xbfimport jax.numpy as jnp\n\ndef f():\n    a = jnp.zeros(3)\n    a[0] = 1\n    return a\n")
    latin = tmp_path / "latin.py"
    latin.write_bytes(
        b"# -*- coding: latin-1 -*-\nimport jax.numpy as jnp\n\ndef f():\n    s = '\xe9'\n"
        b"    a = jnp.zeros(3)\n    a[0] = 1\n    return a, s\n"
    )
    proc = run_cli("--select", "JD104", "--fix", ".", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert crlf.read_bytes() == b"import jax.numpy as jnp\r\n\r\ndef f():\r\n    a = jnp.zeros(3)\r\n    a = a.at[0].set(1)\r\n    return a\r\n"
    assert bom.read_bytes().startswith(b"\xef\xbb\xbfimport jax.numpy")
    assert b"a = a.at[0].set(1)" in bom.read_bytes()
    data = latin.read_bytes()
    assert b"s = '\xe9'" in data and b"a = a.at[0].set(1)" in data


def test_fix_reports_what_remains(tmp_path):
    f = tmp_path / "m.py"
    f.write_text(
        "import jax\n\n\n@jax.jit\ndef f(x):\n    x[0] //= 2\n    x[1] = 0\n    return x\n"
    )
    proc = run_cli("--select", "JD104", "--fix", "--format", "concise", "m.py", cwd=tmp_path)
    assert proc.returncode == 1
    assert "m.py:6:5: JD104" in proc.stdout  # `//=` has no `.at` method: no fix, still reported
    assert "x = x.at[1].set(0)" in f.read_text()
