"""Inline suppressions: `# jaxdoctor: ignore[JD101]`, `# jaxdoctor: ignore`, `# noqa: JD101`.

A comment on the first or last line of a finding silences it. A bare `# noqa` silences every
code on the line (flake8's convention); `# noqa: E501` (other tools' codes only) silences none
of ours.
"""

from __future__ import annotations

import re

ALL = "*"
_JAXDOCTOR = re.compile(r"#\s*jaxdoctor\s*:\s*ignore\b(?:\[(?P<codes>[^\]]*)\])?", re.IGNORECASE)
_NOQA = re.compile(r"#\s*noqa\b(?P<colon>\s*:\s*(?P<codes>[A-Za-z]+\d+(?:[\s,]+[A-Za-z]+\d+)*))?",
                   re.IGNORECASE)
_CODE = re.compile(r"[A-Za-z]+\d+")


def suppressions(source: str) -> dict[int, set[str]]:
    """1-based line → suppressed codes (or {ALL})."""
    out: dict[int, set[str]] = {}
    if "jaxdoctor" not in source and "noqa" not in source.lower():
        return out
    for lineno, line in enumerate(source.splitlines(), start=1):
        if "#" not in line:
            continue
        codes: set[str] = set()
        for m in _JAXDOCTOR.finditer(line):
            if m.group("codes") is None:
                codes.add(ALL)
            else:
                codes.update(c.upper() for c in _CODE.findall(m.group("codes")))
        for m in _NOQA.finditer(line):
            if m.group("codes") is None:
                codes.add(ALL)
            else:
                codes.update(c.upper() for c in _CODE.findall(m.group("codes")))
        if codes:
            out[lineno] = codes
    return out


def is_suppressed(table: dict[int, set[str]], code: str, line: int, end_line: int) -> bool:
    for n in (line, end_line):
        codes = table.get(n)
        if codes and (ALL in codes or code in codes):
            return True
    return False
