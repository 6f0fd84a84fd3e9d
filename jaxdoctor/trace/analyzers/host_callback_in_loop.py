"""JD507 host-callback-in-loop: a host callback runs on every iteration of a loop.

`jax.debug.print`, `jax.debug.callback`, `pure_callback` and `io_callback` inside a `scan`,
`fori_loop` or `while_loop` body stop the device and call Python once per iteration. A callback
guarded by a `cond` inside the loop (the usual "print every 100 steps") is not reported, nor one
that a library (equinox, optax) placed there.
"""

from __future__ import annotations

from jaxdoctor.rules.jaxpr import HostCallbackInLoop
from jaxdoctor.trace import jax_internals as ji
from jaxdoctor.trace import source_map as sm
from jaxdoctor.trace.analyzers._common import make_finding
from jaxdoctor.trace.analyzers._walk import Analyzer, Scope

_NAMES = {
    "debug_print": "jax.debug.print",
    "debug_callback": "jax.debug.callback",
    "pure_callback": "jax.pure_callback",
    "io_callback": "io_callback",
    "callback": "a host callback",
}


class HostCallbackInLoopAnalyzer(Analyzer):
    code = HostCallbackInLoop.code

    def __init__(self, walk) -> None:
        super().__init__(walk)
        self.findings: dict = {}

    def on_eqn(self, eqn, scope: Scope) -> None:
        name = ji.primitive_name(eqn)
        if name not in ji.CALLBACK_PRIMITIVES:
            return
        loop = scope.enclosing_loop(stop_at_cond=True)
        if loop is None or not sm.called_from_user(eqn):
            return
        loc = sm.locate(eqn, scope.parents)
        if loc is None or (loc.path, loc.line) in self.findings:
            return
        mult = loop.multiplier
        kind = {
            "scan": "scan/fori_loop",
            "while_body": "while_loop",
            "while_cond": "while_loop",
        }[loop.kind]
        times = f"{mult} times" if mult is not None else "once per iteration"
        msg = f"`{_NAMES.get(name, name)}` inside a `{kind}` body calls back to the host {times} per call"
        self.findings[(loc.path, loc.line)] = make_finding(
            HostCallbackInLoop, loc, msg, {"primitive": name, "calls": mult}
        )

    def finish(self) -> list:
        return list(self.findings.values())
