"""JD536 mesh-mistake: a PartitionSpec that does not fit its mesh.

JAX raises for most of them, from deep inside itself (`IndivisibleError` in
`jax/_src/sharding.py`, "Resource axis: batch of P('batch',) is not found in mesh" in
`named_sharding.py`, `DuplicateSpecError`); `trace.explain` sends those here to be told at the
user's line with the axis and the dimension. One mistake raises nothing: a
`with_sharding_constraint` inside `jit` on a dimension its axes do not divide is padded
silently by XLA; it is read from the jaxpr of each compiled function.
"""

from __future__ import annotations

import re

from jaxdoctor.findings import Finding, Severity
from jaxdoctor.rules.sharding import MeshMistake
from jaxdoctor.trace.sharding._common import finding, user_location
from jaxdoctor.trace.sharding.program import Program

_INDIVISIBLE = re.compile(
    r"spec=(?P<spec>P\(.*?\))(?:, memory_kind=\w+)?\) implies that array axis (?P<dim>\d+) is partitioned "
    r"(?P<parts>\d+) times, but the dimension size is (?P<size>\d+)(?: \(full shape: (?P<shape>\([^)]*\)))?")
_INDIVISIBLE_EXPLICIT = re.compile(
    r"Sharding spec (?P<spec>\(.*?\)) implies that array axis (?P<dim>\d+) is partitioned (?P<parts>\d+) "
    r"times, but does not evenly divide the dimension size (?P<size>\d+)(?:\. Got shape: (?P<shape>\([^)]*\)))?")
_UNKNOWN = re.compile(r"Resource axis: (?P<axis>\S+) of (?P<spec>P\(.*?\)) is not found in mesh: (?P<mesh>\(.*?\))")
_DUPLICATE = re.compile(r"but (?P<spec>P\(.*?\)) has duplicate entries for `(?P<axis>[^`]+)`")
_SHARD_MAP_AXIS = re.compile(r"shard_map (?:in|out)_specs argument must refer to an axis")
_SHARD_MAP_DIV = re.compile(r"shard_map applied to the function .* not evenly divisible")
_RANK = re.compile(r"is only valid for values of rank at least (?P<need>\d+), but was applied to a value of rank (?P<rank>\d+)")


def is_mesh_error(exc: BaseException) -> bool:
    names = {c.__name__ for c in type(exc).__mro__}
    if names & {"IndivisibleError", "DuplicateSpecError"}:
        return True
    text = str(exc)
    return any(p.search(text) for p in (_INDIVISIBLE, _INDIVISIBLE_EXPLICIT, _UNKNOWN, _DUPLICATE,
                                       _SHARD_MAP_AXIS, _SHARD_MAP_DIV, _RANK))


def explain_message(exc: BaseException, snippet: str, declared_in: str | None = None) -> tuple[str, dict]:
    """The message for a mesh error raised at the user's line `snippet` (or, `declared_in`, the
    line giving the jitted function its `out_shardings`/`in_shardings`), and its details."""
    text = str(exc)
    m = _INDIVISIBLE.search(text) or _INDIVISIBLE_EXPLICIT.search(text)
    if m:
        spec = m.group("spec")
        if not spec.startswith("P"):
            spec = "P" + spec
        dim, parts, size = int(m.group("dim")), int(m.group("parts")), int(m.group("size"))
        axis = _axis_of(spec, dim)
        shape = f" of shape {m.group('shape')}" if m.group("shape") else ""
        whose = f"the `{declared_in}` " if declared_in else ""
        return (f"{snippet}: {whose}{spec} splits dimension {dim}{shape} (size {size}) into {parts} pieces"
                + (f" over `{axis}`" if axis else "") + f", and {parts} does not divide {size}",
                {"spec": spec, "dimension": dim, "size": size, "parts": parts, "axis": axis})
    m = _UNKNOWN.search(text)
    if m:
        axes = [a.strip(" '\"") for a in m.group("mesh").strip("()").split(",") if a.strip(" '\"")]
        return (f"{snippet}: {m.group('spec')} names the axis `{m.group('axis')}`, but the mesh has only "
                + ", ".join(f"`{a}`" for a in axes),
                {"spec": m.group("spec"), "axis": m.group("axis"), "mesh_axes": axes})
    m = _DUPLICATE.search(text)
    if m:
        return (f"{snippet}: {m.group('spec')} uses the mesh axis `{m.group('axis')}` for two dimensions; "
                "an axis can split one dimension only",
                {"spec": m.group("spec"), "axis": m.group("axis")})
    m = _SHARD_MAP_AXIS.search(text)
    if m:
        manual = re.search(r"manual \(frozenset\(\{(?P<axes>[^}]*)\}\)\)", text)
        refs = re.findall(r"(in_specs|out_specs)\S* refers to '([^']+)'", text)
        axes = [a.strip(" '\"") for a in manual.group("axes").split(",")] if manual else []
        if refs:
            which, axis = refs[0]
            return (f"{snippet}: `shard_map`'s {which} name the axis `{axis}`, but the mesh has only "
                    + ", ".join(f"`{a}`" for a in sorted(axes)), {"axis": axis, "mesh_axes": sorted(axes)})
    m = _RANK.search(text)
    if m:
        return (f"{snippet}: the PartitionSpec has {m.group('need')} entries but the array has rank "
                f"{m.group('rank')}", {"rank": int(m.group("rank"))})
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return f"{snippet}: the sharding does not fit the mesh: {first}", {}


def declaration(exc: BaseException) -> tuple[str, int, str] | None:
    """(path, line, "out_shardings"/"in_shardings") of the `jax.jit(..., out_shardings=...)` that
    declared the spec jit rejected, when the error comes from checking those (the call is only
    where it surfaced)."""
    import inspect

    from jaxdoctor.trace import xla_internals as xi
    from jaxdoctor.trace.frames import is_user_file
    from jaxdoctor.trace.sharding._common import jit_keyword_line

    found = xi.sharding_argument_of_error(exc)
    if found is None:
        return None
    fun, which = found
    try:
        fun = inspect.unwrap(fun)
        path, line = inspect.getsourcefile(fun), inspect.getsourcelines(fun)[1]
    except (TypeError, OSError, ValueError):
        return None
    if not path or not is_user_file(path):
        return None
    return path, jit_keyword_line(path, line, getattr(fun, "__name__", ""), (which,)), which


def _axis_of(spec: str, dim: int) -> str | None:
    inner = spec[spec.find("(") + 1 : spec.rfind(")")]
    entries, depth, cur = [], 0, ""
    for ch in inner:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            entries.append(cur.strip())
            cur = ""
            continue
        cur += ch
    if cur.strip():
        entries.append(cur.strip())
    if dim >= len(entries) or entries[dim] == "None":
        return None
    return entries[dim].strip("()").replace("'", "").replace(" ", "").rstrip(",")


def analyze(prog: Program) -> list[Finding]:
    """`with_sharding_constraint` on a dimension its mesh axes do not divide: XLA pads silently."""
    out = []
    for c in prog.constraints:
        if not c.uneven:
            continue
        loc = user_location(c.frames)
        if loc is None:
            continue
        dim, size, axes, parts = c.uneven[0]
        pad = -(-size // parts) * parts - size
        axes_text = ", ".join(f"`{a}`" for a in axes)
        msg = (f"{c.spec} splits dimension {dim} of `{c.dtype}[{','.join(map(str, c.shape))}]` (size {size}) "
               f"over {axes_text} ({parts} devices), and {parts} does not divide {size}: XLA pads it "
               f"silently to {size + pad} ({pad} padding rows of work and memory)")
        f = finding(MeshMistake, loc, msg, {"spec": c.spec, "dimension": dim, "size": size,
                                            "axes": list(axes), "parts": parts, "padding": pad,
                                            "function": prog.name})
        out.append(_warning(f))
    return out


def _warning(f: Finding) -> Finding:
    from dataclasses import replace

    return replace(f, severity=Severity.WARNING)
