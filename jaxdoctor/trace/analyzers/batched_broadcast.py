"""JD501 batched-broadcast: a broadcast (unbatched) value is copied once per batch element.

Two shapes of the same failure, both read from what `vmap` left in the jaxpr:

1. `cond` with a batched predicate. JAX turns it into "run every branch, then select": each
   operand goes through `select_n(pred, stop_gradient(x), x)`, and an unbatched operand `u` is
   first broadcast to `x = broadcast_in_dim(u) : [B, *u.shape]`. When that copy feeds a loop inside
   the branch (a `fori_loop`/`scan`/`while_loop` in a `cond` branch, seed A), or is large, the
   copies are real memory: reported at the user's `cond` line with bytes before and after.
2. Identical ensemble. A random value computed from broadcast inputs only (one key, `in_axes=None`)
   is broadcast to the mapped output axis: N copies of one random init. Reported at the `vmap` line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from jaxdoctor.rules.jaxpr import BatchedBroadcast
from jaxdoctor.trace import jax_internals as ji
from jaxdoctor.trace import source_map as sm
from jaxdoctor.trace.analyzers._common import MiB, fmt_bytes, make_finding
from jaxdoctor.trace.analyzers._walk import RANDOM, Analyzer, Scope

#: A batched-predicate `cond` copying less than this (and feeding no loop) is not worth a warning.
MIN_COPY_BYTES = 1 * MiB


@dataclass
class _Copy:
    operand: Any  # the unbatched value u
    batched: Any  # x = broadcast_in_dim(u)
    constant: bool  # u is a constant the function closed over, not one of its inputs
    into_loop: bool = False


@dataclass
class _CondGroup:
    loc: sm.SourceLocation | None
    copies: dict = field(default_factory=dict)  # id(x) -> _Copy


def _is_leading_broadcast(eqn: Any) -> bool:
    """`broadcast_in_dim` that adds exactly one leading axis (what `bdim_at_front` emits)."""
    if ji.primitive_name(eqn) != "broadcast_in_dim" or ji.is_literal(eqn.invars[0]):
        return False
    in_shape = ji.aval_shape(ji.aval_of(eqn.invars[0]))
    out_shape = ji.aval_shape(ji.aval_of(eqn.outvars[0]))
    if in_shape is None or out_shape is None or len(out_shape) != len(in_shape) + 1:
        return False
    dims = tuple(int(d) for d in eqn.params.get("broadcast_dimensions", ()))
    return out_shape[1:] == in_shape and dims == tuple(range(1, len(out_shape)))


class BatchedBroadcastAnalyzer(Analyzer):
    code = BatchedBroadcast.code

    def __init__(self, walk) -> None:
        super().__init__(walk)
        self.conds: dict[tuple, _CondGroup] = {}
        self.ensembles: dict[tuple, list] = {}

    def on_eqn(self, eqn: Any, scope: Scope) -> None:
        name = ji.primitive_name(eqn)
        if name == "select_n":
            self._cond_select(eqn, scope)
        elif name == "broadcast_in_dim":
            self._ensemble(eqn, scope)

    # -- 1. cond with a batched predicate ---------------------------------------------------------
    def _cond_select(self, eqn: Any, scope: Scope) -> None:
        w = self.walk
        if len(eqn.invars) != 3:
            return
        pred, a, b = eqn.invars
        if ji.is_literal(a) or ji.is_literal(b):
            return
        pa, pb = w.producer(a), w.producer(b)
        if (
            pa is not None
            and ji.primitive_name(pa) == "stop_gradient"
            and pa.invars[0] is b
        ):
            x = b
        elif (
            pb is not None
            and ji.primitive_name(pb) == "stop_gradient"
            and pb.invars[0] is a
        ):
            x = a
        else:
            return
        bx = w.producer(x)
        if bx is None or not _is_leading_broadcast(bx):
            return
        u = bx.invars[0]
        if w.batched(u):
            return
        # the branch index the predicate compares against: `eq(index, i)`, maybe broadcast
        p = pred
        pe = w.producer(p)
        if pe is not None and ji.primitive_name(pe) == "broadcast_in_dim":
            p = pe.invars[0]
            pe = w.producer(p)
        if pe is None or ji.primitive_name(pe) != "eq":
            return
        index = next((v for v in pe.invars if not ji.is_literal(v)), p)
        key = (id(scope.jaxpr), id(index))
        group = self.conds.get(key)
        if group is None:
            group = self.conds[key] = _CondGroup(sm.locate(eqn, scope.parents))
        copy = group.copies.get(id(x))
        if copy is None:
            copy = group.copies[id(x)] = _Copy(u, x, w.is_constant(u))
        if not copy.into_loop and self._flows_into_loop(
            eqn.outvars[0], scope.jaxpr, depth=0
        ):
            copy.into_loop = True

    def _flows_into_loop(self, var: Any, jaxpr: Any, depth: int) -> bool:
        if depth > 4:
            return False
        for user in self.walk.users(jaxpr).get(var, ()):
            name = ji.primitive_name(user)
            if name in ("scan", "while"):
                return True
            for sub in ji.sub_jaxprs(user):
                for j, src in enumerate(sub.in_map):
                    if (
                        src is not None
                        and src < len(user.invars)
                        and user.invars[src] is var
                        and self._flows_into_loop(
                            sub.jaxpr.invars[j], sub.jaxpr, depth + 1
                        )
                    ):
                        return True
        return False

    # -- 2. identical ensemble ----------------------------------------------------------------------
    def _ensemble(self, eqn: Any, scope: Scope) -> None:
        w = self.walk
        u = eqn.invars[0]
        if ji.is_literal(u) or not (w.flag(u) & RANDOM):
            return
        in_aval, out_aval = ji.aval_of(u), ji.aval_of(eqn.outvars[0])
        in_shape, out_shape = ji.aval_shape(in_aval), ji.aval_shape(out_aval)
        if in_shape is None or out_shape is None or len(out_shape) != len(in_shape) + 1:
            return
        if not ji.dtype_name(in_aval).startswith(("float", "bfloat", "complex")):
            return
        if int(ji.aval_nbytes(in_aval)) <= 8 or ji.batching_origin(eqn) != "vmap_out":
            return
        dims = tuple(int(d) for d in eqn.params.get("broadcast_dimensions", ()))
        new_axes = [i for i in range(len(out_shape)) if i not in dims]
        if len(new_axes) != 1:
            return
        members = out_shape[new_axes[0]]
        if members < 2:
            return
        loc = self._vmap_line(eqn, u, scope)
        if loc is None:
            return
        key = (loc.path, loc.line)
        self.ensembles.setdefault(key, [loc]).append((u, eqn.outvars[0], members))

    def _vmap_line(self, eqn: Any, u: Any, scope: Scope) -> sm.SourceLocation | None:
        """The `vmap`/`nnx.vmap` line: its decorator, or the call that applies it."""
        outer = sm.user_frames_of(eqn)
        inner_frames = self._random_origin_frames(u, scope)
        outer_keys = {(f.file, f.line, f.function) for f in outer}
        inner = [
            f for f in inner_frames if (f.file, f.line, f.function) not in outer_keys
        ]
        if inner:
            fn = inner[-1]  # outermost frame inside the vmapped function
            line = sm.decorator_line_mentioning(fn.file, fn.first_line, "vmap")
            if line is not None:
                return sm.SourceLocation.of_frame(fn).at_line(line)
        if outer:
            call = outer[0]
            if "vmap" in sm.source_line(call.file, call.line):
                return sm.SourceLocation.of_frame(call)
            if inner:
                short = inner[-1].function.rsplit(".", 1)[-1]
                line = sm.call_line_mentioning(call.file, call.line, "vmap", short)
                if line is not None:
                    return sm.SourceLocation.of_frame(call).at_line(line)
            return sm.SourceLocation.of_frame(call)
        # the broadcast's traceback stopped at JAX's API boundary: find the vmap call among the
        # user's frames that made JAX trace (innermost first)
        short = inner[-1].function.rsplit(".", 1)[-1] if inner else None
        for path, line, function in self.walk.callers:
            if "vmap" in sm.source_line(path, line):
                return sm.SourceLocation.at(path, line, function)
            if short is not None:
                found = sm.call_line_mentioning(path, line, "vmap", short)
                if found is not None and line - found <= 10:
                    return sm.SourceLocation.at(path, found, function)
        if inner:
            return sm.SourceLocation.of_frame(inner[-1]).at_line(inner[-1].first_line)
        return sm.locate(eqn, scope.parents)

    def _random_origin_frames(self, u: Any, scope: Scope) -> list:
        """User frames of the nearest equation upstream of `u` that has any."""
        for e in self.walk.upstream(u, limit=500):
            frs = sm.user_frames_of(e)
            if frs:
                return frs
        return []

    # -- findings -----------------------------------------------------------------------------------
    def finish(self) -> list:
        out = []
        for group in self.conds.values():
            copies = [
                c
                for c in group.copies.values()
                if ji.aval_nbytes(ji.aval_of(c.operand)) > 8
            ]
            if not copies or group.loc is None:
                continue
            after = sum(ji.aval_nbytes(ji.aval_of(c.batched)) for c in copies)
            before = sum(ji.aval_nbytes(ji.aval_of(c.operand)) for c in copies)
            # a small closed-over constant copied into a loop is cheap; a broadcast input is the bug
            into_loop = any(c.into_loop and not c.constant for c in copies)
            if not into_loop and after < MIN_COPY_BYTES:
                continue
            big = max(copies, key=lambda c: ji.aval_nbytes(ji.aval_of(c.batched)))
            b_shape = ji.aval_shape(ji.aval_of(big.batched)) or (0,)
            batch = b_shape[0]
            uname = self.walk.name(big.operand)
            what = f"`{uname}` " if uname else ""
            u_str = ji.aval_str(ji.aval_of(big.operand))
            x_str = ji.aval_str(ji.aval_of(big.batched))
            loop_txt = (
                " and the loop inside the branch runs on the copies"
                if into_loop
                else ""
            )
            msg = (
                f"`cond` with a batched predicate under `vmap` runs every branch and copies the broadcast "
                f"operand {what}{u_str} ({fmt_bytes(ji.aval_nbytes(ji.aval_of(big.operand)))}) once per batch "
                f"element: {x_str} ({fmt_bytes(ji.aval_nbytes(ji.aval_of(big.batched)))}){loop_txt}; "
                f"{len(copies)} operand(s), {fmt_bytes(before)} before, {fmt_bytes(after)} after"
            )
            details = {
                "kind": "cond",
                "batch_size": batch,
                "bytes_before": before,
                "bytes_after": after,
                "loop_in_branch": into_loop,
                "operands": [
                    {
                        "name": self.walk.name(c.operand),
                        "shape": ji.aval_str(ji.aval_of(c.operand)),
                        "batched_shape": ji.aval_str(ji.aval_of(c.batched)),
                        "bytes_before": ji.aval_nbytes(ji.aval_of(c.operand)),
                        "bytes_after": ji.aval_nbytes(ji.aval_of(c.batched)),
                    }
                    for c in copies
                ],
            }
            out.append(make_finding(BatchedBroadcast, group.loc, msg, details))
        for entries in self.ensembles.values():
            loc, items = entries[0], entries[1:]
            before = sum(ji.aval_nbytes(ji.aval_of(u)) for u, _, _ in items)
            after = sum(ji.aval_nbytes(ji.aval_of(o)) for _, o, _ in items)
            members = items[0][2]
            shapes = ", ".join(ji.aval_str(ji.aval_of(u)) for u, _, _ in items[:4])
            more = f" and {len(items) - 4} more" if len(items) > 4 else ""
            msg = (
                f"`vmap` over {members} members draws the random values once from a broadcast key and copies "
                f"them to every member: {shapes}{more} are identical across the {members} members "
                f"({fmt_bytes(before)} drawn, {fmt_bytes(after)} stored)"
            )
            details = {
                "kind": "ensemble",
                "members": members,
                "bytes_before": before,
                "bytes_after": after,
                "arrays": [ji.aval_str(ji.aval_of(u)) for u, _, _ in items],
            }
            fix = (
                "Give each member its own key: `@nnx.split_rngs(splits=N)` with `nnx.vmap(in_axes=0)`, "
                "or map over `jax.random.split(key, N)`"
            )
            out.append(make_finding(BatchedBroadcast, loc, msg, details, fix_title=fix))
        return out
