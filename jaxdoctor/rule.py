"""What every rule is: its identity as class attributes, and the findings it makes.

Static rules subclass `jaxdoctor.static.rule.LintRule` (which adds the visit methods); the
trace-only rules (JD5xx) subclass `TraceRule` and are metadata: the trace pass produces their
findings. `jaxdoctor.registry` collects the subclasses. Importing this module never imports a
rule, libcst or jax.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from jaxdoctor.findings import Applicability, Finding, Fix, Origin, Quote, Severity


class Rule:
    code: ClassVar[str]
    name: ClassVar[str]
    summary: ClassVar[str]
    severity: ClassVar[Severity] = Severity.WARNING
    origin: ClassVar[Origin] = Origin.STATIC
    fix_title: ClassVar[str | None] = None
    #: The hint when the trace pass explains this mistake from the exception JAX raised (it sees
    #: the error, not the code pattern); None: `fix_title`.
    trace_fix_title: ClassVar[str | None] = None
    #: `None` when the rule offers no automatic fix.
    fix_applicability: ClassVar[Applicability | None] = None
    #: False for rules that stay off unless selected explicitly.
    default_enabled: ClassVar[bool] = True

    @classmethod
    def describe(cls) -> dict:
        return {
            "code": cls.code,
            "name": cls.name,
            "severity": cls.severity.value,
            "origin": cls.origin.value,
            "summary": cls.summary,
            "fix_title": cls.fix_title,
            "fix": cls.fix_applicability.value if cls.fix_applicability else None,
            "default": cls.default_enabled,
        }

    @classmethod
    def finding(
        cls,
        message: str,
        path: str,
        line: int,
        column: int,
        end_line: int,
        end_column: int,
        *,
        severity: Severity | None = None,
        fix_title: str | None = None,
        fix: Fix | None = None,
        origin: Origin | None = None,
        cell: int | None = None,
        details: Mapping[str, Any] | None = None,
        quote: Quote | None = None,
    ) -> Finding:
        """A finding of this rule; severity, fix title and origin default to the rule's."""
        return Finding(
            code=cls.code, name=cls.name, severity=severity or cls.severity, message=message,
            path=path, line=line, column=column, end_line=end_line, end_column=end_column,
            fix_title=fix_title or cls.fix_title, fix=fix, origin=origin or cls.origin, cell=cell,
            details=dict(details or {}), quote=quote,
        )


class TraceRule(Rule):
    """A rule whose findings only the trace pass makes (JD5xx)."""

    origin = Origin.TRACE
