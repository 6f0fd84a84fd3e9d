"""One walk over a closed jaxpr, shared by every analyzer.

The walk visits each equation once (recursing into scan/while/cond bodies, jit/remat/custom_*
calls and shard_map), carrying per-variable facts through the nesting:

- BATCHED: depends on an input that `vmap` maps (known only when `batch_axes` is given);
- RANDOM: derived from random bits (`random_bits`, `threefry2x32`, ...).

Loop carries reach a fixpoint before the analyzers see the loop body, so a carry that becomes
batched (or random) in the body is batched in every iteration. Analyzers receive each equation
with its `Scope` (which jaxpr, nested in which equation, how many times it runs).
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from jaxdoctor.trace import jax_internals as ji

BATCHED = 1
RANDOM = 2


@dataclass(eq=False)
class Scope:
    jaxpr: Any
    kind: str  # "top", "scan", "while_cond", "while_body", "cond_branch", "call", "opaque"
    parent: Scope | None = None
    eqn: Any = None  # the equation this jaxpr is nested in
    trip: int | None = (
        1  # how many times this jaxpr runs per run of its parent (None: unknown)
    )
    consts: tuple = ()

    @property
    def parents(self) -> list[Any]:
        """Enclosing equations, innermost first."""
        out, s = [], self
        while s is not None and s.eqn is not None:
            out.append(s.eqn)
            s = s.parent
        return out

    @property
    def is_loop_body(self) -> bool:
        return self.kind in ("scan", "while_body", "while_cond")

    def enclosing_loop(self, *, stop_at_cond: bool = False) -> Scope | None:
        s: Scope | None = self
        while s is not None:
            if s.is_loop_body:
                return s
            if stop_at_cond and s.kind == "cond_branch":
                return None
            s = s.parent
        return None

    @property
    def multiplier(self) -> int | None:
        """How many times this jaxpr runs per run of the top-level jaxpr (None: unknown)."""
        m, s = 1, self
        while s is not None:
            if s.trip is None:
                return None
            m *= s.trip
            s = s.parent
        return m


@dataclass
class Walk:
    """What the walk knows; analyzers read it, never write it."""

    closed: Any
    batch_axes: Sequence[int | None] | None
    batch_size: int | None
    entry_name: str
    arg_names: Sequence[str] | None
    flags: dict = field(default_factory=dict)  # var -> bit flags
    names: dict = field(default_factory=dict)  # var -> readable argument name
    producers: dict = field(default_factory=dict)  # var -> equation that produced it
    constvars: set = field(
        default_factory=set
    )  # ids of every jaxpr's constvars (captured constants)
    roots: dict = field(
        default_factory=dict
    )  # nested invar -> (outer var it stands for, crossed a loop)
    _users: dict = field(default_factory=dict)  # id(jaxpr) -> {var: [eqn, ...]}
    #: the user's frames (file, line, function), innermost first, live when the analysis ran:
    #: under the doctor, the call that made JAX trace (e.g. `jax.vmap(f, ...)(x)`)
    callers: list = field(default_factory=list)

    def flag(self, atom: Any) -> int:
        if ji.is_literal(atom):
            return 0
        return self.flags.get(atom, 0)

    def batched(self, atom: Any) -> bool | None:
        """True/False when batch axes are known, None when they are not."""
        if self.batch_axes is None:
            return None
        return bool(self.flag(atom) & BATCHED)

    def name(self, atom: Any) -> str | None:
        return None if ji.is_literal(atom) else self.names.get(atom)

    def root(self, atom: Any) -> tuple[Any, bool]:
        """The outermost variable `atom` stands for (through jit calls and loop constants), and
        whether that passed into a loop body (so the value is read on every iteration)."""
        crossed = False
        for _ in range(64):
            nxt = self.roots.get(atom)
            if nxt is None:
                break
            atom, c = nxt
            crossed = crossed or c
        return atom, crossed

    def is_constant(self, atom: Any) -> bool:
        """A literal, or (through jit calls and loop constants) a constant captured by a jaxpr."""
        if ji.is_literal(atom):
            return True
        return id(self.root(atom)[0]) in self.constvars

    def producer(self, atom: Any) -> Any:
        return None if ji.is_literal(atom) else self.producers.get(atom)

    def upstream(self, atom: Any, *, limit: int, producer: Callable[[Any], Any] | None = None,
                 follow: Callable[[Any], bool] | None = None) -> Iterator[Any]:
        """The equations upstream of `atom`, nearest first: breadth-first through each one's
        non-literal inputs (those `follow` accepts), looking at `limit` atoms at most.
        `producer`: how an atom's equation is found (default `self.producer`)."""
        producer = producer or self.producer
        seen: set[int] = set()
        todo, steps = collections.deque([atom]), 0
        while todo and steps < limit:
            steps += 1
            e = producer(todo.popleft())
            if e is None or id(e) in seen:
                continue
            seen.add(id(e))
            yield e
            todo.extend(a for a in e.invars if not ji.is_literal(a) and (follow is None or follow(a)))

    def users(self, jaxpr: Any) -> dict:
        key = id(jaxpr)
        if key not in self._users:
            u: dict = {}
            for e in jaxpr.eqns:
                for v in e.invars:
                    if not ji.is_literal(v):
                        u.setdefault(v, []).append(e)
            self._users[key] = u
        return self._users[key]


class Analyzer:
    """One rule's analysis: fed equation by equation, asked for findings at the end."""

    code: str = ""

    def __init__(self, walk: Walk) -> None:
        self.walk = walk

    def on_eqn(self, eqn: Any, scope: Scope) -> None:  # pragma: no cover - default
        pass

    def on_jaxpr(self, scope: Scope) -> None:
        """Called once per jaxpr (top level and every nested one) before its equations."""

    def finish(self) -> list:
        return []


def run_walk(walk: Walk, analyzers: Sequence[Analyzer]) -> None:
    closed = walk.closed
    jaxpr = closed.jaxpr
    axes = walk.batch_axes
    for i, v in enumerate(jaxpr.invars):
        f = 0
        if axes is not None and i < len(axes) and axes[i] is not None:
            f |= BATCHED
        walk.flags[v] = f
        if walk.arg_names is not None and i < len(walk.arg_names) and walk.arg_names[i]:
            walk.names[v] = walk.arg_names[i]
    for v in jaxpr.constvars:
        walk.flags[v] = 0
        walk.constvars.add(id(v))
    on_eqn = [a.on_eqn for a in analyzers if type(a).on_eqn is not Analyzer.on_eqn]
    on_jaxpr = [
        a.on_jaxpr for a in analyzers if type(a).on_jaxpr is not Analyzer.on_jaxpr
    ]
    top = Scope(jaxpr, "top", consts=tuple(closed.consts))
    _Walker(walk, on_eqn, on_jaxpr).walk(top, emit=True)


class _Walker:
    def __init__(
        self, walk: Walk, on_eqn: list[Callable], on_jaxpr: list[Callable]
    ) -> None:
        self.w = walk
        self.on_eqn = on_eqn
        self.on_jaxpr = on_jaxpr

    # -- one jaxpr ----------------------------------------------------------------------------
    def walk(self, scope: Scope, *, emit: bool) -> list[int]:
        w = self.w
        if emit:
            for cb in self.on_jaxpr:
                cb(scope)
        for eqn in scope.jaxpr.eqns:
            ins = [w.flag(v) for v in eqn.invars]
            outs = self.transfer(eqn, scope, ins, emit)
            for v, f in zip(eqn.outvars, outs):
                if not ji.is_dropvar(v):
                    w.flags[v] = f
                    w.producers[v] = eqn
            if emit:
                for cb in self.on_eqn:
                    cb(eqn, scope)
        return [w.flag(v) for v in scope.jaxpr.outvars]

    def _enter(
        self,
        sub: ji.SubJaxpr,
        in_flags: Sequence[int],
        eqn: Any,
        scope: Scope,
        names: Sequence[str | None],
        trip: int | None,
        n_consts: int | None = None,
    ) -> Scope:
        w = self.w
        for i, (v, f, n) in enumerate(zip(sub.jaxpr.invars, in_flags, names)):
            w.flags[v] = f
            if n:
                w.names[v] = n
            if sub.kind in ("call", "cond_branch") or (
                n_consts is not None and i < n_consts
            ):
                src = sub.in_map[i] if i < len(sub.in_map) else None
                if src is not None and not ji.is_literal(eqn.invars[src]):
                    w.roots[v] = (eqn.invars[src], n_consts is not None and trip != 1)
        for v in sub.jaxpr.constvars:
            w.flags[v] = 0
            w.constvars.add(id(v))
        return Scope(
            sub.jaxpr, sub.kind, parent=scope, eqn=eqn, trip=trip, consts=sub.consts
        )

    # -- transfer functions -------------------------------------------------------------------
    def transfer(self, eqn: Any, scope: Scope, ins: list[int], emit: bool) -> list[int]:
        name = ji.primitive_name(eqn)
        n_out = len(eqn.outvars)
        if name == "scan":
            return self._scan(eqn, scope, ins, emit)
        if name == "while":
            return self._while(eqn, scope, ins, emit)
        if name == "cond":
            return self._cond(eqn, scope, ins, emit)
        subs = ji.sub_jaxprs(eqn)
        joined = 0
        for f in ins:
            joined |= f
        if name in ji.RANDOM_PRIMITIVES:
            joined |= RANDOM
        if not subs:
            return [joined] * n_out
        names = [self.w.name(v) for v in eqn.invars]
        outs: list[int] | None = None
        for sub in subs:
            if sub.kind == "call":
                child = self._enter(sub, ins, eqn, scope, names, 1)
                res = self.walk(child, emit=emit)
                if len(res) == n_out:
                    outs = res if outs is None else [a | b for a, b in zip(outs, res)]
            else:
                child = self._enter(
                    sub,
                    [joined] * len(sub.jaxpr.invars),
                    eqn,
                    scope,
                    [None] * len(sub.jaxpr.invars),
                    None,
                )
                res = self.walk(child, emit=emit)
                for f in res:
                    joined |= f & RANDOM
        if outs is None:
            outs = [joined] * n_out
        return outs

    def _scan(self, eqn: Any, scope: Scope, ins: list[int], emit: bool) -> list[int]:
        (sub,) = ji.sub_jaxprs(eqn)
        n_consts, n_carry, length = ji.scan_layout(eqn)
        names = [
            self.w.name(v) if i < n_consts else None for i, v in enumerate(eqn.invars)
        ]
        consts, carry, xs = (
            ins[:n_consts],
            ins[n_consts : n_consts + n_carry],
            ins[n_consts + n_carry :],
        )
        res: list[int] = []
        for _ in range(
            4
        ):  # fixpoint on the carry flags (two bits: at most 3 rounds change)
            child = self._enter(
                sub, consts + carry + xs, eqn, scope, names, length, n_consts
            )
            res = self.walk(child, emit=False)
            new = [a | b for a, b in zip(carry, res[:n_carry])]
            if new == carry:
                break
            carry = new
        if emit:
            child = self._enter(
                sub, consts + carry + xs, eqn, scope, names, length, n_consts
            )
            res = self.walk(child, emit=True)
        return carry + res[n_carry:]

    def _while(self, eqn: Any, scope: Scope, ins: list[int], emit: bool) -> list[int]:
        cond_sub, body_sub = ji.sub_jaxprs(eqn)
        cn, bn = ji.while_layout(eqn)
        trip = ji.while_trip_count(eqn)
        cconsts, bconsts, carry = ins[:cn], ins[cn : cn + bn], ins[cn + bn :]
        cnames = [self.w.name(v) for v in eqn.invars[:cn]] + [None] * len(carry)
        bnames = [self.w.name(v) for v in eqn.invars[cn : cn + bn]] + [None] * len(
            carry
        )
        for _ in range(4):
            cchild = self._enter(cond_sub, cconsts + carry, eqn, scope, cnames, trip)
            pred = self.walk(cchild, emit=False)
            bchild = self._enter(
                body_sub, bconsts + carry, eqn, scope, bnames, trip, bn
            )
            res = self.walk(bchild, emit=False)
            new = [a | b for a, b in zip(carry, res)]
            if pred and pred[0] & BATCHED:
                new = [f | BATCHED for f in new]
            if new == carry:
                break
            carry = new
        if emit:
            self.walk(
                self._enter(cond_sub, cconsts + carry, eqn, scope, cnames, trip),
                emit=True,
            )
            self.walk(
                self._enter(body_sub, bconsts + carry, eqn, scope, bnames, trip, bn),
                emit=True,
            )
        return carry

    def _cond(self, eqn: Any, scope: Scope, ins: list[int], emit: bool) -> list[int]:
        index, ops = ins[0], ins[1:]
        names = [self.w.name(v) for v in eqn.invars[1:]]
        outs = [index & BATCHED] * len(eqn.outvars)
        for sub in ji.sub_jaxprs(eqn):
            child = self._enter(sub, ops, eqn, scope, names, 1)
            res = self.walk(child, emit=emit)
            outs = [a | b for a, b in zip(outs, res)]
        return outs
