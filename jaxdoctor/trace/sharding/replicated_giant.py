"""JD532 replicated-giant: a large parameter or optimizer-state array that every device holds in
full, while the mesh has an axis that could split it.

Read from the compiled input shardings. Batch-like inputs are JD535's. The size threshold is
`replicated_threshold` (default 64 MiB). Reported where `jax.device_put` placed the array when the
doctor saw it, else at the call.
"""

from __future__ import annotations

from jaxdoctor.findings import Finding
from jaxdoctor.rules.sharding import ReplicatedGiant
from jaxdoctor.trace.sharding._common import call_location, finding, fmt_bytes, where
from jaxdoctor.trace.sharding.batch import is_batch_like
from jaxdoctor.trace.sharding.program import Arg, Program
from jaxdoctor.trace.source_map import SourceLocation

DEFAULT_THRESHOLD = 64 << 20


def best_split(shape: tuple[int, ...], mesh: dict[str, int]) -> tuple[dict[int, str], int]:
    """Mesh axes that divide the array's dimensions (largest first, each axis once) → the spec
    entries per dimension and how many pieces that makes."""
    axes = sorted(((size, name) for name, size in mesh.items() if size > 1), reverse=True)
    used: dict[int, str] = {}
    parts = 1
    for size, name in axes:
        for d in sorted(range(len(shape)), key=lambda i: -shape[i]):
            if d in used or shape[d] % size:
                continue
            used[d] = name
            parts *= size
            break
    return used, parts


def spec_text(shape: tuple[int, ...], split: dict[int, str]) -> str:
    entries = [repr(split[d]) if d in split else "None" for d in range(len(shape))]
    while entries and entries[-1] == "None":
        entries.pop()
    return f"P({', '.join(entries)})"


def analyze(prog: Program) -> list[Finding]:
    if prog.num_devices <= 1 or not prog.mesh:
        return []
    threshold = int(prog.options.get("replicated_threshold") or DEFAULT_THRESHOLD)
    groups: dict[tuple, list[tuple[Arg, str, int]]] = {}
    places = {}
    for a in prog.args:
        if not a.kept or not a.replicated or a.nbytes < threshold or is_batch_like(a):
            continue
        split, parts = best_split(a.shape, prog.mesh)
        if parts <= 1:
            continue
        loc = _location(prog, a)
        if loc is None:
            continue
        key = (loc.path, loc.line)
        places[key] = loc
        groups.setdefault(key, []).append((a, spec_text(a.shape, split), parts))
    out = []
    for key, items in groups.items():
        items.sort(key=lambda t: -t[0].nbytes)
        a, spec, parts = items[0]
        total = sum(x.nbytes for x, _, _ in items)
        sharded = sum(x.nbytes // p for x, _, p in items)
        head = (f"`{a.name}` ({a.dtype}[{','.join(map(str, a.shape))}], {fmt_bytes(a.nbytes)})")
        if len(items) > 1:
            more = ", ".join(f"`{x.name}`" for x, _, _ in items[1:4]) + (" ..." if len(items) > 4 else "")
            head = f"{len(items)} arrays, {fmt_bytes(total)} in all ({head}, {more}),"
        msg = (f"{head} {'are' if len(items) > 1 else 'is'} replicated on all {prog.num_devices} devices of "
               f"`{prog.name}`{where(prog)}: {fmt_bytes(total)} per device now, {fmt_bytes(sharded)} sharded"
               f" (e.g. {spec} for `{a.name}`)")
        out.append(finding(ReplicatedGiant, places[key], msg, {
            "arguments": [x.name for x, _, _ in items], "bytes": total, "bytes_per_device": total,
            "bytes_per_device_sharded": sharded, "suggested_spec": spec, "function": prog.name,
        }))
    return out


def _location(prog: Program, a: Arg) -> SourceLocation | None:
    if a.placed is not None:
        return SourceLocation.at(a.placed.path, a.placed.line)
    return call_location(prog)
