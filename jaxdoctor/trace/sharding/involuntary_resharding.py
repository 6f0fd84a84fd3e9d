"""JD531 involuntary-resharding: XLA's "[SPMD] Involuntary full rematerialization" warning, read
from the compiler's log while the function compiled, explained at the user's line.

XLA names an HLO operation (`%add.2`) and two shardings in its own notation
(`{devices=[2,1,4]<=[4,2]T(1,0)}`); the operation's `stack_frame_id` gives the Python line, the
jaxpr's `with_sharding_constraint` next to it the real cause, and the mesh turns both shardings
into PartitionSpecs. An operation XLA recorded no Python line for (a parameter, a copy) is
blamed on the constraint that asks for one of the two shardings, else on the call.
"""

from __future__ import annotations

import re
from collections import defaultdict

from jaxdoctor.findings import Finding
from jaxdoctor.rules.sharding import InvoluntaryResharding
from jaxdoctor.trace.sharding._common import (
    blame,
    call_location,
    constraint_location,
    finding,
    fmt_bytes,
    snippet,
    where,
)
from jaxdoctor.trace.sharding.program import Program, Reshard


def same_spec(a: str, b: str) -> bool:
    """`P(None, 'model')` and `P(None, 'model', None)` are the same sharding."""
    def norm(s: str) -> str:
        return re.sub(r"(,\s*None)+\)$", ")", s.replace(" ", ""))

    return norm(a) == norm(b)


def analyze(prog: Program) -> list[Finding]:
    groups: dict[tuple, list[Reshard]] = defaultdict(list)
    places: dict[tuple, tuple] = {}
    for r in prog.reshards:
        loc, constraint = blame(prog, r.frames)
        if loc is None:
            for c in prog.constraints:
                if same_spec(c.spec, r.target) or same_spec(c.spec, r.source):
                    loc, constraint = constraint_location(c), c
                    break
        loc = loc or call_location(prog)
        if loc is None:
            continue
        key = (loc.path, loc.line)
        groups[key].append(r)
        if key not in places or (places[key][1] is None and constraint is not None):
            places[key] = (loc, constraint)
    out = []
    for key, items in groups.items():
        loc, constraint = places[key]
        moves, seen = [], set()
        for r in items:
            if (r.source, r.target) not in seen:
                seen.add((r.source, r.target))
                moves.append(f"from {r.source} to {r.target}")
        r = max(items, key=lambda x: x.nbytes)
        tensor = f"`{r.shape}`" + (f" ({fmt_bytes(r.nbytes)})" if r.nbytes else "") if r.shape else "a tensor"
        msg = (f"XLA cannot reshard {tensor} {' and '.join(moves)} efficiently: it replicates the whole "
               f"tensor on every device and then cuts it again (\"involuntary full rematerialization\")"
               f"{where(prog)}")
        if constraint is not None:
            msg += f"; {snippet(loc)} asks for {constraint.spec}"
        out.append(finding(InvoluntaryResharding, loc, msg, {
            "reshardings": [{"from": x.source, "to": x.target, "operation": x.op} for x in items],
            "shape": r.shape, "bytes": r.nbytes, "function": prog.name,
        }))
    return out
