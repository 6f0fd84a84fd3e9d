"""JD506 large-captured-constant: a big array closed over by a traced function.

A closed-over array becomes a constant of the jaxpr: it is baked into the compiled program,
copied to the device at every compile, and a new value means a new compile. Reported at the
first user line that reads it.
"""

from __future__ import annotations

from jaxdoctor.rules.jaxpr import LargeCapturedConstant
from jaxdoctor.trace import jax_internals as ji
from jaxdoctor.trace import source_map as sm
from jaxdoctor.trace.analyzers._common import MiB, fmt_bytes, make_finding
from jaxdoctor.trace.analyzers._walk import Analyzer, Scope

#: constants at least this large are reported
MIN_CONST_BYTES = 1 * MiB


class LargeCapturedConstantAnalyzer(Analyzer):
    code = LargeCapturedConstant.code

    def __init__(self, walk) -> None:
        super().__init__(walk)
        self.findings: dict = {}

    def on_jaxpr(self, scope: Scope) -> None:
        for var, value in zip(scope.jaxpr.constvars, scope.consts):
            if ji.is_tracer(value):  # a value of an enclosing trace (AD residuals), not an array
                continue
            nbytes = int(getattr(value, "nbytes", 0) or 0)
            if nbytes < MIN_CONST_BYTES or id(value) in self.findings:
                continue
            users = self.walk.users(scope.jaxpr).get(var, [])
            loc = None
            for e in users:
                loc = sm.locate(e, scope.parents)
                if loc is not None:
                    break
            if loc is None and scope.eqn is not None:
                loc = sm.locate(scope.eqn, scope.parents[1:])
            if loc is None:
                continue
            shape = ji.aval_str(ji.aval_of(var))
            msg = (
                f"A closed-over array {shape} ({fmt_bytes(nbytes)}) is embedded in the traced program as a "
                f"constant: it is copied into every compile, and a new value means a recompile"
            )
            self.findings[id(value)] = make_finding(
                LargeCapturedConstant, loc, msg, {"shape": shape, "bytes": nbytes}
            )

    def finish(self) -> list:
        return list(self.findings.values())
