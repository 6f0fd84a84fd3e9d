"""JD505 traced-unrolled-loop: a Python loop traced over and over inside a traced function.

A Python `for`/`while` under `jit` is unrolled: each iteration adds its equations again, so the
jaxpr and the compile time grow with the trip count. Seen in the jaxpr as many equations of one
primitive from the same user call stack, each consuming the previous one's result (a chain). A
`tree_map` over many leaves repeats equations too, but side by side, not in a chain, and a short
loop over a model's layers stays under the threshold. Reported at the Python loop's line.
"""

from __future__ import annotations

from typing import Any

from jaxdoctor.rules.jaxpr import TracedUnrolledLoop
from jaxdoctor.trace import jax_internals as ji
from jaxdoctor.trace import source_map as sm
from jaxdoctor.trace.analyzers._common import make_finding
from jaxdoctor.trace.analyzers._walk import Analyzer, Scope

#: a chain of at least this many repetitions is an unrolled loop
MIN_REPEATS = 32


#: a loop whose iterations read this many different weights is a loop over layers
MIN_DISTINCT_WEIGHTS = 8

_SLICING = frozenset(
    {"slice", "dynamic_slice", "gather", "squeeze", "reshape", "index_in_dim"}
)


#: how far back `_weight_roots` looks for a slice before giving up
_ROOT_SEARCH = 64


def _weight_roots(v: Any, producers: dict) -> set[int] | None:
    """The inputs of the jaxpr a chain-independent operand is computed from, or None when it is
    per-step data: anything computed from a slice (`xs[t]`, `U @ xs[t]`, `Ws[i]`)."""
    roots: set[int] = set()
    todo, seen = [v], set()
    while todo:
        x = todo.pop()
        if id(x) in seen:
            continue
        seen.add(id(x))
        if len(seen) > _ROOT_SEARCH:
            return None
        p = producers.get(x)
        if p is None:
            roots.add(id(x))
            continue
        if ji.primitive_name(p) in _SLICING:
            return None
        todo.extend(y for y in p.invars if not ji.is_literal(y))
    return roots


def _chain(jaxpr: Any, members: set[int], producers: dict) -> tuple[int, int]:
    """(longest dependency chain through `members`, distinct weights they read).

    A weight is an input of the jaxpr that a member reads, directly or through non-slicing
    equations, independently of the chain (`layers[i].W`, `W.T`). Anything computed from a
    slice of a larger array is per-step data (`xs[t]`, and `U @ xs[t]` too), not a weight.
    """
    depth: dict = {}
    best = 0
    weights: set[int] = set()
    for e in jaxpr.eqns:
        d = 0
        for v in e.invars:
            if not ji.is_literal(v):
                d = max(d, depth.get(v, 0))
        if id(e) in members:
            for v in e.invars:
                if ji.is_literal(v) or depth.get(v, 0):
                    continue
                weights |= _weight_roots(v, producers) or set()
            d += 1
            best = max(best, d)
        if d:
            for v in e.outvars:
                depth[v] = d
    return best, len(weights)


class TracedUnrolledLoopAnalyzer(Analyzer):
    code = TracedUnrolledLoop.code

    def __init__(self, walk) -> None:
        super().__init__(walk)
        self.findings: dict = {}

    def on_jaxpr(self, scope: Scope) -> None:
        eqns = scope.jaxpr.eqns
        if len(eqns) < MIN_REPEATS:
            return
        groups: dict[tuple, list] = {}
        producers: dict | None = None
        for e in eqns:
            frs = sm.user_frames_of(e)
            if not frs:
                continue
            key = (ji.primitive_name(e), tuple((f.file, f.line, f.column) for f in frs))
            groups.setdefault(key, []).append(e)
        loops: dict[tuple, list] = {}
        for (prim, stack), members in groups.items():
            if len(members) < MIN_REPEATS:
                continue
            if producers is None:
                producers = {o: q for q in eqns for o in q.outvars}
            chain, weights = _chain(scope.jaxpr, {id(e) for e in members}, producers)
            if chain < MIN_REPEATS and weights < MIN_DISTINCT_WEIGHTS:
                continue
            loc = self._loop_location(members[0])
            if loc is None or (loc.path, loc.line) in self.findings:
                continue
            loops.setdefault((loc.path, loc.line), [loc]).append(
                (prim, members, chain, weights)
            )
        for entries in loops.values():
            loc, items = entries[0], entries[1:]
            if max(w for *_, w in items) >= MIN_DISTINCT_WEIGHTS:
                continue  # a loop over layers, each with its own weights: unrolling is the point
            items = [it for it in items if it[2] >= MIN_REPEATS]
            if not items:
                continue
            prim, members, chain, _ = max(items, key=lambda it: it[2])
            msg = (
                f"A Python loop is unrolled into the traced program: `{prim}` from this loop appears "
                f"{len(members)} times in a chain of {chain} (the jaxpr and compile time grow with the trip count)"
            )
            self.findings[(loc.path, loc.line)] = make_finding(
                TracedUnrolledLoop,
                loc,
                msg,
                {"primitive": prim, "repeats": len(members), "chain": chain},
            )

    def _loop_location(self, eqn: Any) -> sm.SourceLocation | None:
        frs = sm.user_frames_of(eqn)
        for fr in frs:
            line = sm.enclosing_loop_line(fr.file, fr.line)
            if line is not None:
                return sm.SourceLocation.of_frame(fr).at_line(line)
        return sm.SourceLocation.of_frame(frs[0]) if frs else None

    def finish(self) -> list:
        return list(self.findings.values())
