"""The closing line's honest fix counts, shared by the text and statistics renderers."""

from __future__ import annotations

from jaxdoctor.findings import Applicability, Finding


def fix_counts(findings: list[Finding]) -> tuple[int, int]:
    """(findings `--fix` can fix, findings only `--fix --unsafe-fixes` can fix)."""
    safe = unsafe = 0
    for f in findings:
        if f.fix is not None and f.fix.edits:
            if f.fix.applicability is Applicability.SAFE:
                safe += 1
            else:
                unsafe += 1
    return safe, unsafe


def fixable_phrase(findings: list[Finding]) -> str:
    """` (2 fixable with `--fix`, 1 more with `--unsafe-fixes`)`, or "" when none is fixable."""
    safe, unsafe = fix_counts(findings)
    if safe and unsafe:
        return f" ({safe} fixable with `--fix`, {unsafe} more with `--unsafe-fixes`)"
    if safe:
        return f" ({safe} fixable with `--fix`)"
    if unsafe:
        return f" ({unsafe} fixable with `--fix --unsafe-fixes`)"
    return ""
