"""`--format json`: a JSON array, one object per finding (schema in README, "JSON output")."""

from __future__ import annotations

import json
from typing import TextIO

from jaxdoctor.findings import Finding


def render_json(findings: list[Finding], out: TextIO, **_options) -> None:
    json.dump([f.to_dict() for f in findings], out, indent=2, default=str)
    out.write("\n")
