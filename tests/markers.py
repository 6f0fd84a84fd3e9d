"""Inline expectations: a line ending in `# JD101` (or `# JD101, JD102`) must be flagged with
exactly those codes, and no other line may be flagged (flake8-bugbear's convention)."""

from __future__ import annotations

import re

from jaxdoctor import registry
from jaxdoctor.static.engine import lint_source, static_rules

_MARK = re.compile(r"#\s*((?:JD\d{3}[\s,]*)+)\s*$")


def expected(source: str) -> set[tuple[int, str]]:
    out = set()
    for lineno, line in enumerate(source.splitlines(), start=1):
        m = _MARK.search(line)
        if m:
            out.update((lineno, code) for code in re.findall(r"JD\d{3}", m.group(1)))
    return out


def actual(source: str, path: str = "example.py") -> set[tuple[int, str]]:
    rules = static_rules(registry.all_rules())
    result = lint_source(source, path, rules)
    return {(f.line, f.code) for f in result.findings}

