"""Helpers shared by the analyzers: building findings, formatting sizes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jaxdoctor.findings import Finding, Origin
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
    rule: Any,
    loc: SourceLocation,
    message: str,
    details: Mapping[str, Any] | None = None,
    *,
    fix_title: str | None = None,
) -> Finding:
    return Finding(
        code=rule.code,
        name=rule.name,
        severity=rule.severity,
        message=message,
        path=loc.path,
        line=loc.line,
        column=loc.column,
        end_line=loc.end_line,
        end_column=loc.end_column,
        fix_title=fix_title or rule.fix_title,
        origin=Origin.TRACE,
        details=dict(details or {}),
    )
