"""JD530 collective-in-loop: activations moved between devices on every iteration of a loop.

Each collective of the optimized module that sits in a `while` body (what `scan`, `fori_loop`
and `while_loop` become) is a candidate. Not reported: all-reduce (the per-layer gradient sum of
data parallelism, the row-parallel matmul of tensor parallelism), a gather of something the loop
never changes (FSDP's per-layer weight gather: it is the design), the gradient reductions of the
backward pass, and the collectives the user wrote in a `shard_map` (a ring's `ppermute`). One finding per user line, with the bytes per iteration and the trip count.
"""

from __future__ import annotations

from collections import defaultdict

from jaxdoctor.findings import Finding
from jaxdoctor.rules.sharding import CollectiveInLoop
from jaxdoctor.trace.sharding._common import blame, finding, fmt_bytes, snippet, user_location, where
from jaxdoctor.trace.sharding.program import LoopCollective, Program

_ACTIVATION_KINDS = ("all-gather", "all-to-all", "collective-permute", "reduce-scatter", "ragged-all-to-all")
#: JAX's own collectives: one the user wrote in a `shard_map` (a ring's `ppermute`) is meant
_WRITTEN = frozenset({"all_gather", "all_to_all", "ppermute", "psum_scatter", "reduce_scatter", "psum",
                      "pmax", "pmin", "ragged_all_to_all", "all_gather_invariant", "pbroadcast", "pshuffle"})


def flagged(c: LoopCollective) -> bool:
    if c.opcode not in _ACTIVATION_KINDS or c.of_loop_invariant:
        return False
    if c.op_name.rsplit("/", 1)[-1].split("[", 1)[0] in _WRITTEN:
        return False
    return not (c.backward and c.opcode == "reduce-scatter")


def analyze(prog: Program) -> list[Finding]:
    groups: dict[tuple, list[LoopCollective]] = defaultdict(list)
    blamed: dict[tuple, tuple] = {}
    for c in prog.collectives:
        if not flagged(c):
            continue
        loc, constraint = blame(prog, c.frames)
        if loc is None:
            continue
        key = (loc.path, loc.line)
        groups[key].append(c)
        blamed.setdefault(key, (loc, constraint))
    out = []
    for key, items in groups.items():
        loc, constraint = blamed[key]
        per_iter = sum(c.device_nbytes for c in items)
        trips = max((c.trip_count or 0) for c in items) or None
        kinds = sorted({c.opcode for c in items})
        loop_loc = user_location(items[0].loop_frames)
        what = ", ".join(f"`{k}`" for k in kinds)
        shapes = ", ".join(sorted({c.shape for c in items}))
        loop_text = f"the loop at line {loop_loc.line}" if loop_loc is not None else "a loop"
        times = f"{trips} iterations: {fmt_bytes(per_iter * trips)} per device per call" if trips else \
            "an iteration count XLA does not know"
        msg = (f"{what} of {shapes} ({fmt_bytes(per_iter)} per device) runs in every iteration of "
               f"{loop_text} ({times}){where(prog)}")
        if constraint is not None:
            msg += (f": {snippet(loc)} asks for {constraint.spec} inside the loop, and XLA moves the "
                    f"activations on each iteration to satisfy it")
        else:
            msg += f": {snippet(loc)} needs its operands on other devices than where the loop keeps them"
        details = {"collectives": kinds, "shapes": sorted({c.shape for c in items}),
                   "bytes_per_iteration": per_iter, "iterations": trips,
                   "loop_line": loop_loc.line if loop_loc is not None else None,
                   "function": prog.name}
        if constraint is not None:
            details["constraint"] = constraint.spec
        out.append(finding(CollectiveInLoop, loc, msg, details))
    return out
