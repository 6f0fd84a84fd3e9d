"""The sharding doctor's rule docs (JD530–JD537) are tests: each bad example, run under the doctor
through its `main()` on 8 simulated CPU devices in this process, is reported exactly on its
`# JDxxx` lines; each good example is silent. The static rules' docs (JD140, JD141) run in
test_rule_docs.py."""

from __future__ import annotations

import re

import pytest
from trace_support import ROOT, located, marks, run_in_process

DOCS = ROOT / "rules"
CODES = [f"JD53{n}" for n in range(8)]
#: the options a doc says to run its example with
OPTIONS = {"JD533": {"device_memory": "v5e"}}
_BLOCK = re.compile(r"```python\n(.*?)```", re.S)


def blocks(code: str) -> tuple[str, str]:
    example = (DOCS / f"{code}.md").read_text().split("## Example", 1)[1]
    bad, _, good = example.partition("Use instead:")
    return _BLOCK.search(bad).group(1), _BLOCK.search(good).group(1)


@pytest.mark.parametrize("code", CODES)
def test_bad_example_reported_on_marked_lines(code, tmp_path):
    bad, _ = blocks(code)
    path = tmp_path / f"doc_{code.lower()}_bad.py"
    path.write_text(bad)
    want = marks(path)
    assert want and code in {c for _, c in want}
    findings = run_in_process(path, **OPTIONS.get(code, {}))
    assert located(findings, path) == want, [(f["code"], f["line"], f["message"]) for f in findings]


@pytest.mark.parametrize("code", CODES)
def test_good_example_is_silent(code, tmp_path):
    _, good = blocks(code)
    path = tmp_path / f"doc_{code.lower()}_good.py"
    path.write_text(good)
    findings = run_in_process(path, **OPTIONS.get(code, {}))
    assert located(findings, path) == set(), [(f["code"], f["line"], f["message"]) for f in findings]


def test_the_host_transfer_doc_says_why_cpu_needs_the_doctor():
    text = (DOCS / "JD537.md").read_text()
    assert "zero-copy" in text and "jax-ml/jax#16602" in text and "JD141" in text
