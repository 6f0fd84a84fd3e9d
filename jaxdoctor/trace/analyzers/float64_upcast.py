"""JD508 float64-upcast: float32 values silently promoted to float64.

Only possible with x64 enabled. A program that enabled x64 on purpose and computes in float64
(float64 inputs) is left alone; what is reported is an implicit promotion of a narrower float to
float64 (a NumPy float64 scalar or array, `np.pi * x` with a NumPy constant, a float64 default
dtype) in a function whose float inputs are all float32 or narrower. An explicit `.astype`
is taken as intended.
"""

from __future__ import annotations

from jaxdoctor.rules.jaxpr import Float64Upcast
from jaxdoctor.trace import jax_internals as ji
from jaxdoctor.trace import source_map as sm
from jaxdoctor.trace.analyzers._common import make_finding
from jaxdoctor.trace.analyzers._walk import Analyzer, Scope

_WIDE = ("float64", "complex128")
_NARROW = ("float32", "float16", "bfloat16")


class Float64UpcastAnalyzer(Analyzer):
    code = Float64Upcast.code

    def __init__(self, walk) -> None:
        super().__init__(walk)
        self.findings: dict = {}
        invars = walk.closed.jaxpr.invars
        dts = [ji.dtype_name(ji.aval_of(v)) for v in invars]
        self.enabled = not any(d in _WIDE for d in dts)

    def on_eqn(self, eqn, scope: Scope) -> None:
        if not self.enabled or ji.primitive_name(eqn) != "convert_element_type":
            return
        src, dst = (
            ji.dtype_name(ji.aval_of(eqn.invars[0])),
            ji.dtype_name(ji.aval_of(eqn.outvars[0])),
        )
        if dst not in _WIDE or src not in _NARROW or not ji.is_implicit_promotion(eqn):
            return
        loc = sm.locate(eqn, scope.parents)
        if loc is None or (loc.path, loc.line) in self.findings:
            return
        shape = ji.aval_str(ji.aval_of(eqn.invars[0]))
        msg = f"`{shape}` is promoted to `{dst}` by mixing it with a {dst} value (x64 is on)"
        self.findings[(loc.path, loc.line)] = make_finding(
            Float64Upcast, loc, msg, {"from": src, "to": dst, "shape": shape}
        )

    def finish(self) -> list:
        return list(self.findings.values())
