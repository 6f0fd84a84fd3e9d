"""The flow pass: statement by statement, which names of one traced function hold tracers."""

from __future__ import annotations

from typing import TYPE_CHECKING

import libcst as cst

from jaxdoctor.static.kinds import ARRAY, STATIC, TRACED, KindEvaluator

if TYPE_CHECKING:
    from jaxdoctor.static.traced import FunctionInfo, FunctionNode, SemanticModel

class Flow:
    """Statement-by-statement tracedness of names inside one traced function."""

    def __init__(self, model: SemanticModel, info: FunctionInfo) -> None:
        self.model = model
        self.info = info
        self.env: dict[str, int] = dict(info.captures)
        # parameters shadow captures
        for p in info.all_params():
            self.env.pop(p.name.value, None)
        self.env.update(info.traced_params)
        self.eval = KindEvaluator(model, self, self._lookup)

    def _lookup(self, name: cst.Name) -> int:
        k = self.env.get(name.value, STATIC)
        self.model.name_kinds[name] = k
        return k

    def captures_for(self, callee: FunctionInfo) -> dict[str, int]:
        """Traced names of this function visible to a function nested in it."""
        node = callee.scope
        while node is not None and not isinstance(node, cst.Module):
            if node is self.info.node:
                return {k: v for k, v in self.env.items() if v}
            node = self.model.scope_of_node.get(node)
        return {}

    def closure(self, fn: FunctionNode) -> None:
        """A nested function is defined here: it sees the current traced names."""
        info = self.model.functions.get(fn)
        if info is None:
            return
        captured = {k: v for k, v in self.env.items() if v}
        if not captured:
            return
        before = dict(info.captures)
        for k, v in captured.items():
            if info.captures.get(k, -1) < v:
                info.captures[k] = v
        if info.traced and info.captures != before and info not in self.model._worklist:
            self.model._worklist.append(info)

    def run(self) -> None:
        node = self.info.node
        if isinstance(node, cst.Lambda):
            self.eval.kind(node.body)
            return
        for p in self.info.all_params():
            if p.default is not None:
                pass  # defaults are evaluated in the enclosing scope
        self.block(node.body)

    # ------------------------------------------------------------ statements
    def bind(self, target: cst.BaseExpression, kind: int) -> None:
        if isinstance(target, cst.Name):
            if kind:
                self.env[target.value] = kind
            else:
                self.env.pop(target.value, None)
        elif isinstance(target, (cst.Tuple, cst.List)):
            for el in target.elements:
                self.bind(el.value, TRACED if kind else STATIC)
        elif isinstance(target, cst.StarredElement):
            self.bind(target.value, TRACED if kind else STATIC)
        else:  # attribute / subscript targets: evaluate their parts
            self.eval.kind(target)

    def bind_iter(self, target: cst.BaseExpression, it: cst.BaseExpression, kind: int) -> None:
        """The target of `for target in it`, unpacked position by position where the iterable
        says what each position holds: in `for i, x in enumerate(xs)` the index is a Python
        int; in `for a, b in zip(xs, ys)` `a` is an element of `xs`, `b` one of `ys`; in
        `for k, v in d.items()` the key is a dict key (a string or tuple), static even when
        `d` holds tracers."""
        while (isinstance(it, cst.Call) and isinstance(it.func, cst.Name)
               and it.func.value in ("reversed", "list", "tuple", "sorted", "iter")
               and len(it.args) == 1 and not it.args[0].star and it.args[0].keyword is None):
            it = it.args[0].value  # same elements, same order or another
            kind = self.eval.kind(it)
        parts = _unpack(target)
        if parts is not None and isinstance(it, cst.Call):
            positional = [a.value for a in it.args if a.keyword is None and not a.star]
            starred = any(a.star for a in it.args)
            func = it.func
            if isinstance(func, cst.Name) and func.value == "enumerate" and len(parts) == 2 \
                    and positional and not starred:
                self.bind(parts[0], STATIC)
                self.bind_iter(parts[1], positional[0], self.eval.kind(positional[0]))
                return
            if isinstance(func, cst.Name) and func.value == "zip" and len(parts) == len(positional) \
                    and not starred:
                for part, seq in zip(parts, positional):
                    self.bind_iter(part, seq, self.eval.kind(seq))
                return
            if (kind and isinstance(func, cst.Attribute) and func.attr.value == "items"
                    and not it.args and len(parts) == 2):
                self.bind(parts[0], STATIC)
                self.bind(parts[1], TRACED)
                return
        self.bind(target, TRACED if kind else STATIC)

    def narrow(self, caps: dict[str, int]) -> dict[str, int]:
        """Cap the kinds of names an `isinstance` test has proven (`isinstance(g, int)`: `g` is
        a Python int, never a tracer); returns what to restore."""
        saved = {}
        for name, cap in caps.items():
            if name in self.env:
                saved[name] = self.env[name]
                if cap:
                    self.env[name] = min(self.env[name], cap)
                else:
                    del self.env[name]
        return saved

    def block(self, body) -> None:
        if isinstance(body, cst.SimpleStatementSuite):
            for small in body.body:
                self.small(small)
            return
        stmts = body.body if isinstance(body, cst.IndentedBlock) else body
        for stmt in stmts:
            self.stmt(stmt)

    def branch(self, bodies: list, narrowed: dict[str, int] | None = None) -> None:
        """Run alternative bodies from the same state; join by taking the larger kind. The
        first body runs with `narrowed` names capped (an `if isinstance(...)` body)."""
        start = dict(self.env)
        results = []
        for i, body in enumerate(bodies):
            self.env = dict(start)
            if i == 0 and narrowed:
                self.narrow(narrowed)
            if body is not None:
                self.block(body)
            results.append(self.env)
        merged: dict[str, int] = {}
        for env in results:
            for k, v in env.items():
                merged[k] = max(merged.get(k, 0), v)
        self.env = merged

    def stmt(self, s: cst.CSTNode) -> None:
        ev = self.eval.kind
        if isinstance(s, cst.SimpleStatementLine):
            for small in s.body:
                self.small(small)
        elif isinstance(s, cst.If):
            ev(s.test)
            narrowed = self.eval.narrowing(s.test)
            orelse = s.orelse
            if isinstance(orelse, cst.If):
                self.branch([s.body, [orelse]], narrowed)
            else:
                self.branch([s.body, orelse.body if orelse is not None else None], narrowed)
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
                k = ev(item.item)
                if item.asname is not None:
                    self.bind(item.asname.name, k)
            self.block(s.body)
        elif isinstance(s, (cst.Try, cst.TryStar)):
            bodies = [s.body] + [h.body for h in s.handlers]
            if s.orelse is not None:
                bodies.append(s.orelse.body)
            self.branch(bodies)
            if s.finalbody is not None:
                self.block(s.finalbody.body)
        elif isinstance(s, cst.FunctionDef):
            self.closure(s)
            for dec in s.decorators:
                ev(dec.decorator)
            self.env.pop(s.name.value, None)
        elif isinstance(s, cst.ClassDef):
            self.env.pop(s.name.value, None)
        elif isinstance(s, cst.Match):
            ev(s.subject)
            self.branch([c.body for c in s.cases])

    def small(self, s: cst.CSTNode) -> None:
        ev = self.eval.kind
        if isinstance(s, cst.Assign):
            k = ev(s.value)
            for t in s.targets:
                self.bind(t.target, k)
        elif isinstance(s, cst.AnnAssign):
            if s.value is not None:
                self.bind(s.target, ev(s.value))
        elif isinstance(s, cst.AugAssign):
            k = max(ev(s.value), ev(s.target))
            self.bind(s.target, ARRAY if k else STATIC)
        elif isinstance(s, cst.Expr):
            ev(s.value)
        elif isinstance(s, cst.Return):
            if s.value is not None:
                ev(s.value)
        elif isinstance(s, cst.Assert):
            ev(s.test)
            if s.msg is not None:
                ev(s.msg)
        elif isinstance(s, cst.Raise):
            if s.exc is not None:
                ev(s.exc)
        elif isinstance(s, cst.Del):
            pass
        elif isinstance(s, (cst.Import, cst.ImportFrom)):
            if isinstance(s, cst.Import) or not isinstance(s.names, cst.ImportStar):
                for alias in s.names:
                    name = alias.asname.name if alias.asname is not None else alias.name
                    if isinstance(name, cst.Name):
                        self.env.pop(name.value, None)


def _unpack(target: cst.BaseExpression) -> list[cst.BaseExpression] | None:
    """The parts of a tuple/list target without starred elements, else None."""
    if not isinstance(target, (cst.Tuple, cst.List)):
        return None
    if any(isinstance(el, cst.StarredElement) for el in target.elements):
        return None
    return [el.value for el in target.elements]
