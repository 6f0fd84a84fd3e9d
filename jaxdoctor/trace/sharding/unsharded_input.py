"""JD535 unsharded-input: a batch replicated on every device while the parameters are sharded.

Read from the compiled input shardings: a batch-like argument (`batch`, `x`, `images`, ...)
whose sharding is fully replicated, in a function where another argument is split over the
mesh. A NumPy batch is copied from the host to every device on each call; a replicated device
array makes every device hold (and process) the whole batch.

A batch committed to one device (`jax.device_put(batch, jax.devices()[0])`) does not compile at
all: jit raises "Received incompatible devices for jitted computation"; `trace.explain` sends
that error here (`is_one_device_error`, `explain_message`).
"""

from __future__ import annotations

import re

from jaxdoctor.findings import Finding
from jaxdoctor.rules.sharding import UnshardedInput
from jaxdoctor.trace.sharding._common import call_location, finding, fmt_bytes, where
from jaxdoctor.trace.sharding.batch import is_batch_like
from jaxdoctor.trace.sharding.program import Program
from jaxdoctor.trace.source_map import SourceLocation


def analyze(prog: Program) -> list[Finding]:
    if prog.num_devices <= 1 or not prog.mesh:
        return []
    sharded = [a for a in prog.args if a.kept and a.sharded_axes and not is_batch_like(a)]
    if not sharded:
        return []
    groups: dict[tuple, list] = {}
    places = {}
    for a in prog.args:
        if not a.kept or not a.replicated or not is_batch_like(a):
            continue
        axis = _data_axis(prog.mesh, a.shape[0])
        if axis is None:
            continue
        loc = SourceLocation.at(a.placed.path, a.placed.line) if a.placed is not None else call_location(prog)
        if loc is None:
            continue
        key = (loc.path, loc.line)
        places[key] = loc
        groups.setdefault(key, []).append((a, axis))
    out = []
    for key, items in groups.items():
        a, axis = items[0]
        size = prog.mesh[axis]
        total = sum(x.nbytes for x, _ in items)
        host = all(x.host_array for x, _ in items)
        names = ", ".join(f"`{x.name}` ({x.dtype}[{','.join(map(str, x.shape))}])" for x, _ in items[:4])
        if len(items) > 4:
            names += f" and {len(items) - 4} more"
        what = f"the batch {names}" + (f", {fmt_bytes(total)} in all," if len(items) > 1 else "")
        if host:
            how = (f"{'is' if len(items) == 1 else 'are'} NumPy: each call copies all of it from the host to "
                   f"each of the {prog.num_devices} devices ({fmt_bytes(total * prog.num_devices)} per step)")
        else:
            how = (f"{'is' if len(items) == 1 else 'are'} replicated: each of the {prog.num_devices} devices "
                   f"holds and processes all {fmt_bytes(total)} on every step")
        msg = (f"{what} of `{prog.name}` {how}, while `{sharded[0].name}` is sharded {sharded[0].spec}"
               f"{where(prog)}; with P('{axis}') each device gets {fmt_bytes(total // size)}")
        out.append(finding(UnshardedInput, places[key], msg, {
            "arguments": [x.name for x, _ in items], "bytes": total, "host_array": host,
            "devices": prog.num_devices,
            "copied_per_step": total * prog.num_devices if host else total,
            "suggested_spec": f"P('{axis}')", "function": prog.name,
        }, fix_title=f"Shard the batch over `{axis}`: `jax.device_put(batch, NamedSharding(mesh, P('{axis}')))`"))
    return out


def _data_axis(mesh: dict[str, int], leading: int) -> str | None:
    """The mesh axis a batch is split over: one named like data/batch/dp/fsdp, else the first,
    provided its size divides the batch."""
    names = list(mesh)
    preferred = [n for n in names if n.lower() in ("data", "batch", "dp", "fsdp", "replica", "x")]
    for n in preferred + names:
        if mesh[n] > 1 and leading % mesh[n] == 0:
            return n
    return None


_INCOMPATIBLE = re.compile(r"Received incompatible devices for jitted computation")
_ARGUMENT = re.compile(r"argument (?P<name>\S+) of (?P<fn>\S+) with shape (?P<shape>\S+) and with device ids "
                       r"\[(?P<ids>[^\]]*)\]")


def is_one_device_error(exc: BaseException) -> bool:
    return bool(_INCOMPATIBLE.search(str(exc)))


def _arguments(exc: BaseException) -> list[tuple[str, str, str, list[str]]]:
    return [(m.group("name"), m.group("fn"), m.group("shape"), [i.strip() for i in m.group("ids").split(",") if i.strip()])
            for m in _ARGUMENT.finditer(str(exc))]


def lone_placement(exc: BaseException) -> tuple[str, int] | None:
    """Where the program put the argument that sits on fewer devices than the others."""
    from jaxdoctor.trace.sharding.placements import placement_of_shape

    args = _arguments(exc)
    if len(args) < 2:
        return None
    lone = min(args, key=lambda a: len(a[3]))
    return placement_of_shape(lone[2], "one device") if len(lone[3]) == 1 else None


def explain_message(exc: BaseException, snippet: str) -> tuple[str, dict]:
    """The message and details for jit's incompatible-devices error, at the user's line `snippet`."""
    args = _arguments(exc)
    if len(args) < 2:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"{snippet}: the arguments live on different devices: {first}", {}
    lone = min(args, key=lambda a: len(a[3]))
    wide = max(args, key=lambda a: len(a[3]))
    n = len(lone[3])
    msg = (f"{snippet}: `{lone[0]}` ({lone[2]}) of `{lone[1]}` sits on {n} device{'s' if n != 1 else ''} "
           f"({', '.join(lone[3])}) while `{wide[0]}` spans {len(wide[3])}: jit cannot run them together; put it "
           "on the mesh, split over the data axis")
    return msg, {"argument": lone[0], "shape": lone[2], "devices": n, "other": wide[0]}
