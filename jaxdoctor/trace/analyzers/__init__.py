"""The jaxpr analyzers (JD501–JD509, JD521): one walk over a closed jaxpr, one small module per rule.

Entry point::

    findings = analyze_jaxpr(closed_jaxpr, batch_axes=None, batch_size=None, entry_name="fn",
                             arg_names=None, select=None)

`batch_axes`: per flat invar, the vmap axis (int) or None (broadcast) when the jaxpr is that of
`jax.vmap(f, in_axes)(...)`; None when not traced under vmap. `arg_names`: per flat invar, a
readable name. `select`: the enabled codes (default: every JD50x rule enabled by default).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from typing import Any

from jaxdoctor.findings import Finding, unique
from jaxdoctor.trace.analyzers._walk import Analyzer, Walk, run_walk
from jaxdoctor.trace.analyzers.batched_broadcast import BatchedBroadcastAnalyzer
from jaxdoctor.trace.analyzers.float64_upcast import Float64UpcastAnalyzer
from jaxdoctor.trace.analyzers.host_callback_in_loop import HostCallbackInLoopAnalyzer
from jaxdoctor.trace.analyzers.identical_random_draws import IdenticalRandomDrawsAnalyzer
from jaxdoctor.trace.analyzers.large_captured_constant import (
    LargeCapturedConstantAnalyzer,
)
from jaxdoctor.trace.analyzers.loop_invariant_carry import LoopInvariantCarryAnalyzer
from jaxdoctor.trace.analyzers.traced_prng_key_reuse import TracedPrngKeyReuseAnalyzer
from jaxdoctor.trace.analyzers.traced_unrolled_loop import TracedUnrolledLoopAnalyzer
from jaxdoctor.trace.analyzers.unused_input import UnusedInputAnalyzer

ANALYZERS: tuple[type[Analyzer], ...] = (
    BatchedBroadcastAnalyzer,
    LoopInvariantCarryAnalyzer,
    TracedPrngKeyReuseAnalyzer,
    TracedUnrolledLoopAnalyzer,
    LargeCapturedConstantAnalyzer,
    HostCallbackInLoopAnalyzer,
    Float64UpcastAnalyzer,
    UnusedInputAnalyzer,
    IdenticalRandomDrawsAnalyzer,
)

__all__ = ["ANALYZERS", "analyze_jaxpr"]


@functools.cache
def _default_codes() -> set[str]:
    # The analyzers' rules are all in these two modules: importing them, not the whole registry
    # (whose static rules import libcst), keeps a run under the doctor from paying for lint.
    from jaxdoctor.rule import TraceRule
    from jaxdoctor.rules import jaxpr, trace_checks  # noqa: F401 - defines the rule classes

    rules = {c.code: c for c in TraceRule.__subclasses__() if "code" in c.__dict__}
    return {cls.code for cls in ANALYZERS if rules[cls.code].default_enabled}


def _live_user_frames() -> list[tuple[str, int, str]]:
    import sys

    from jaxdoctor.trace.frames import is_user_file

    out = []
    f = sys._getframe(1)
    while f is not None and len(out) < 32:
        code = f.f_code
        if is_user_file(code.co_filename):
            out.append(
                (
                    code.co_filename,
                    f.f_lineno,
                    getattr(code, "co_qualname", code.co_name),
                )
            )
        f = f.f_back
    return out


def analyze_jaxpr(
    closed_jaxpr: Any,
    *,
    batch_axes: Sequence[int | None] | None = None,
    batch_size: int | None = None,
    entry_name: str = "fn",
    arg_names: Sequence[str] | None = None,
    select: Iterable[str] | None = None,
    callers: Sequence[tuple[str, int, str]] | None = None,
) -> list[Finding]:
    """Findings of every enabled JD50x analyzer on one closed jaxpr, sorted by location.

    `callers`: the user's frames `(file, line, function)`, innermost first, that made JAX trace
    this jaxpr; by default those on the Python stack now (the doctor analyses a trace right
    where the user's call made it). Some equations' tracebacks stop at a JAX API boundary
    (the broadcasts `vmap` adds to its outputs); the call line then comes from here."""
    enabled = set(select) if select is not None else _default_codes()
    classes = [cls for cls in ANALYZERS if cls.code in enabled]
    if not classes:
        return []
    walk = Walk(
        closed=closed_jaxpr,
        batch_axes=list(batch_axes) if batch_axes is not None else None,
        batch_size=batch_size,
        entry_name=entry_name,
        arg_names=list(arg_names) if arg_names is not None else None,
        callers=list(callers) if callers is not None else _live_user_frames(),
    )
    analyzers = [cls(walk) for cls in classes]
    run_walk(walk, analyzers)
    findings = unique(f for a in analyzers for f in a.finish())
    return sorted(findings, key=lambda f: f.sort_key)
