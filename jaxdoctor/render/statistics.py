"""`lint --statistics`: how many findings each rule produced, instead of the findings (ruff's
`--statistics`).

Rows are sorted by count, most frequent first, then by code. `fixable` counts the findings that
`--fix` would fix (safe fixes); `unsafe_fixable` those that need `--unsafe-fixes`. With
`--format json` the rows are a JSON array of objects with exactly those keys
(`code`, `name`, `count`, `fixable`, `unsafe_fixable`); every other format prints the table.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any, TextIO

from jaxdoctor.findings import Applicability, Finding
from jaxdoctor.render.summary import fixable_phrase


def statistics(findings: list[Finding]) -> list[dict[str, Any]]:
    count: Counter[str] = Counter()
    safe: Counter[str] = Counter()
    unsafe: Counter[str] = Counter()
    names: dict[str, str] = {}
    for f in findings:
        count[f.code] += 1
        names.setdefault(f.code, f.name)
        if f.fix is not None and f.fix.edits:
            (safe if f.fix.applicability is Applicability.SAFE else unsafe)[f.code] += 1
    rows = [
        {"code": code, "name": names[code], "count": n, "fixable": safe[code], "unsafe_fixable": unsafe[code]}
        for code, n in count.items()
    ]
    rows.sort(key=lambda r: (-r["count"], r["code"]))
    return rows


def render_statistics(findings: list[Finding], out: TextIO, *, fmt: str = "text") -> None:
    rows = statistics(findings)
    if fmt == "json":
        json.dump(rows, out, indent=2)
        out.write("\n")
        return
    if not rows:
        return
    width = max(len(str(r["count"])) for r in rows)
    code_width = max(len(r["code"]) for r in rows)
    any_fix = any(r["fixable"] or r["unsafe_fixable"] for r in rows)
    for r in rows:
        # ruff's markers: [*] fixable with --fix, [-] only with --unsafe-fixes
        marker = "[*] " if r["fixable"] else "[-] " if r["unsafe_fixable"] else ("    " if any_fix else "")
        out.write(f"{r['count']:>{width}}\t{r['code']:<{code_width}}\t{marker}{r['name']}\n")
    total = sum(r["count"] for r in rows)
    out.write(f"Found {total} problem{'s' if total != 1 else ''}{fixable_phrase(findings)}.\n")
