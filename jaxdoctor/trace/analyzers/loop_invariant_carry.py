"""JD502 loop-invariant-carry: a large loop carry the body hands back unchanged.

JAX already turns a carry returned as-is into a loop constant, so what is left in the jaxpr is a
carry the body passes through an identity: `W * 1.0`, `W + 0`, `stop_gradient(W)`, a `copy`, a
same-dtype cast, an identity `jit`. It is still a carry: copied every iteration, and under `grad`
saved once per iteration. Reported at the loop's line when the carry is large.
"""

from __future__ import annotations

from typing import Any

from jaxdoctor.rules.jaxpr import LoopInvariantCarry
from jaxdoctor.trace import jax_internals as ji
from jaxdoctor.trace import source_map as sm
from jaxdoctor.trace.analyzers._common import MiB, fmt_bytes, make_finding
from jaxdoctor.trace.analyzers._walk import Analyzer, Scope

#: carries smaller than this are never reported
MIN_CARRY_BYTES = 4 << 10
#: ... and the carry times the trip count must reach this
MIN_TOTAL_BYTES = 1 * MiB


def _is_one(atom: Any) -> bool:
    v = ji.literal_value(atom)
    try:
        return v is not None and float(v) == 1.0
    except (TypeError, ValueError):
        return False


def _is_zero(atom: Any) -> bool:
    v = ji.literal_value(atom)
    try:
        return v is not None and float(v) == 0.0
    except (TypeError, ValueError):
        return False


def _identity_source(var: Any, producers: dict, depth: int = 0) -> Any:
    """Follow identity-like equations back from `var`; return the var it is an identity of."""
    if depth > 8 or ji.is_literal(var):
        return var
    e = producers.get(var)
    if e is None:
        return var
    name = ji.primitive_name(e)
    ins = e.invars
    same = lambda a: ji.aval_str(ji.aval_of(a)) == ji.aval_str(ji.aval_of(var))
    nxt = None
    if name in ("stop_gradient", "copy", "copy_p", "optimization_barrier") and len(
        ins
    ) == len(e.outvars):
        nxt = ins[e.outvars.index(var)]
    elif name == "convert_element_type" and same(ins[0]):
        nxt = ins[0]
    elif name == "mul" and len(ins) == 2:
        if _is_one(ins[1]) and same(ins[0]):
            nxt = ins[0]
        elif _is_one(ins[0]) and same(ins[1]):
            nxt = ins[1]
    elif name == "div" and _is_one(ins[1]) and same(ins[0]):
        nxt = ins[0]
    elif name in ("add", "sub") and len(ins) == 2:
        if _is_zero(ins[1]) and same(ins[0]):
            nxt = ins[0]
        elif name == "add" and _is_zero(ins[0]) and same(ins[1]):
            nxt = ins[1]
    elif name == "reshape" and same(ins[0]):
        nxt = ins[0]
    else:
        for sub in ji.sub_jaxprs(e):
            if sub.kind != "call":
                continue
            k = e.outvars.index(var)
            inner_prod = {o: q for q in sub.jaxpr.eqns for o in q.outvars}
            src = _identity_source(sub.jaxpr.outvars[k], inner_prod, depth + 1)
            if src in sub.jaxpr.invars:
                nxt = ins[sub.jaxpr.invars.index(src)]
            break
    if nxt is None:
        return var
    return _identity_source(nxt, producers, depth + 1)


class LoopInvariantCarryAnalyzer(Analyzer):
    code = LoopInvariantCarry.code

    def __init__(self, walk) -> None:
        super().__init__(walk)
        self.findings: list = []

    def on_eqn(self, eqn: Any, scope: Scope) -> None:
        name = ji.primitive_name(eqn)
        if name == "scan":
            (sub,) = ji.sub_jaxprs(eqn)
            nc, ncarry, length = ji.scan_layout(eqn)
            carry_in = sub.jaxpr.invars[nc : nc + ncarry]
            carry_out = sub.jaxpr.outvars[:ncarry]
            trip = length
        elif name == "while":
            _, body = ji.sub_jaxprs(eqn)
            _, bn = ji.while_layout(eqn)
            carry_in = body.jaxpr.invars[bn:]
            carry_out = body.jaxpr.outvars
            sub = body
            trip = ji.while_trip_count(eqn)
        else:
            return
        producers = {o: q for q in sub.jaxpr.eqns for o in q.outvars}
        for i, (vin, vout) in enumerate(zip(carry_in, carry_out)):
            if ji.is_literal(vout):
                continue
            nbytes = ji.aval_nbytes(ji.aval_of(vin))
            total = nbytes * (trip if trip is not None else 2)
            if nbytes < MIN_CARRY_BYTES or total < MIN_TOTAL_BYTES:
                continue
            if _identity_source(vout, producers) is not vin:
                continue
            loc = sm.locate(eqn, scope.parents)
            if loc is None:
                continue
            shape = ji.aval_str(ji.aval_of(vin))
            loop = "scan" if name == "scan" else "while_loop"
            trip_txt = f"{trip} iterations" if trip is not None else "every iteration"
            msg = (
                f"Loop carry {i} ({shape}, {fmt_bytes(nbytes)}) is returned unchanged by the `{loop}` body "
                f"but stays a carry: it is copied for {trip_txt} and, under `grad`, saved per iteration"
            )
            self.findings.append(
                make_finding(
                    LoopInvariantCarry,
                    loc,
                    msg,
                    {
                        "carry_index": i,
                        "shape": shape,
                        "bytes": nbytes,
                        "trip_count": trip,
                    },
                )
            )

    def finish(self) -> list:
        return self.findings
