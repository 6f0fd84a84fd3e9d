"""JD531 involuntary-resharding: XLA's "[SPMD] Involuntary full rematerialization" warning, read
from the compiler's log while the function compiled, explained at the user's line.

XLA names an HLO operation (`%add.2`) and two shardings in its own notation
(`{devices=[2,1,4]<=[4,2]T(1,0)}`); the operation's `stack_frame_id` gives the Python line, the
jaxpr's `with_sharding_constraint` next to it the real cause, and the mesh turns both shardings
into PartitionSpecs.
"""

from __future__ import annotations

from jaxdoctor.findings import Finding
from jaxdoctor.rules.sharding import InvoluntaryResharding
from jaxdoctor.trace.sharding._common import blame, call_location, finding, fmt_bytes, snippet, where
from jaxdoctor.trace.sharding.program import Program


def analyze(prog: Program) -> list[Finding]:
    out = []
    seen = set()
    for r in prog.reshards:
        loc, constraint = blame(prog, r.frames)
        loc = loc or call_location(prog)
        if loc is None:
            continue
        key = (loc.path, loc.line, r.source, r.target)
        if key in seen:
            continue
        seen.add(key)
        tensor = f"`{r.shape}`" + (f" ({fmt_bytes(r.nbytes)})" if r.nbytes else "") if r.shape else "a tensor"
        msg = (f"XLA cannot reshard {tensor} from {r.source} to {r.target} efficiently: it replicates "
               f"the whole tensor on every device and then cuts it again (\"involuntary full "
               f"rematerialization\"){where(prog)}")
        if constraint is not None:
            msg += f"; {snippet(loc)} asks for {constraint.spec}"
        out.append(finding(InvoluntaryResharding, loc, msg, {
            "from": r.source, "to": r.target, "shape": r.shape, "bytes": r.nbytes, "operation": r.op,
            "function": prog.name,
        }))
    return out
