"""The docs of the rules found while a program runs under the doctor (JD504, JD510–JD518,
JD520–JD524) are tests: each bad example, run through its `main()`, is reported exactly on its
`# JDxxx` lines; each good one is silent. So are the "## Under the doctor" examples of the
static rules the runtime checks also report (JD103, JD110, JD124, JD125). Timeouts and crashes
go through the real child process; the rest share this process."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from trace_support import ROOT, located, marks, run_in_process

DOCS = ROOT / "rules"
CODES = ["JD504"] + [f"JD5{n}" for n in range(10, 19)] + ["JD520", "JD521", "JD522", "JD523"]
#: static rules whose docs show the same mistake found while the program runs
UNDER_THE_DOCTOR = ["JD103", "JD110", "JD124", "JD125"]
IN_CHILD = {"JD512": 12.0, "JD513": 60.0}  # code → --timeout
_BLOCK = re.compile(r"```python\n(.*?)```", re.S)


def blocks(code: str, section: str = "## Example") -> tuple[str, str]:
    text = (DOCS / f"{code}.md").read_text()
    example = text.split(section, 1)[1].split("\n## ", 1)[0]
    bad_part, _, good_part = example.partition("Use instead:")
    return _BLOCK.search(bad_part).group(1), _BLOCK.search(good_part).group(1)


def run_doc(code: str, source: str, path: Path) -> set[tuple[int, str]]:
    path.write_text(source)
    if code in IN_CHILD:
        from jaxdoctor.trace.command import run_trace

        result = run_trace(f"{path}:main", timeout=IN_CHILD[code], cwd=str(path.parent))
        return {(f.line, f.code) for f in result.findings if Path(f.path).name == path.name}
    return located(run_in_process(path), path)


@pytest.mark.parametrize("code", CODES)
def test_doc_headings(code):
    from jaxdoctor.registry import all_rules

    text = (DOCS / f"{code}.md").read_text()
    assert text.startswith(f"# {all_rules()[code].name} ({code})\n")
    for heading in ("## What it does", "## Why is this bad?", "## Example", "Use instead:"):
        assert heading in text


@pytest.mark.parametrize("code", CODES)
def test_bad_example_reported_on_marked_lines(code, tmp_path):
    bad, _ = blocks(code)
    path = tmp_path / f"doc_{code.lower()}_bad.py"
    path.write_text(bad)
    want = marks(path)
    assert want and {c for _, c in want} == {code}
    assert run_doc(code, bad, path) == want


@pytest.mark.parametrize("code", CODES)
def test_good_example_is_silent(code, tmp_path):
    _, good = blocks(code)
    assert run_doc(code, good, tmp_path / f"doc_{code.lower()}_good.py") == set()


@pytest.mark.parametrize("code", UNDER_THE_DOCTOR)
def test_under_the_doctor_examples(code, tmp_path):
    bad, good = blocks(code, "## Under the doctor")
    path = tmp_path / f"doc_{code.lower()}_run_bad.py"
    path.write_text(bad)
    want = marks(path)
    assert want and {c for _, c in want} == {code}
    assert run_doc(code, bad, path) == want
    assert run_doc(code, good, tmp_path / f"doc_{code.lower()}_run_good.py") == set()


def test_cost_report_doc(tmp_path):
    """JD524 is a measurement: the example traced with `--cost` (from its companion) reports the
    figures at the `def` line; without `--cost` nothing."""
    bad, good = blocks("JD524")
    assert bad.replace("  # JD524", "") == good
    path = tmp_path / "doc_jd534.py"
    path.write_text(bad)
    assert located(run_in_process(path, "step", cost=True), path) == marks(path)
    assert run_in_process(path, "step") == []
