"""Every rule, by code; selection of rules by code prefix.

A rule is a class with its identity as class attributes (code, kebab-case name, severity,
summary, fix title, fix safety). Static rules subclass `jaxdoctor.static.rule.LintRule`;
trace-only rules (JD5xx) are metadata here and are produced by the trace analyzers.
Importing this module never imports jax.
"""

from __future__ import annotations

import functools
import re
from typing import ClassVar, Iterable

from jaxdoctor.errors import UsageError
from jaxdoctor.findings import Applicability, Origin, Severity

CODE_RE = re.compile(r"^JD\d{3}$")


class Rule:
    code: ClassVar[str]
    name: ClassVar[str]
    summary: ClassVar[str]
    severity: ClassVar[Severity] = Severity.WARNING
    origin: ClassVar[Origin] = Origin.STATIC
    fix_title: ClassVar[str | None] = None
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


def _leaf_subclasses(base: type) -> Iterable[type]:
    for sub in base.__subclasses__():
        if "code" in sub.__dict__:
            yield sub
        yield from _leaf_subclasses(sub)


@functools.cache
def all_rules() -> dict[str, type[Rule]]:
    """code → rule class, for every static and trace rule, sorted by code."""
    import jaxdoctor.rules  # noqa: F401  (registers the rule classes by importing them)

    found: dict[str, type[Rule]] = {}
    for cls in _leaf_subclasses(Rule):
        if cls.code in found and found[cls.code] is not cls:
            raise RuntimeError(f"duplicate rule code {cls.code}: {found[cls.code]} and {cls}")
        found[cls.code] = cls
    return dict(sorted(found.items()))


def expand(selectors: Iterable[str], *, what: str = "rule selector") -> set[str]:
    """Codes matched by selectors such as `JD101`, `JD1`, `JD` or `ALL`; unknown ones are errors."""
    rules = all_rules()
    out: set[str] = set()
    for raw in selectors:
        sel = raw.strip().upper()
        if not sel:
            continue
        if sel == "ALL":
            out.update(rules)
            continue
        matched = {code for code in rules if code.startswith(sel)}
        if not matched:
            raise UsageError(f"unknown {what} {raw!r}: no rule code starts with it (see `jaxdoctor rules`)")
        out.update(matched)
    return out


def select(
    select: Iterable[str] | None = None,
    ignore: Iterable[str] = (),
    extend_select: Iterable[str] = (),
) -> frozenset[str]:
    """The enabled codes: `select` (default: every rule enabled by default) plus `extend_select`,
    minus `ignore`."""
    rules = all_rules()
    base = expand(select) if select is not None else {c for c, r in rules.items() if r.default_enabled}
    base |= expand(extend_select)
    base -= expand(ignore)
    return frozenset(base)
