"""One compilation (`xla_internals.CompileRecord`) → the `Program` the sharding analyzers read.

XLA's optimized module gives the per-device shapes, the collectives inside `while` bodies with
their trip counts, the largest values, which donated parameters an output reuses, and the
Python stack of each instruction; JAX's executable gives the compiled input and output
shardings; the jaxpr gives the `with_sharding_constraint` equations (and their neighbours) that
XLA never names; XLA's compiler log gives the involuntary reshardings.
"""

from __future__ import annotations

import re
from typing import Any

from jaxdoctor.trace import jax_internals as ji
from jaxdoctor.trace import xla_internals as xi
from jaxdoctor.trace.sharding.program import (
    Arg,
    Constraint,
    LoopCollective,
    Op,
    Out,
    Placement,
    Program,
    Reshard,
)

#: instructions whose result is no new buffer (views, tuples, the loop itself)
_NO_BUFFER = frozenset({"parameter", "get-tuple-element", "tuple", "bitcast", "while", "conditional",
                        "call", "constant", "after-all", "partition-id", "replica-id",
                        "all-gather-done", "all-reduce-done", "collective-permute-done", "copy-done",
                        "async-done", "optimization-barrier"})
_REMAT = re.compile(r"Involuntary full rematerialization", re.I)


def fmt_spec(spec: Any) -> str:
    """`PartitionSpec('data', None)` → `P('data', None)`."""
    parts = []
    for entry in tuple(spec):
        if entry is None:
            parts.append("None")
        elif isinstance(entry, (tuple, list)):
            inner = ", ".join(repr(a) for a in entry)
            parts.append(f"({inner},)" if len(entry) == 1 else f"({inner})")
        else:
            parts.append(repr(entry))
    return f"P({', '.join(parts)})"


def _axes(spec: Any) -> tuple[str, ...]:
    out: list[str] = []
    for entry in tuple(spec):
        if entry is None:
            continue
        out.extend(entry if isinstance(entry, (tuple, list)) else (entry,))
    return tuple(str(a) for a in out)


def _mesh_of(sharding: Any) -> Any:
    mesh = getattr(sharding, "mesh", None)
    return mesh if mesh is not None and getattr(mesh, "shape", None) else None


def _describe_sharding(sharding: Any, shape: tuple[int, ...], nbytes: int) -> tuple[str | None, bool, tuple, int]:
    """(spec text, fully replicated, mesh axes it is split over, bytes per device)."""
    spec = getattr(sharding, "spec", None)
    try:
        shard = tuple(sharding.shard_shape(shape)) if shape else ()
    except Exception:  # noqa: BLE001 - an unusual sharding
        shard = shape
    per = nbytes
    if shape and all(d for d in shape):
        elems = 1
        for d in shape:
            elems *= d
        shard_elems = 1
        for d in shard:
            shard_elems *= d
        per = nbytes * shard_elems // max(elems, 1)
    replicated = bool(getattr(sharding, "is_fully_replicated", False))
    if spec is None:
        return None, replicated, (), per
    return fmt_spec(spec), replicated, _axes(spec), per


def build(rec: xi.CompileRecord, *, placements: Any = None, call_site: Any = None,
          simulated: str | None = None, options: dict | None = None) -> Program:
    hlo = xi.parse_hlo(rec.hlo_text(), rec.hlo_proto())
    num_devices = max(hlo.num_partitions, 1)
    mesh_obj = _find_mesh(rec)
    mesh = {str(k): int(v) for k, v in dict(mesh_obj.shape).items()} if mesh_obj is not None else {}
    prog = Program(name=rec.name, num_devices=num_devices, mesh=mesh, memory=rec.memory(),
                   call_site=call_site, simulated=simulated, compile_seconds=rec.seconds,
                   options=dict(options or {}))
    prog.def_site = _def_site(rec.function_source)
    _arguments(prog, rec, hlo, placements)
    _outputs(prog, rec)
    if num_devices > 1:
        prog.collectives = _loop_collectives(hlo)
        prog.buffers = _largest_buffers(hlo)
        prog.constraints = _constraints(rec.jaxpr)
        prog.reshards = _reshards(rec.log, hlo, mesh_obj)
    elif prog.options.get("device_memory"):
        prog.buffers = _largest_buffers(hlo)
    return prog


def _find_mesh(rec: xi.CompileRecord) -> Any:
    for s in (*rec.in_shardings, *rec.out_shardings):
        m = _mesh_of(s)
        if m is not None and m.size > 1:
            return m
    for eqn, _ in _equations(rec.jaxpr.jaxpr):
        if ji.primitive_name(eqn) == "sharding_constraint":
            m = _mesh_of(xi.sharding_param(eqn))
            if m is not None:
                return m
    return None


def _def_site(src: str | None) -> tuple[str, int] | None:
    """Where the jitted function is defined, when the user wrote it (not `eqx.filter_jit`'s or
    `nnx.jit`'s wrapper)."""
    from jaxdoctor.trace.frames import is_user_file

    if not src:
        return None
    _, sep, where = src.rpartition(" at ")
    path, _, line = where.rpartition(":")
    if not sep or not line.isdigit() or not is_user_file(path):
        return None
    return path, int(line)


def _arguments(prog: Program, rec: xi.CompileRecord, hlo: xi.Hlo, placements: Any) -> None:
    names = rec.arg_names
    avals = rec.jaxpr.in_avals
    kept = rec.kept
    n_const = len(rec.in_avals) - len(kept)
    param_of = {arg: n_const + j for j, arg in enumerate(kept)}
    sharding_of = {arg: rec.in_shardings[n_const + j] for j, arg in enumerate(kept)
                   if n_const + j < len(rec.in_shardings)}
    prog.jax_warns_donation = any(rec.donated) and not hlo.donor_params
    for i, aval in enumerate(avals):
        shape = ji.aval_shape(aval) or ()
        nbytes = ji.aval_nbytes(aval)
        sharding = sharding_of.get(i)
        if sharding is not None:
            spec, replicated, axes, per = _describe_sharding(sharding, shape, nbytes)
        else:
            spec, replicated, axes, per = None, prog.num_devices > 1, (), nbytes
        param = param_of.get(i)
        arg_type = rec.arg_types[i] if i < len(rec.arg_types) else None
        value = rec.args[i] if rec.args is not None and i < len(rec.args) else None
        placed = placements(value) if placements is not None and value is not None else None
        prog.args.append(Arg(
            index=i, name=names[i] if i < len(names) else f"args[{i}]", shape=shape,
            dtype=ji.dtype_name(aval), nbytes=nbytes, device_nbytes=per, spec=spec,
            replicated=replicated, sharded_axes=axes,
            donated=bool(rec.donated[i]) if i < len(rec.donated) else False,
            aliased=param is not None and param in hlo.aliased_params, kept=param is not None,
            host_array=bool(arg_type[0]) if arg_type else False,
            placed=placed if isinstance(placed, Placement) else None,
        ))


def _outputs(prog: Program, rec: xi.CompileRecord) -> None:
    for i, aval in enumerate(rec.out_avals):
        shape = ji.aval_shape(aval) or ()
        nbytes = ji.aval_nbytes(aval)
        sharding = rec.out_shardings[i] if i < len(rec.out_shardings) else None
        spec, _, _, per = _describe_sharding(sharding, shape, nbytes) if sharding is not None else (None, True, (), nbytes)
        prog.outs.append(Out(i, shape, ji.dtype_name(aval), per, spec))


# --------------------------------------------------------------------------- the optimized module


def _loop_collectives(hlo: xi.Hlo) -> list[LoopCollective]:
    out = []
    for w, _ in hlo.while_loops():
        if not w.body or w.body not in hlo.computations:
            continue
        body = hlo.computations[w.body]
        invariant = _invariant_elements(body, w)
        nested = {c.name for ins in body.instrs if ins.opcode == "while"
                  for c in hlo.called(ins.body or "") + hlo.called(ins.condition or "")}
        for comp in hlo.called(w.body):
            if comp.name in nested:
                continue  # counted with its own loop
            for ins in comp.instrs:
                kind = ins.collective
                if kind is None:
                    continue
                out.append(LoopCollective(
                    opcode=kind, shape=_shape_text(ins.shapes), device_nbytes=ins.nbytes,
                    frames=hlo.frames_of(ins), op_name=ins.op_name, trip_count=w.trip_count,
                    loop_frames=hlo.frames_of(w),
                    of_loop_invariant=comp is body and _from_invariant(body, ins, invariant),
                    backward="transpose(" in ins.op_name,
                ))
    return out


def _shape_text(shapes: tuple) -> str:
    """`f32[2,4]`, or `4 x f32[2,4]` for a tuple of equal pieces (an all-to-all's result)."""
    texts = [str(s) for s in shapes]
    if len(texts) > 1 and len(set(texts)) == 1:
        return f"{len(texts)} x {texts[0]}"
    return ", ".join(texts)


def _invariant_elements(body: xi.Computation, loop: xi.Instr) -> set[int]:
    """Tuple elements of the loop state that the body passes through unchanged, and its counter."""
    param = next((i for i in body.instrs if i.opcode == "parameter"), None)
    root = body.root
    if param is None or root is None or root.opcode != "tuple":
        return set()
    gte = {i.name: i.index for i in body.instrs if i.opcode == "get-tuple-element" and i.operands
           and i.operands[0] == param.name}
    out = set()
    for k, name in enumerate(root.operands):
        src = body.by_name.get(name)
        while src is not None and src.opcode in ("copy", "bitcast") and src.operands:
            src = body.by_name.get(src.operands[0])
        if src is not None and gte.get(src.name) == k:
            out.add(k)
    m = re.search(r'"known_induction_variable":\{"tuple_index":"(\d+)"\}', loop.attrs)
    if m:
        out.add(int(m.group(1)))
    # scalar integer elements are loop counters (the scan index, a fori_loop's i)
    shapes = param.shapes
    for k, s in enumerate(shapes):
        if not s.dims and s.dtype.startswith(("s", "u")):
            out.add(k)
    return out


def _from_invariant(body: xi.Computation, ins: xi.Instr, invariant: set[int]) -> bool:
    """Does the collective's operand come only from loop-invariant state (and constants)?"""
    todo = list(ins.operands)
    seen: set[str] = set()
    saw_state = False
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        src = body.by_name.get(name)
        if src is None:
            continue
        if src.opcode == "get-tuple-element":
            parent = body.by_name.get(src.operands[0]) if src.operands else None
            if parent is not None and parent.opcode == "parameter":
                if src.index not in invariant:
                    return False
                saw_state = True
                continue
        if src.opcode == "parameter":
            return False
        todo.extend(src.operands)
    return saw_state


def _largest_buffers(hlo: xi.Hlo, top: int = 3) -> list[Op]:
    comps = [hlo.entry]
    for w, _ in hlo.while_loops():
        if w.body in hlo.computations:
            comps.append(hlo.computations[w.body])
    seen, ops = set(), []
    for comp in comps:
        for ins in comp.instrs:
            if ins.opcode in _NO_BUFFER or ins.name in seen or len(ins.shapes) != 1:
                continue
            seen.add(ins.name)
            ops.append(Op(ins.opcode, " ".join(map(str, ins.shapes)), ins.nbytes, hlo.frames_of(ins), ins.op_name))
    ops.sort(key=lambda o: -o.device_nbytes)
    return [o for o in ops if o.frames][:top]


def _reshards(log: str, hlo: xi.Hlo, mesh: Any) -> list[Reshard]:
    out = []
    for line in log.splitlines():
        if not _REMAT.search(line):
            continue
        parsed = xi.parse_remat_warning(line)
        if parsed is None:
            continue
        source, target, op_text = parsed
        ins = xi.parse_instruction(op_text) if op_text else None
        frames = hlo.frames.get(ins.frame_id, ()) if ins is not None else ()
        shape, nbytes = "", 0
        if ins is not None and ins.shapes:
            dims = xi.global_dims(ins.shapes[0].dims, source)
            s = xi.Shape(ins.shapes[0].dtype, dims)
            shape, nbytes = str(s), s.nbytes
        src_spec = xi.spec_of_hlo_sharding(source, mesh) if mesh is not None else None
        dst_spec = xi.spec_of_hlo_sharding(target, mesh) if mesh is not None else None
        rank = len(ins.shapes[0].dims) if ins is not None and ins.shapes else 0
        out.append(Reshard(
            source=fmt_spec(_padded(src_spec, rank)) if src_spec is not None else source,
            target=fmt_spec(_padded(dst_spec, rank)) if dst_spec is not None else target,
            shape=shape, nbytes=nbytes, frames=frames, op=(ins.opcode if ins is not None else ""),
        ))
    return out


def _padded(spec: Any, rank: int) -> tuple:
    """A PartitionSpec's entries, with the trailing `None`s XLA's sharding leaves out."""
    entries = tuple(spec)
    return entries + (None,) * max(0, rank - len(entries))


# --------------------------------------------------------------------------- the jaxpr


def _equations(jaxpr: Any, depth: int = 0):
    """(equation, the jaxpr holding it), recursing into every nested jaxpr."""
    for eqn in jaxpr.eqns:
        yield eqn, jaxpr
        if depth < 50:
            for sub in ji.sub_jaxprs(eqn):
                yield from _equations(sub.jaxpr, depth + 1)


def _constraints(closed: Any) -> list[Constraint]:
    out = []
    for eqn, jaxpr in _equations(closed.jaxpr):
        if ji.primitive_name(eqn) != "sharding_constraint":
            continue
        sharding = xi.sharding_param(eqn)
        spec = getattr(sharding, "spec", None)
        if spec is None:
            continue
        aval = ji.aval_of(eqn.invars[0])
        shape = ji.aval_shape(aval) or ()
        mesh = _mesh_of(sharding)
        sizes = {str(k): int(v) for k, v in dict(mesh.shape).items()} if mesh is not None else {}
        uneven = []
        for d, entry in enumerate(tuple(spec)):
            if entry is None or d >= len(shape):
                continue
            axes = tuple(str(a) for a in (entry if isinstance(entry, (tuple, list)) else (entry,)))
            parts = 1
            for a in axes:
                parts *= sizes.get(a, 1)
            if parts > 1 and shape[d] % parts:
                uneven.append((d, shape[d], axes, parts))
        out.append(Constraint(
            frames=ji.eqn_frames(eqn), spec=fmt_spec(spec), shape=shape, dtype=ji.dtype_name(aval),
            neighbours=frozenset(_neighbour_lines(eqn, jaxpr)), uneven=tuple(uneven),
        ))
    return out


def _neighbour_lines(eqn: Any, jaxpr: Any) -> set[tuple[str, int]]:
    """User lines of the equations that make the constraint's operand or use its result."""
    from jaxdoctor.trace.frames import is_user_file

    ins = {v for v in eqn.invars if not ji.is_literal(v)}
    outs = set(eqn.outvars)
    lines: set[tuple[str, int]] = set()
    for other in jaxpr.eqns:
        if other is eqn:
            continue
        if ins & set(other.outvars) or outs & {v for v in other.invars if not ji.is_literal(v)}:
            for fr in ji.eqn_frames(other):
                if is_user_file(fr.file):
                    lines.add((fr.file, fr.line))
                    break
    return lines
