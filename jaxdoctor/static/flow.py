"""The flow pass: statement by statement, what each name of one analysed function holds.

A name assigned an array holds an array until it is re-assigned; branches are run from the same
state and joined; loop bodies run twice (a value made late in the body reaches its start);
`isinstance(x, int)` and `x is None` narrow `x` inside the branch they guard. Calls go to the
`Calls` the flow is given (the semantic model), which passes values on to the functions of the
file and answers with what they return.
"""

from __future__ import annotations

from typing import Protocol

import libcst as cst

from jaxdoctor.static.evaluate import Evaluator
from jaxdoctor.static.index import FunctionInfo, FunctionNode
from jaxdoctor.static.names import ImportTable
from jaxdoctor.static.values import ARRAY, CONTAINER, STATIC, TRACED, UNKNOWN, element, holds_tracers, join


class Calls(Protocol):
    """What the flow pass needs from the model: calls resolved to the file's functions."""

    def call(self, flow: "Flow", call: cst.Call, func: int, args: list[tuple[cst.Arg, int]]) -> int | None: ...

    def closure(self, flow: "Flow", fn: FunctionNode) -> None: ...

    def array_uses(self, info: FunctionInfo) -> tuple[set[str], set[str]]: ...

    def field_value(self, flow: "Flow", e: cst.Attribute, base: int) -> int | None: ...

    def static_field(self, name: str) -> bool: ...

    def module_instance(self, flow: "Flow", e: cst.BaseExpression) -> bool: ...

    def return_elements(self, call: cst.Call) -> list[int] | None: ...

    def scope_parent(self, node: cst.CSTNode) -> cst.CSTNode | None: ...


class Flow(Evaluator):
    """Values of the names of one function, statement by statement."""

    def __init__(self, info: FunctionInfo, names: ImportTable, record: dict[cst.CSTNode, int],
                 calls: Calls) -> None:
        super().__init__(names, record)
        self.info = info
        self.calls = calls
        self.strong, self.weak = calls.array_uses(info)
        #: names holding a pytree argument of a plain JAX transform (fields traced)
        self.trees = set(info.trees)
        self.env: dict[str, int] = dict(info.captures)
        for p in info.all_params():
            self.env.pop(p.name.value, None)
        for p in info.all_params():
            name = p.name.value
            self.env[name] = self.upgrade(name, info.params.get(name, STATIC))
        self.returns = STATIC
        #: per-position values when every return is a tuple of one length; False once not
        self.return_elements: list[int] | None | bool = None

    def upgrade(self, name: str, value: int) -> int:
        """A traced value the function uses as an array (`x + 1`, `jnp.sum(x)`, `x[:, 0]`)
        is one; an unknown value used with array-only attributes (`x.shape`, `x.sum()`) too."""
        if value == TRACED and (name in self.weak or name in self.strong):
            return ARRAY
        if value == UNKNOWN and name in self.strong and self.cap == ARRAY:
            return ARRAY
        return value

    def attribute(self, e: cst.Attribute, base: int) -> int | None:
        known = self.calls.field_value(self, e, base)
        if known is not None:
            return known
        if isinstance(e.value, cst.Name) and e.value.value in self.trees and base >= TRACED \
                and not self.calls.module_instance(self, e.value):
            return STATIC if self.calls.static_field(e.attr.value) else TRACED
        return None

    def captures_for(self, callee: FunctionInfo) -> dict[str, int]:
        """What this function's names hold, for a function nested in it (its closure)."""
        node = callee.scope
        while node is not None and not isinstance(node, cst.Module):
            if node is self.info.node:
                return {k: v for k, v in self.env.items() if v != STATIC}
            node = self.scope_parent(node)
        return {}

    def scope_parent(self, node: cst.CSTNode) -> cst.CSTNode | None:
        return self.calls.scope_parent(node)

    # ------------------------------------------------------------ evaluator hooks
    def lookup(self, name: cst.Name) -> int:
        return self.env.get(name.value, STATIC)

    def call_value(self, call: cst.Call, func: int, args: list[tuple[cst.Arg, int]]) -> int | None:
        return self.calls.call(self, call, func, args)

    def closure(self, fn: FunctionNode) -> None:
        self.calls.closure(self, fn)

    def enter_comprehension(self) -> object:
        return dict(self.env)

    def leave_comprehension(self, saved: object) -> None:
        self.env = saved  # type: ignore[assignment]

    def narrow(self, caps: dict[str, int]) -> dict[str, int | None]:
        """Bound the values of names a test has proven: `isinstance(g, int)` makes `g` static,
        `isinstance(x, jax.Array)` makes a traced `x` an array. Returns what to restore."""
        saved: dict[str, int | None] = {}
        for name, cap in caps.items():
            if name not in self.env:
                continue
            saved[name] = self.env[name]
            current = self.env[name]
            if cap == ARRAY:
                self.env[name] = ARRAY if current >= TRACED else current
            else:
                self.env[name] = min(current, cap)
        return saved

    def restore(self, saved: dict[str, int | None]) -> None:
        for name, value in saved.items():
            if value is None:
                self.env.pop(name, None)
            else:
                self.env[name] = value

    def bind(self, target: cst.BaseExpression, value: int, rhs: cst.BaseExpression | None = None) -> None:
        if isinstance(target, cst.Name):
            value = self.upgrade(target.value, value)
            self.env[target.value] = value
            self.record[target] = value
            self.trees.discard(target.value)
        elif isinstance(target, (cst.Tuple, cst.List)):
            parts = [el for el in target.elements]
            literal = rhs if isinstance(rhs, (cst.Tuple, cst.List)) else None
            if (literal is not None and len(literal.elements) == len(parts)
                    and not any(isinstance(el, cst.StarredElement) for el in (*parts, *literal.elements))):
                for el, src in zip(parts, literal.elements):
                    self.bind(el.value, self.record.get(src.value, element(value)), src.value)
                return
            if isinstance(rhs, cst.Call) and not any(isinstance(el, cst.StarredElement) for el in parts):
                # `a, n = helper(x)` where the helper returns `(array, x.shape[1])`
                elements = self.calls.return_elements(rhs)
                if elements is not None and len(elements) == len(parts):
                    for el, v in zip(parts, elements):
                        self.bind(el.value, min(v, self.cap) if v > STATIC else v)
                    return
                if value == TRACED:
                    # what a function we cannot see returns from tracers: a tuple whose parts may
                    # be arrays or Python values (`x, pad = maybe_pad(x, n)`)
                    for el in parts:
                        self.bind(el.value, UNKNOWN)
                    return
            for el in parts:
                if isinstance(el, cst.StarredElement):
                    inner = element(value)
                    self.bind(el.value, CONTAINER if holds_tracers(inner) else inner)
                else:
                    self.bind(el.value, element(value))
        elif isinstance(target, cst.StarredElement):
            self.bind(target.value, value)
        else:  # attribute / subscript targets: evaluate their parts
            self.value(target)

    def bind_iter(self, target: cst.BaseExpression, it: cst.BaseExpression, value: int) -> None:
        """The target of `for target in it`, position by position where the iterable says what
        each position holds: `enumerate` gives a Python int first, `zip` one element of each
        iterable, `d.items()` a key (static) and a value."""
        while (isinstance(it, cst.Call) and self.names.qualname(it.func) in (
                "builtins.reversed", "builtins.list", "builtins.tuple", "builtins.sorted", "builtins.iter")
               and len(it.args) == 1 and not it.args[0].star and it.args[0].keyword is None):
            it = it.args[0].value  # same elements, in this or another order
            value = self.record.get(it, value)
        parts = _unpack(target)
        if isinstance(it, cst.Call):
            q = self.names.qualname(it.func)
            positional = [a.value for a in it.args if a.keyword is None and not a.star]
            starred = any(a.star for a in it.args)
            if q == "builtins.range":
                self.bind(target, STATIC)
                return
            if parts is not None and q == "builtins.enumerate" and len(parts) == 2 and positional and not starred:
                self.bind(parts[0], STATIC)
                self.bind_iter(parts[1], positional[0], self.record.get(positional[0], value))
                return
            if parts is not None and q in _ZIPS and len(parts) == len(positional) and not starred:
                for part, seq in zip(parts, positional):
                    self.bind_iter(part, seq, self.record.get(seq, value))
                return
            if (isinstance(it.func, cst.Attribute) and it.func.attr.value in ("items", "keys")
                    and not it.args):
                base = self.record.get(it.func.value, STATIC)
                if it.func.attr.value == "keys":
                    self.bind(target, STATIC)
                    return
                if parts is not None and len(parts) == 2:
                    self.bind(parts[0], STATIC)
                    self.bind(parts[1], element(base) if base != STATIC else STATIC)
                    return
        self.bind(target, element(value) if value != STATIC else STATIC)

    def _return_shape(self, value: cst.BaseExpression | None) -> None:
        """Track the value of each position while every `return` is a tuple of one length."""
        if self.return_elements is False:
            return
        if not isinstance(value, cst.Tuple) or any(isinstance(el, cst.StarredElement) for el in value.elements):
            self.return_elements = False
            return
        values = [self.record.get(el.value, STATIC) for el in value.elements]
        if self.return_elements is None:
            self.return_elements = values
        elif len(self.return_elements) != len(values):  # type: ignore[arg-type]
            self.return_elements = False
        else:
            self.return_elements = [join(a, b) for a, b in zip(self.return_elements, values)]  # type: ignore[arg-type]

    # ------------------------------------------------------------ statements
    def run(self) -> None:
        node = self.info.node
        if isinstance(node, cst.Lambda):
            self.returns = self.value(node.body)
            return
        self.block(node.body)

    def block(self, body) -> None:
        if isinstance(body, cst.SimpleStatementSuite):
            for small in body.body:
                self.small(small)
            return
        stmts = body.body if isinstance(body, cst.IndentedBlock) else body
        for stmt in stmts:
            self.stmt(stmt)

    def branch(self, bodies: list, narrowed: list[dict[str, int]] | None = None) -> None:
        """Run alternative bodies from the same state and join them; body i runs with the names
        of `narrowed[i]` bounded (an `isinstance` test's branches)."""
        start = dict(self.env)
        results = []
        for i, body in enumerate(bodies):
            self.env = dict(start)
            if narrowed and i < len(narrowed) and narrowed[i]:
                self.narrow(narrowed[i])
            if body is not None:
                self.block(body)
            results.append(self.env)
        merged: dict[str, int] = {}
        for env in results:
            for k, v in env.items():
                merged[k] = join(merged.get(k, STATIC), v)
        self.env = merged

    def stmt(self, s: cst.CSTNode) -> None:
        ev = self.value
        if isinstance(s, cst.SimpleStatementLine):
            for small in s.body:
                self.small(small)
        elif isinstance(s, cst.If):
            ev(s.test)
            narrowed = [self.narrowing(s.test), self.narrowing(s.test, negated=True)]
            orelse = s.orelse
            if isinstance(orelse, cst.If):
                self.branch([s.body, [orelse]], narrowed)
            else:
                exits = _exits(s.body)
                self.branch([s.body, orelse.body if orelse is not None else None], narrowed)
                if exits and orelse is None and narrowed[1]:
                    self.narrow(narrowed[1])  # `if x is None: return ...`: below, x is not None
        elif isinstance(s, cst.For):
            it = ev(s.iter)
            for _ in range(2):  # twice: names assigned late in the body reach its start
                self.bind_iter(s.target, s.iter, it)
                self.branch([s.body, None])
            if s.orelse is not None:
                self.block(s.orelse.body)
        elif isinstance(s, cst.While):
            for _ in range(2):
                ev(s.test)
                self.branch([s.body, None])
            if s.orelse is not None:
                self.block(s.orelse.body)
        elif isinstance(s, cst.With):
            for item in s.items:
                v = ev(item.item)
                if item.asname is not None:
                    self.bind(item.asname.name, v)
            self.block(s.body)
        elif isinstance(s, (cst.Try, cst.TryStar)):
            bodies = [s.body] + [h.body for h in s.handlers]
            if s.orelse is not None:
                bodies.append(s.orelse.body)
            self.branch(bodies)
            if s.finalbody is not None:
                self.block(s.finalbody.body)
        elif isinstance(s, cst.FunctionDef):
            for dec in s.decorators:
                ev(dec.decorator)
            self.closure(s)
            self.env[s.name.value] = STATIC
        elif isinstance(s, cst.ClassDef):
            self.env[s.name.value] = STATIC
        elif isinstance(s, cst.Match):
            ev(s.subject)
            self.branch([c.body for c in s.cases])

    def small(self, s: cst.CSTNode) -> None:
        ev = self.value
        if isinstance(s, cst.Assign):
            v = ev(s.value)
            for t in s.targets:
                self.bind(t.target, v, s.value)
        elif isinstance(s, cst.AnnAssign):
            if s.value is not None:
                self.bind(s.target, ev(s.value), s.value)
        elif isinstance(s, cst.AugAssign):
            v = ev(s.value)
            current = ev(s.target)
            if current >= TRACED or v >= TRACED:
                new = ARRAY
            elif current == CONTAINER or v == CONTAINER:
                new = CONTAINER
            else:
                new = join(current, v)
            if isinstance(s.target, cst.Name):
                self.env[s.target.value] = new
        elif isinstance(s, cst.Expr):
            ev(s.value)
        elif isinstance(s, cst.Return):
            if s.value is not None:
                self.returns = join(self.returns, ev(s.value))
            self._return_shape(s.value)
        elif isinstance(s, cst.Assert):
            ev(s.test)
            if s.msg is not None:
                ev(s.msg)
        elif isinstance(s, cst.Raise):
            if s.exc is not None:
                ev(s.exc)
        elif isinstance(s, (cst.Import, cst.ImportFrom)):
            if isinstance(s, cst.Import) or not isinstance(s.names, cst.ImportStar):
                for alias in s.names:
                    name = alias.asname.name if alias.asname is not None else alias.name
                    while isinstance(name, cst.Attribute):
                        name = name.value
                    if isinstance(name, cst.Name):
                        self.env[name.value] = STATIC
        elif isinstance(s, cst.Del):
            pass


#: `zip` and the strict zips of JAX's own sources
_ZIPS = frozenset({"builtins.zip", "jax._src.util.safe_zip", "jax.util.safe_zip"})


def _unpack(target: cst.BaseExpression) -> list[cst.BaseExpression] | None:
    """The parts of a tuple/list target without starred elements, else None."""
    if not isinstance(target, (cst.Tuple, cst.List)):
        return None
    if any(isinstance(el, cst.StarredElement) for el in target.elements):
        return None
    return [el.value for el in target.elements]


def _exits(body) -> bool:
    """The block ends in `return`, `raise`, `continue` or `break`."""
    stmts = body.body if isinstance(body, cst.IndentedBlock) else [body]
    if not stmts:
        return False
    last = stmts[-1]
    smalls = last.body if isinstance(last, (cst.SimpleStatementLine, cst.SimpleStatementSuite)) else []
    return any(isinstance(x, (cst.Return, cst.Raise, cst.Continue, cst.Break)) for x in smalls)


__all__ = ["Flow", "Calls", "UNKNOWN"]
