"""Inline expectations: a line ending in `# JD101` (or `# JD101, JD102`) must be flagged with
exactly those codes, and no other line may be flagged (flake8-bugbear's convention)."""

from __future__ import annotations

import re

from jaxdoctor import registry
from jaxdoctor.findings import Severity
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
    rules = static_rules(_codes(source))
    result = lint_source(source, path, rules)
    return {(f.line, f.code) for f in result.findings}



def _codes(source: str) -> set[str]:
    """Every rule, except that an opt-in *info* rule (JD403 legacy-api: `jax.random.PRNGKey` is
    in most JAX programs) runs only on sources that name its code, in a marker or a comment:
    elsewhere its findings are not what the example is about."""
    out = set()
    for code, rule in registry.all_rules().items():
        if not rule.default_enabled and rule.severity is Severity.INFO and code not in source:
            continue
        out.add(code)
    return out
