"""Helpers shared by the analyzers: building findings, formatting sizes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jaxdoctor.findings import Finding
from jaxdoctor.rule import TraceRule
from jaxdoctor.trace.source_map import SourceLocation

MiB = 1 << 20


def fmt_bytes(n: int) -> str:
    if n >= 1 << 30:
        return f"{n / (1 << 30):.1f} GiB"
    if n >= MiB:
        return f"{n / MiB:.1f} MiB"
    if n >= 1 << 10:
        return f"{n / (1 << 10):.1f} KiB"
    return f"{n} B"


def make_finding(
    rule: type[TraceRule],
    loc: SourceLocation,
    message: str,
    details: Mapping[str, Any] | None = None,
    *,
    fix_title: str | None = None,
) -> Finding:
    return rule.finding(message, loc.path, loc.line, loc.column, loc.end_line, loc.end_column,
                        fix_title=fix_title, details=details)
