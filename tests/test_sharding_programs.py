"""The sharding doctor on programs modelled on real reports (tests/fixtures/sharding/), run under
the doctor on 8 simulated CPU devices in this process: each `bad_*` is reported exactly on its
`# JDxxx` lines, each `good_*` twin is silent. A fixture's docstring may give the run's options
(`jaxdoctor-options: device_memory=v5e`) and must cite the report it is modelled on."""

from __future__ import annotations

import re

import pytest
from trace_support import ROOT, located, marks, run_in_process

SHARDING = ROOT / "tests" / "fixtures" / "sharding"
BAD = sorted(p.name for p in SHARDING.glob("bad_*.py"))
GOOD = sorted(p.name for p in SHARDING.glob("good_*.py"))
CODES = [f"JD53{n}" for n in range(8)]


def options(path) -> dict:
    m = re.search(r"jaxdoctor-options: (.*)", path.read_text())
    return dict(kv.strip().split("=", 1) for kv in m.group(1).split(",")) if m else {}


def test_eight_devices():
    import jax

    assert jax.device_count() == 8


@pytest.mark.parametrize("name", BAD)
def test_bad_program_reported_at_marked_lines(name):
    path = SHARDING / name
    want = marks(path)
    assert want, f"{name} marks no line"
    findings = run_in_process(path, **options(path))
    assert located(findings, path) == want, [(f["code"], f["line"], f["message"]) for f in findings]


@pytest.mark.parametrize("name", GOOD)
def test_correct_twin_is_silent(name):
    path = SHARDING / name
    findings = run_in_process(path, **options(path))
    assert findings == [], [(f["code"], f["line"], f["message"]) for f in findings]


@pytest.mark.parametrize("code", CODES)
def test_each_finding_has_two_reports_and_a_twin(code):
    tag = code.lower()
    bad = [n for n in BAD if n.startswith(f"bad_{tag}_")]
    good = [n for n in GOOD if n.startswith(f"good_{tag}_")]
    assert len(bad) >= 2 and good, (bad, good)
    for name in bad:
        assert code in {c for _, c in marks(SHARDING / name)}, name


@pytest.mark.parametrize("name", BAD + GOOD)
def test_fixture_cites_a_report(name):
    doc = (SHARDING / name).read_text().split('"""')[1]
    assert re.search(r"[\w.-]+/[\w.-]+#\d+", doc), f"{name} cites no report (owner/repo#N)"
