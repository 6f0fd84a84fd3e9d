"""The sharding doctor (DESIGN §9): every jitted function compiled for more than one device is
read back from XLA's optimized module and checked by one small module per rule (JD530–JD537).

    findings = analyze_program(program)        # a `program.Program`, built by `build.build`

`watch.ShardingWatch` (installed in the trace child) builds the programs while the user's code
runs, or while `--inputs` are compiled on a mesh; `host_transfer` watches device-to-host fetches.
"""

from __future__ import annotations

from collections.abc import Callable

from jaxdoctor.findings import Finding, unique
from jaxdoctor.trace.sharding import (
    collective_in_loop,
    device_memory,
    involuntary_resharding,
    mesh_mistake,
    replicated_giant,
    unsharded_input,
    unusable_donation,
)
from jaxdoctor.trace.sharding.program import Program

ANALYZERS: tuple[Callable[[Program], list[Finding]], ...] = (
    collective_in_loop.analyze,
    involuntary_resharding.analyze,
    replicated_giant.analyze,
    device_memory.analyze,
    unusable_donation.analyze,
    unsharded_input.analyze,
    mesh_mistake.analyze,
)


def analyze_program(prog: Program) -> list[Finding]:
    """Every sharding finding of one compiled function (multi-device rules only when it spans
    more than one device)."""
    found: list[Finding] = []
    for analyzer in ANALYZERS:
        found.extend(analyzer(prog))
    return sorted(unique(found), key=lambda f: f.sort_key)
