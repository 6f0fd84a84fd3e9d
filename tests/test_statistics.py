"""`lint --statistics`: counts per rule instead of the findings, as text or JSON."""

from __future__ import annotations

import io
import json

from cli_support import jaxdoctor

from jaxdoctor.findings import Applicability, Edit, Finding, Fix, Severity
from jaxdoctor.render.statistics import render_statistics, statistics

SAFE = Fix("fix", Applicability.SAFE, (Edit(1, 1, 1, 2, "y"),))
UNSAFE = Fix("fix", Applicability.UNSAFE, (Edit(1, 1, 1, 2, "y"),))


def finding(code: str, name: str, line: int = 1, fix: Fix | None = None) -> Finding:
    return Finding(code=code, name=name, severity=Severity.WARNING, message="m", path="a.py",
                   line=line, column=1, end_line=line, end_column=2, fix=fix)


def test_counts_sorted_by_count_then_code():
    findings = [
        finding("JD104", "inplace-array-update", 1, SAFE),
        finding("JD104", "inplace-array-update", 2, UNSAFE),
        finding("JD104", "inplace-array-update", 3),
        finding("JD101", "python-control-flow-on-tracer", 4),
        finding("JD110", "prng-key-reuse", 5),
        finding("JD101", "python-control-flow-on-tracer", 6),
    ]
    assert statistics(findings) == [
        {"code": "JD104", "name": "inplace-array-update", "count": 3, "fixable": 1, "unsafe_fixable": 1},
        {"code": "JD101", "name": "python-control-flow-on-tracer", "count": 2, "fixable": 0, "unsafe_fixable": 0},
        {"code": "JD110", "name": "prng-key-reuse", "count": 1, "fixable": 0, "unsafe_fixable": 0},
    ]
    out = io.StringIO()
    render_statistics(findings, out)
    assert out.getvalue().splitlines() == [
        "3\tJD104\t[*] inplace-array-update",
        "2\tJD101\t    python-control-flow-on-tracer",
        "1\tJD110\t    prng-key-reuse",
        "Found 6 problems (1 fixable with `--fix`, 1 more with `--unsafe-fixes`).",
    ]


def test_empty():
    out = io.StringIO()
    render_statistics([], out, fmt="json")
    assert json.loads(out.getvalue()) == []


def test_cli_statistics(tmp_path):
    (tmp_path / "a.py").write_text(
        "import jax\n\n\n@jax.jit\ndef f(x, y):\n    if x > 0:\n        return x\n    while y < 0:\n"
        "        y = y + 1\n    return y\n"
    )
    (tmp_path / "b.py").write_text("import jax\ndef broken(:\n")
    proc = jaxdoctor("lint", "--isolated", "--select", "JD001,JD101", "--statistics", ".", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout.splitlines() == [
        "2\tJD101\tpython-control-flow-on-tracer",
        "1\tJD001\tparse-error",
        "Found 3 problems.",
    ]
    assert "a.py:" not in proc.stdout  # the findings themselves are not listed

    proc = jaxdoctor("lint", "--isolated", "--select", "JD001,JD101", "--statistics", "--format", "json", ".", cwd=tmp_path)
    assert proc.returncode == 1
    assert json.loads(proc.stdout) == [
        {"code": "JD101", "name": "python-control-flow-on-tracer", "count": 2, "fixable": 0, "unsafe_fixable": 0},
        {"code": "JD001", "name": "parse-error", "count": 1, "fixable": 0, "unsafe_fixable": 0},
    ]

    (tmp_path / "b.py").unlink()
    (tmp_path / "a.py").write_text("import jax\n")
    proc = jaxdoctor("lint", "--isolated", "--statistics", "--format", "json", ".", cwd=tmp_path)
    assert proc.returncode == 0 and json.loads(proc.stdout) == []
