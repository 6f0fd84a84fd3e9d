"""A safe fix keeps what the program does: every runnable fixture and rule-doc example is run
before and after `--fix` (safe fixes only), on real JAX, and a program that ran must print the
same and exit the same afterwards.

Only programs the fixer changes are run (a program nothing is fixed in cannot change). A program
that fails before its fix (the bug the fix repairs: `x[i] = v` on a JAX array raises) has no
behaviour to keep; it must still parse and run no worse than before is not asserted — only that
the fixer kept every program that worked working the same.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from jaxdoctor import registry
from jaxdoctor.static.runner import fix_text

ROOT = Path(__file__).resolve().parent.parent
_BLOCK = re.compile(r"```python\n(.*?)```", re.S)
_TIMEOUT = 120


def _programs() -> list[tuple[str, str]]:
    out = []
    for p in sorted([*(ROOT / "tests/fixtures").glob("*.py"), *(ROOT / "tests/fixtures/reports").glob("*.py"),
                     *(ROOT / "tests/fixes").glob("*.in.py")]):
        out.append((p.relative_to(ROOT).as_posix(), p.read_text()))
    for doc in sorted((ROOT / "rules").glob("JD*.md")):
        text = doc.read_text()
        if "## Example" not in text:
            continue
        for i, block in enumerate(_BLOCK.findall(text.split("## Example", 1)[1])):
            out.append((f"rules/{doc.name}#{i}", block))
    return out


def _fixed_programs() -> list[tuple[str, str, str]]:
    codes = frozenset(registry.all_rules())
    found = []
    for name, source in _programs():
        result = fix_text(source, name.replace("#", "_") + ".py", codes)
        if result.source != source:
            found.append((name, source, result.source))
    return found


FIXED = _fixed_programs()


def _run(source: str, tmp_path: Path, name: str) -> subprocess.CompletedProcess:
    path = tmp_path / name
    path.write_text(source)
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONHASHSEED": "0"}
    return subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=_TIMEOUT,
                          cwd=tmp_path, env=env)


def test_safe_fixes_are_exercised():
    # the differential test below must have programs to compare, or it proves nothing
    names = [n for n, _, _ in FIXED]
    assert any("JD104" in n or "inplace" in n for n in names), names
    assert len(FIXED) >= 5, names


@pytest.mark.parametrize("name,before,after", FIXED, ids=[n for n, _, _ in FIXED])
def test_safe_fix_keeps_behaviour(name, before, after, tmp_path):
    old = _run(before, tmp_path, "before.py")
    new = _run(after, tmp_path, "after.py")
    if old.returncode != 0:
        # the program had the bug the fix repairs (or needs what a test machine lacks): there is
        # no behaviour to keep; the fixed program must at least not fail at import/parse time
        assert "SyntaxError" not in new.stderr, new.stderr
        return
    assert new.returncode == 0, f"{name}: ran before --fix, fails after:\n{new.stderr[-2000:]}"
    assert new.stdout == old.stdout, f"{name}: output changed by a safe fix"


def test_mutable_by_design_program_is_left_alone():
    source = (ROOT / "tests/fixtures/mutable_by_design.py").read_text()
    result = fix_text(source, "mutable_by_design.py", frozenset(registry.all_rules()))
    assert result.source == source
    assert not [f for f in result.findings if f.code == "JD104"]
