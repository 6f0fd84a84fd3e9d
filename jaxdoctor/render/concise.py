"""One line per finding: `path:line:col: CODE message` (what editors and grep expect)."""

from __future__ import annotations

from typing import TextIO

from jaxdoctor.findings import Finding


def render_concise(findings: list[Finding], out: TextIO, **_options) -> None:
    for f in findings:
        out.write(f"{f.location()}: {f.code} {f.message}\n")
