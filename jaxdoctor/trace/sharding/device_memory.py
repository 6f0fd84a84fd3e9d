"""JD533 device-memory-exceeded: the memory one device needs for a jitted function (arguments +
outputs + temporaries − what outputs reuse, XLA's `memory_analysis()` of the compiled program)
against `--device-memory` (bytes, or a named device: `v5e`, `h100`, ...). The largest values
of the optimized module are listed with the user lines that make them."""

from __future__ import annotations

from jaxdoctor.findings import Finding
from jaxdoctor.rules.sharding import DeviceMemoryExceeded
from jaxdoctor.trace.sharding._common import call_location, finding, fmt_bytes, user_location, where
from jaxdoctor.trace.sharding.program import Program


def needed(prog: Program) -> int | None:
    m = prog.memory
    if not m:
        return None
    return m["argument"] + m["output"] + m["temp"] - m.get("alias", 0)


def analyze(prog: Program) -> list[Finding]:
    limit = prog.options.get("device_memory")
    total = needed(prog)
    if not limit or total is None or total <= int(limit):
        return []
    loc = call_location(prog)
    if loc is None:
        return []
    m = prog.memory or {}
    device = prog.options.get("device_name") or f"a device with {fmt_bytes(int(limit))}"
    sized = [(a.device_nbytes, f"the argument `{a.name}` ({fmt_bytes(a.device_nbytes)})") for a in prog.args if a.kept]
    for op in prog.buffers:
        at = user_location(op.frames)
        sized.append((op.device_nbytes, f"`{op.shape}` ({fmt_bytes(op.device_nbytes)})"
                      + (f" made at line {at.line}" if at else "")))
    sized.sort(key=lambda t: -t[0])
    biggest = [text for n, text in sized[:3] if n > 0]
    msg = (f"`{prog.name}` needs {fmt_bytes(total)} per device{where(prog)} (arguments "
           f"{fmt_bytes(m['argument'])}, outputs {fmt_bytes(m['output'])}, temporaries {fmt_bytes(m['temp'])}"
           + (f", {fmt_bytes(m['alias'])} reused" if m.get("alias") else "")
           + f"), more than {device} ({fmt_bytes(int(limit))})")
    if biggest:
        msg += "; the largest values: " + ", ".join(biggest)
    return [finding(DeviceMemoryExceeded, loc, msg, {
        "bytes_per_device": total, "limit": int(limit), "argument_bytes": m["argument"],
        "output_bytes": m["output"], "temp_bytes": m["temp"], "alias_bytes": m.get("alias", 0),
        "largest": [{"shape": op.shape, "bytes": op.device_nbytes,
                     "line": (user_location(op.frames).line if user_location(op.frames) else None)}
                    for op in prog.buffers],
        "function": prog.name,
    })]
