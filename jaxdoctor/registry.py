"""Every rule, by code; selection of rules by code prefix.

The registry only collects: a rule is a subclass of `jaxdoctor.rule.Rule` that sets its `code`,
defined in a module of the package `RULES`. Every module of that package is imported on the
first call of `all_rules()`, by name: importing the registry never imports a rule, so rules, the
passes and the renderers can all depend on the registry without a loop. Importing this module
never imports jax.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
import re
from typing import Iterable

from jaxdoctor.errors import UsageError
from jaxdoctor.rule import Rule

CODE_RE = re.compile(r"^JD\d{3}$")

#: The package that holds every rule module.
RULES = "jaxdoctor.rules"


def _leaf_subclasses(base: type) -> Iterable[type]:
    for sub in base.__subclasses__():
        if "code" in sub.__dict__:
            yield sub
        yield from _leaf_subclasses(sub)


@functools.cache
def all_rules() -> dict[str, type[Rule]]:
    """code → rule class, for every static and trace rule, sorted by code."""
    package = importlib.import_module(RULES)
    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{RULES}.{module.name}")  # defines (and so registers) its rules
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
