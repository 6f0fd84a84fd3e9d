"""A jitted function called in a loop with a static argument that is new on every iteration, so
every call traces and compiles again (checked on jax 0.10.2 / equinox 0.13.8 by counting traces):

- `eqx.filter_jit` treats every non-array argument as static: a Python `int`/`float` loop index
  (`step`), or an `eqx.Module` whose Python `int` field is bumped each step
  (`eqx.tree_at(lambda m: m.step, m, m.step + 1)`), recompiles per value;
- a `jax.jit` `static_argnums`/`static_argnames` position given the loop index does the same;
- a static argument of a class without `__eq__`/`__hash__` is hashed by identity: an instance
  made afresh on each iteration never hits the cache.
"""

from __future__ import annotations

import libcst as cst

from jaxdoctor.findings import Severity
from jaxdoctor.rules._syntax import own_nodes
from jaxdoctor.rules.compilation import _configurations, _in_loop, static_positions
from jaxdoctor.static.index import ASSIGN, CLASS, target_names
from jaxdoctor.static.resolve import bind_args
from jaxdoctor.static.rule import LintRule
from jaxdoctor.static.values import STATIC
from jaxdoctor.static.walker import iter_tree

_JITS = frozenset({"jax.jit", "flax.nnx.jit", "equinox.filter_jit", "jax.pjit", "jax.experimental.pjit.pjit"})
_ARITH = (cst.Add, cst.Subtract, cst.Multiply, cst.Divide, cst.FloorDivide, cst.Modulo, cst.Power)
#: `jnp` functions whose (first) argument is a shape or size: a Python number there must be static
_SHAPED = frozenset({"zeros", "ones", "full", "empty", "arange", "eye", "identity", "linspace",
                     "reshape", "broadcast_to", "tile", "repeat", "tri", "tril", "triu", "split",
                     "array_split", "pad", "roll", "take", "expand_dims", "squeeze", "moveaxis"})


class StaticArgumentChangesEveryCall(LintRule):
    code = "JD126"
    name = "static-argument-changes-every-call"
    severity = Severity.WARNING
    summary = "A jitted function called in a loop with a static argument that is new on every iteration"
    fix_title = (
        "Pass the changing number as an array (`jnp.asarray(step)`, or an array field), keep it out "
        "of `static_argnums`, or build the static object once before the loop (or give it `__eq__`/`__hash__`)"
    )

    def visit_Call(self, node: cst.Call) -> None:
        callees = [c for c in self.ctx.semantic.callees(node)
                   if c.transform is not None and c.transform.qualname in _JITS]
        if not callees or any(a.star for a in node.args):
            return
        loop = _in_loop(self.ctx.ancestors)
        if not isinstance(loop, (cst.For, cst.While)):
            return
        # `for i in range(3): f(x, i)`, `for n in (1, 2, 4)`: a few programs, one per value, on
        # purpose. A fresh object or a module rebuilt around the same values each iteration is
        # not a sweep: those recompile for nothing however short the loop.
        sweep = isinstance(loop, cst.For) and (_configurations(loop.iter) or (
            isinstance(loop.iter, cst.Call) and self.ctx.qualname(loop.iter.func) == "builtins.range"
            and self._few(loop.iter)))
        # a loop that threads the call's result into the next iteration (`params = step(opt,
        # params, x)`) is the program's main loop, not a sweep, however few its iterations
        threads = _threads(node, self.ctx.parent, loop)
        callee = callees[0]
        info = callee.info
        filtered = callee.transform.qualname == "equinox.filter_jit"
        if filtered:
            static = set(range(len(node.args)))
            names: set[str] = set()
        else:
            static, names = static_positions(self.ctx, callee)
            if callee.decorated and info.is_method and not info.is_staticmethod:
                static = {n - 1 for n in static if n >= 1}
        if not static and not names:
            return
        bound = bind_args(node, info.positional, callee)
        by_arg = {id(v): k for k, v in bound.items()}
        index = 0
        for a in node.args:
            is_static = (a.keyword is None and index in static) or (a.keyword is not None and a.keyword.value in names)
            if filtered:
                is_static = True
            if a.keyword is None:
                index += 1
            if not is_static:
                continue
            param = by_arg.get(id(a.value))
            why = self._changes(a.value, loop, filtered)
            if why is not None and sweep and not threads:
                why = None
            if why is not None:
                if why[1] and param is not None and self._needs_static(info, param):
                    continue  # a size or a Python branch: one program per value is the point
                how = "`eqx.filter_jit` treats non-array arguments as static" if filtered else \
                    "it is a static argument"
                self.report(
                    a.value if why[1] else self._built_at(a.value, loop),
                    f"`{self.ctx.code(a.value)}` {why[0]}, and {how}: `{self.ctx.code(node.func)}` "
                    "traces and compiles again on every iteration",
                )
                return
            cls = self._fresh_identity(a.value, loop, filtered)
            if cls is not None and sweep and not threads and self._varies(a.value, loop):
                cls = None  # `for i in range(3): f(Opts(i))`: three configurations
            if cls is not None:
                self.report(
                    a.value,
                    f"`{self.ctx.code(a.value)}` is a new `{cls}` on every iteration, and `{cls}` has no "
                    f"`__eq__`/`__hash__`: as a static argument it is hashed by identity, so "
                    f"`{self.ctx.code(node.func)}` never finds its compiled program and compiles again",
                )
                return

    # ------------------------------------------------------------ loop-varying numbers
    def _indices(self, loop: cst.For | cst.While) -> set[str]:
        """Names that hold a different Python int on each iteration: the target of
        `for i in range(...)`, the index of `enumerate`, a counter `n += 1` in the body of a
        name set to an int before the loop, and names the body computes from those."""
        out: set[str] = set()
        if isinstance(loop, cst.For) and isinstance(loop.iter, cst.Call):
            q = self.ctx.qualname(loop.iter.func)
            targets: list[cst.Name] = []
            if q == "builtins.range":
                target_names(loop.target, targets)
            elif q == "builtins.enumerate" and isinstance(loop.target, (cst.Tuple, cst.List)) and loop.target.elements:
                target_names(loop.target.elements[0].value, targets)
            out.update(t.value for t in targets)
        for n in iter_tree(loop.body):
            if isinstance(n, cst.AugAssign) and isinstance(n.target, cst.Name) and \
                    isinstance(n.operator, (cst.AddAssign, cst.SubtractAssign)) and \
                    isinstance(n.value, cst.Integer):
                b = self.ctx.lookup(n.target.value, loop)
                if b is not None and b.how == ASSIGN and isinstance(b.value, cst.Integer):
                    out.add(n.target.value)
        changed = True
        while changed:  # names computed in the body from an index: `lr = 0.1 * 0.9 ** epoch`
            changed = False
            for n in iter_tree(loop.body):
                if isinstance(n, cst.Assign) and len(n.targets) == 1 and isinstance(n.targets[0].target, cst.Name) \
                        and n.targets[0].target.value not in out and self._number(n.value, out):
                    out.add(n.targets[0].target.value)
                    changed = True
        return out

    @staticmethod
    def _few(it: cst.Call) -> bool:
        """`range` with literal bounds of at most 10 iterations."""
        args = [a.value for a in it.args]
        if not args or not all(isinstance(a, cst.Integer) for a in args):
            return False
        vals = [int(a.value.replace("_", ""), 0) for a in args]  # type: ignore[union-attr]
        start, stop = (0, vals[0]) if len(vals) == 1 else (vals[0], vals[1])
        step = vals[2] if len(vals) == 3 else 1
        return step > 0 and (stop - start) // step <= 10

    def _number(self, e: cst.BaseExpression, indices: set[str]) -> bool:
        """`e` is a Python number computed from a loop index (and literals) only."""
        if isinstance(e, cst.Name):
            return e.value in indices
        if isinstance(e, cst.BinaryOperation) and isinstance(e.operator, _ARITH):
            sides = [e.left, e.right]
            ok = [self._number(s, indices) or isinstance(s, (cst.Integer, cst.Float)) for s in sides]
            return all(ok) and any(self._number(s, indices) for s in sides)
        if isinstance(e, cst.UnaryOperation):
            return self._number(e.expression, indices)
        if isinstance(e, cst.Call) and self.ctx.qualname(e.func) in ("builtins.int", "builtins.float") \
                and len(e.args) == 1:
            return self._number(e.args[0].value, indices)
        return False

    def _changes(self, e: cst.BaseExpression, loop, filtered: bool) -> tuple[str, bool] | None:
        """(what changes, whether it is the argument itself) when the argument is a new
        Python number on each iteration, or (Equinox) a module carrying one in a field."""
        indices = self._indices(loop)
        if self._number(e, indices):
            return ("is a Python number that changes on every iteration", True)
        if not filtered:
            return None
        field = self._module_number(e, loop, indices)
        if field is not None:
            return (f"carries a Python number in its field `{field}` that changes on every iteration", False)
        return None

    def _module_number(self, e: cst.BaseExpression, loop, indices: set[str]) -> str | None:
        """The field of an `eqx.Module` argument that holds a new Python number each iteration:
        `Model(w, step=i)`, or a name the loop rebinds with `eqx.tree_at(lambda m: m.f, m, <n>)` /
        `dataclasses.replace(m, f=<n>)` where `<n>` is an index or `m.f + 1` of an `int` field."""
        values = [e]
        if isinstance(e, cst.Name):
            values = [n.value for n in iter_tree(loop.body) if isinstance(n, cst.Assign)
                      and any(isinstance(t.target, cst.Name) and t.target.value == e.value for t in n.targets)]
        for v in values:
            if not isinstance(v, cst.Call):
                continue
            q = self.ctx.qualname(v.func)
            if q == "equinox.tree_at" and len(v.args) >= 3:
                where, new = v.args[0].value, v.args[2].value
                if isinstance(where, cst.Lambda) and isinstance(where.body, cst.Attribute):
                    field = where.body.attr.value
                    if self._number(new, indices) or self._bumped(new, field):
                        return field
            elif q == "dataclasses.replace":
                for a in v.args[1:]:
                    if a.keyword is not None and (self._number(a.value, indices) or self._bumped(a.value, a.keyword.value)):
                        return a.keyword.value
            else:
                cls = self._eqx_class(v.func)
                if cls is None:
                    continue
                fields = [s.target.value for s in self._fields(cls)]
                pos = 0
                for a in v.args:
                    name = a.keyword.value if a.keyword is not None else (fields[pos] if pos < len(fields) else None)
                    if a.keyword is None:
                        pos += 1
                    if name is not None and self._number(a.value, indices) and self._number_field(cls, name):
                        return name
        return None

    def _bumped(self, e: cst.BaseExpression, field: str) -> bool:
        """`m.f + 1` (or `- 1`) where `f` is an `int`/`float` field of an `eqx.Module` class of the file."""
        return (isinstance(e, cst.BinaryOperation) and isinstance(e.operator, (cst.Add, cst.Subtract))
                and isinstance(e.left, cst.Attribute) and e.left.attr.value == field
                and isinstance(e.right, (cst.Integer, cst.Float))
                and any(self._number_field(c, field) for c in self._eqx_classes()))

    def _eqx_classes(self) -> list[cst.ClassDef]:
        return [c for c in self.ctx.semantic.classes if self.ctx.semantic.class_family(c) == "equinox"]

    def _eqx_class(self, func: cst.BaseExpression) -> cst.ClassDef | None:
        if not isinstance(func, cst.Name):
            return None
        b = self.ctx.lookup(func.value)
        if b is None or b.how != CLASS:
            return None
        cls = b.node
        return cls if self.ctx.semantic.class_family(cls) == "equinox" else None  # type: ignore[return-value]

    @staticmethod
    def _fields(cls: cst.ClassDef) -> list[cst.AnnAssign]:
        if not isinstance(cls.body, cst.IndentedBlock):
            return []
        out = []
        for stmt in cls.body.body:
            if isinstance(stmt, cst.SimpleStatementLine):
                out.extend(s for s in stmt.body if isinstance(s, cst.AnnAssign) and isinstance(s.target, cst.Name))
        return out

    def _number_field(self, cls: cst.ClassDef, name: str) -> bool:
        """A field annotated `int`/`float` and not `eqx.field(static=True)`-free of it: either way
        a Python number in a module is static under `filter_jit`; a custom `__init__` that may
        convert it to an array makes the evidence void."""
        if self.ctx.semantic.method(cls, "__init__") is not None:
            return False
        for f in self._fields(cls):
            if f.target.value == name:  # type: ignore[union-attr]
                ann = f.annotation.annotation
                return isinstance(ann, cst.Name) and ann.value in ("int", "float")
        return False

    def _needs_static(self, info, param: str, depth: int = 0) -> bool:
        """The jitted function uses `param` as more than a number in array arithmetic: a shape,
        a `range` bound, a Python branch, an argument of a function the file cannot see. Then
        a new value needs a new program and the recompile is the point. A number that only
        takes part in arithmetic with arrays, in `jnp`/`lax` math or as `fold_in` data (here
        or in a function of the file it is passed to) would work as well as a traced array."""
        fn = info.node
        numeric: list[cst.BaseExpression] = []
        uses = []
        semantic = self.ctx.semantic
        for n in own_nodes(fn) if isinstance(fn, cst.FunctionDef) else iter_tree(fn.body):
            if isinstance(n, cst.Name) and n.value == param:
                uses.append(n)
            elif isinstance(n, cst.BinaryOperation) and isinstance(n.operator, _ARITH):
                for side, other in ((n.left, n.right), (n.right, n.left)):
                    if semantic.value(other) != STATIC:
                        numeric.append(side)
            elif isinstance(n, cst.Call):
                q = self.ctx.qualname(n.func) or ""
                last = q.rsplit(".", 1)[-1]
                if (q.startswith(("jax.numpy.", "jax.lax.", "jax.nn.")) and last not in _SHAPED) or \
                        q == "jax.random.fold_in":
                    numeric.extend(a.value for a in n.args
                                   if a.keyword is None or a.keyword.value not in ("shape", "axis", "num"))
                elif depth < 3 and any(isinstance(a.value, cst.Name) and a.value.value == param for a in n.args):
                    callees = semantic.callees(n)
                    if len(callees) == 1 and not any(a.star for a in n.args):
                        callee = callees[0]
                        for name, value in bind_args(n, callee.info.positional, callee).items():
                            if isinstance(value, cst.Name) and value.value == param and \
                                    not self._needs_static(callee.info, name, depth + 1):
                                numeric.append(value)
        ok: set[int] = set()
        while numeric:
            e = numeric.pop()
            if isinstance(e, cst.Name):
                ok.add(id(e))
            elif isinstance(e, cst.BinaryOperation) and isinstance(e.operator, _ARITH):
                numeric.extend((e.left, e.right))
            elif isinstance(e, cst.UnaryOperation):
                numeric.append(e.expression)
        return not uses or any(id(u) not in ok for u in uses)

    def _built_at(self, e: cst.BaseExpression, loop) -> cst.CSTNode:
        """Where the loop builds the argument `e` (`opt = SGD(lr=...)` for `step(opt, ...)`):
        the line to change."""
        if isinstance(e, cst.Name):
            for n in iter_tree(loop.body):
                if isinstance(n, cst.Assign) and any(isinstance(t.target, cst.Name) and t.target.value == e.value
                                                     for t in n.targets):
                    return n.value
        return e

    def _varies(self, e: cst.BaseExpression, loop) -> bool:
        """The constructor call that makes `e` reads a name the loop binds (its index, ...)."""
        value = self._built_at(e, loop)
        bound = set()
        if isinstance(loop, cst.For):
            bound |= {n.value for n in iter_tree(loop.target) if isinstance(n, cst.Name)}
        for n in iter_tree(loop.body):
            if isinstance(n, cst.Assign):
                bound |= {t.value for t in iter_tree(n.targets[0].target) if isinstance(t, cst.Name)}
        return any(isinstance(n, cst.Name) and n.value in bound for n in iter_tree(value)
                   if n is not getattr(value, "func", None))

    # ------------------------------------------------------------ identity hashing
    def _fresh_identity(self, e: cst.BaseExpression, loop, filtered: bool) -> str | None:
        """`Cls(...)` (inline or bound in the loop body) of a plain class of the file that
        hashes by identity: no bases, no decorators, no `__eq__`/`__hash__`, not registered as
        a pytree (for `filter_jit`, which flattens pytrees)."""
        value = e
        if isinstance(e, cst.Name):
            b = self.ctx.lookup(e.value)
            if b is None or b.how != ASSIGN or b.path is not None or b.value is None or \
                    not any(n is b.node for n in iter_tree(loop.body)):
                return None
            value = b.value
        if not isinstance(value, cst.Call) or not isinstance(value.func, cst.Name):
            return None
        b = self.ctx.lookup(value.func.value)
        if b is None or b.how != CLASS:
            return None
        cls: cst.ClassDef = b.node  # type: ignore[assignment]
        if any(not self._identity_dataclass(d.decorator) for d in cls.decorators) or any(not (isinstance(base.value, cst.Name) and base.value.value == "object")
                                 for base in cls.bases) or cls.keywords:
            return None
        for name in ("__eq__", "__hash__", "__new__"):
            if self.ctx.semantic.method(cls, name) is not None:
                return None
        if self._registered(cls.name.value):
            return None
        return cls.name.value

    def _identity_dataclass(self, d: cst.BaseExpression) -> bool:
        """`@dataclass(eq=False)`: no `__eq__`, so hashed by identity."""
        return isinstance(d, cst.Call) and self.ctx.qualname(d.func) == "dataclasses.dataclass" and any(
            a.keyword is not None and a.keyword.value == "eq" and isinstance(a.value, cst.Name)
            and a.value.value == "False" for a in d.args) and not any(
            a.keyword is not None and a.keyword.value in ("unsafe_hash", "frozen") for a in d.args)

    def _registered(self, name: str) -> bool:
        for call, _scope, _order in self.ctx.semantic.calls:
            q = self.ctx.qualname(call.func) or ""
            if "register" in q and any(isinstance(a.value, cst.Name) and a.value.value == name for a in call.args):
                return True
        return False


def _threads(call: cst.Call, parent: cst.CSTNode | None, loop) -> bool:
    """`x = f(x, ...)` / `params, state = step(params, state, ...)` in a loop: the result is read
    again by the loop (an iteration's output is the next one's input)."""
    if not isinstance(parent, cst.Assign):
        return False
    names = {n.value for t in parent.targets for n in iter_tree(t.target) if isinstance(n, cst.Name)}
    if not names:
        return False
    for n in iter_tree(loop.body):
        if isinstance(n, cst.Name) and n.value in names and not any(
                n is t for t in iter_tree(parent.targets[0].target)):
            return True
    return False
