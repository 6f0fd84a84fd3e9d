"""Python side effects inside traced functions: they run once, at trace time, on tracers."""

from __future__ import annotations

import ast

import libcst as cst

from jaxdoctor.findings import Applicability, Severity
from jaxdoctor.rules._values import is_jax_array, is_not_jax_array
from jaxdoctor.rules.random import ABSTRACT
from jaxdoctor.rules.tracing import where
from jaxdoctor.static.values import STATIC, holds_tracers
from jaxdoctor.static.rule import LintRule
from jaxdoctor.static.syntax import self_attr
from jaxdoctor.static.walker import children, iter_tree

_MUTATORS = frozenset({"append", "extend", "insert", "add", "update", "setdefault", "appendleft",
                       "extendleft"})
#: methods where module state is initialised, by framework convention
_INIT_METHODS = frozenset({"__init__", "setup", "__post_init__", "__setstate__", "init"})
#: NNX / Linen variable wrappers: `self.x = nnx.Param(...)` stores state the framework tracks
_VARIABLE_PREFIXES = ("flax.nnx.", "flax.linen.")


class SideEffectInTracedFunction(LintRule):
    code = "JD103"
    name = "side-effect-in-traced-function"
    severity = Severity.WARNING
    summary = "`print`, appends to outer lists, `global`/`nonlocal` writes or tracers stored on `self` in a traced function"
    fix_title = "Use `jax.debug.print` to print values; return results instead of mutating outer state"
    fix_applicability = Applicability.UNSAFE

    # ----------------------------------------------------------------- print
    def visit_Call(self, node: cst.Call) -> None:
        info = self.ctx.traced_function()
        if info is None:
            return
        q = self.ctx.qualname(node.func)
        if q == "builtins.print":
            # under `grad` alone a print shows the primal value; an eager shard_map shows shards
            if info.staged and (info.transform is None or info.transform.qualname not in ABSTRACT) \
                    and not self._eager(info):
                self._print(node, info)
            return
        func = node.func
        if q is None and isinstance(func, cst.Attribute) and func.attr.value in _MUTATORS:
            self._mutation(node, func, info)

    def _eager(self, info) -> bool:
        """Traced only by a `shard_map` that runs eagerly (no traced caller): its `print`
        shows each shard's values."""
        t = info.transform
        if t is None or not t.qualname.endswith("shard_map") or info.via.startswith("called"):
            return False
        semantic = self.ctx.semantic
        for _call, scope, _order, _callee in semantic.sites.get(info, ()):
            fn = self.ctx.index.enclosing_function(scope)
            if fn is not None and fn.traced:
                return False
        return True

    def _print(self, node: cst.Call, info) -> None:
        semantic = self.ctx.semantic
        traced = [a for a in node.args if a.keyword is None and _traced_in(a.value, semantic)]
        if not traced:
            return
        fix = None
        replacement = self._debug_print(node)
        if replacement is not None:
            fix = self.fix((node, replacement), title="Use `jax.debug.print`")
        self.report(
            node,
            f"`print` of traced value `{self.ctx.code(traced[0].value)}`{where(info)}: it runs once, "
            f"while tracing, and prints a tracer, not the values",
            fix=fix,
            fix_title="Use `jax.debug.print(\"x = {}\", x)` to print values at run time",
        )

    def _debug_print(self, node: cst.Call) -> str | None:
        """`print("x", x)` / `print(f"x={x:.3f}")` → `jax.debug.print("x {}", x)`, or None."""
        jax_name = next((local for local, full in self.ctx.names.aliases.items() if full == "jax"), None)
        if jax_name is None:
            return None
        pieces: list[str] = []
        values: list[str] = []
        for arg in node.args:
            if arg.keyword is not None or arg.star:
                return None  # sep=, end=, file=, *args: not the same output
            v = arg.value
            if isinstance(v, cst.SimpleString):
                prefix = v.prefix.lower()
                if "b" in prefix:
                    return None
                text = v.evaluated_value
                if not isinstance(text, str):
                    return None
                pieces.append(text.replace("{", "{{").replace("}", "}}"))
            elif isinstance(v, cst.FormattedString):
                part = self._fstring(v, values)
                if part is None:
                    return None
                pieces.append(part)
            else:
                pieces.append("{}")
                values.append(self.ctx.module.code_for_node(v).strip())
        fmt = " ".join(pieces)
        args = ", ".join([repr(fmt)] + values)
        return f"{jax_name}.debug.print({args})"

    def _fstring(self, v: cst.FormattedString, values: list[str]) -> str | None:
        prefix = v.prefix.lower()
        if "r" in prefix or "b" in prefix:
            return None
        quote = v.quote
        out = []
        for part in v.parts:
            if isinstance(part, cst.FormattedStringText):
                try:
                    # braces stay doubled in the source text, which is what str.format wants
                    text = ast.literal_eval(quote + part.value + quote)
                except (ValueError, SyntaxError):
                    return None
                out.append(text)
            else:
                if part.whitespace_before_expression.value or part.whitespace_after_expression.value:
                    pass
                if part.equal is not None:
                    return None  # f"{x=}" prints the expression text too
                spec = ""
                if part.format_spec:
                    if not all(isinstance(p, cst.FormattedStringText) for p in part.format_spec):
                        return None
                    spec = ":" + "".join(p.value for p in part.format_spec)
                conv = f"!{part.conversion}" if part.conversion else ""
                out.append("{" + conv + spec + "}")
                values.append(self.ctx.module.code_for_node(part.expression).strip())
        return "".join(out)

    # --------------------------------------------------- outer containers
    def _outer(self, name: str) -> tuple[object, bool] | None:
        """(scope binding `name`, whether it is outside every traced function), for a name
        that is not local to the current function; None when local or unknown."""
        b = self.ctx.lookup(name)
        if b is None or b.scope is self.ctx.scope():
            return None
        return b.scope, True

    def _traced_outer(self, name: str, info) -> object | None:
        """The scope that binds `name`, when that is outside the trace of the current function:
        the module, an untraced function, or (for loop/branch bodies) the function around it."""
        b = self.ctx.lookup(name)
        if b is None or b.scope is self.ctx.scope():
            return None
        scope = b.scope
        if isinstance(scope, cst.ClassDef):
            return None
        if isinstance(scope, (cst.FunctionDef, cst.Lambda)):
            outer_info = self.ctx.semantic.function(scope)
            if outer_info is not None and outer_info.traced:
                transform = info.transform
                # a helper called (or a nested function jitted) inside a traced function shares
                # its trace; a loop/branch body does not: its tracers leak out of it
                if transform is None or not transform.control_flow:
                    return None
        return scope

    def _container_binding(self, scope, name: str) -> bool:
        """`name` is a Python container made in `scope` that keeps what the traced function
        stores in it: a module-level container, or a function's local that the traced function
        does not itself read back (a scratch index list, rewritten and read in the same trace,
        keeps nothing)."""
        bindings = self.ctx.index.bindings(scope, name)
        values = [b.value for b in bindings if b.value is not None]
        if not values or not all(
            is_not_jax_array(v, self.ctx.names) and not is_jax_array(v, self.ctx.names) for v in values
        ):
            return False
        if isinstance(scope, cst.Module):
            return True
        here = self.ctx.enclosing(cst.FunctionDef, cst.Lambda)
        return here is None or not _read_in(here, name)

    def _mutation(self, node: cst.Call, func: cst.Attribute, info) -> None:
        target = func.value
        values = [a.value for a in node.args]
        if not any(self.ctx.semantic.holds_tracers(v) for v in values):
            return
        if isinstance(target, cst.Name):
            scope = self._traced_outer(target.value, info)
            if scope is None or not self._container_binding(scope, target.value):
                return
            here = self.ctx.enclosing(cst.FunctionDef, cst.Lambda)
            if here is not None and _popped_in(here, target.value):
                return  # a context stack pushed and popped within the trace (Haiku's frames)
            self.report(
                node,
                f"`{self.ctx.code(node)}` stores a traced value in `{target.value}`, defined outside "
                f"the traced function{where(info)}: it runs once, while tracing, and leaks tracers",
                fix_title="Return the values (or stack them with `jax.lax.scan`) instead of appending",
            )
        elif (self_attr(target) is not None and info.is_method and info.name not in _INIT_METHODS
              and _holds_container(info.cls, target.attr.value)):
            # `self.buf.append(x)` on a list the class made leaks; `self.engine.insert(...)` is a
            # method of some other object
            self.report(
                node,
                f"`{self.ctx.code(node)}` stores a traced value on `self`{where(info)}: it runs once, "
                f"while tracing, and leaks tracers",
                fix_title="Return the values instead of storing them on the object",
            )

    def visit_Assign(self, node: cst.Assign) -> None:
        info = self.ctx.traced_function()
        if info is None:
            return
        for target in node.targets:
            self._write(node, target.target, node.value, info)

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        info = self.ctx.traced_function()
        if info is None:
            return
        self._write(node, node.target, node.value, info, augmented=True)

    def _write(self, node, target, value, info, augmented: bool = False) -> None:
        semantic = self.ctx.semantic
        if isinstance(target, (cst.Tuple, cst.List)):
            for el in target.elements:
                self._write(node, el.value, value, info, augmented)
            return
        if isinstance(target, cst.Name):
            fn = self.ctx.enclosing(cst.FunctionDef, cst.Lambda)
            how = self.ctx.index.scope(fn).declared.get(target.value) if fn is not None else None
            # a tracer written out of the trace leaks; a Python value written there counts
            # traces, not calls — the point of the test idiom `nonlocal n; n += 1` ... `assert
            # n == 1`, a bug anywhere else
            v = semantic.value(value)
            abstract = info.transform is not None and info.transform.qualname in ABSTRACT
            if abstract and not holds_tracers(v):
                return  # `jax.eval_shape`/`make_jaxpr` run the function to learn about it: a Python
                # value written out of it (a shape, a graph) is the point
            # a Python value computed afresh (`nonlocal graphdef; graphdef, state = nnx.split(m)`)
            # is caught from the trace on purpose; one updated from itself (`n += 1`, `n = n + 1`)
            # counts traces where the author meant calls
            counter = augmented or any(isinstance(n, cst.Name) and n.value == target.value
                                       for n in iter_tree(value))
            if how is not None and (holds_tracers(v) or (
                    v == STATIC and counter and not self._asserted(fn, target.value, how))):
                self.report(
                    node,
                    f"`{how} {target.value}` written{where(info)}: the write runs once, while "
                    f"tracing, not on every call (and stores a tracer if the value is traced)",
                    fix_title="Return the new value instead of writing a global",
                )
            return
        if isinstance(target, cst.Subscript) and isinstance(target.value, cst.Name):
            if not semantic.holds_tracers(value):
                return
            name = target.value.value
            scope = self._traced_outer(name, info)
            if scope is None or not self._container_binding(scope, name):
                return
            self.report(
                node,
                f"`{self.ctx.code(target)} = ...` stores a traced value in `{name}`, defined outside "
                f"the traced function{where(info)}: it runs once, while tracing, and leaks tracers",
                fix_title="Return the values instead of storing them in an outer container",
            )
            return
        if self_attr(target) is not None:
            if not info.is_method or info.name in _INIT_METHODS:
                return
            if info.cls is not None and self.ctx.semantic.class_family(info.cls) == "nnx":
                return  # NNX modules are mutable: `nnx.jit` and friends carry attribute updates out
            if not semantic.holds_tracers(value):
                return
            family = self.ctx.semantic.class_family(info.cls) if info.cls is not None else None
            if family == "nnx" and self._nnx_ok(value):
                return
            self.report(
                node,
                f"`{self.ctx.code(target)} = ...` stores a traced value on `self`{where(info)}: it "
                f"runs once, while tracing, and the stored tracer leaks out of the trace",
                fix_title=(
                    "Return the new state instead (or keep it in an `nnx.Variable` and update "
                    "`.value`)"
                ),
            )

    def _asserted(self, fn, name: str, how: str) -> bool:
        """The scope that owns `name` checks it in an `assert` or an `assert*(...)` call
        (`self.assertEqual(n, 1)`, `np.testing.assert_equal`): a deliberate trace counter."""
        owner = self.ctx.module if how == "global" else self.ctx.index.scope_of_node.get(fn)
        while owner is not None and not isinstance(owner, (cst.FunctionDef, cst.Module)):
            owner = self.ctx.index.scope_of_node.get(owner)
        if owner is None:
            return False
        for node in iter_tree(owner):
            checked = None
            if isinstance(node, cst.Assert):
                checked = node.test
            elif isinstance(node, cst.Call):
                func = node.func
                last = func.attr.value if isinstance(func, cst.Attribute) else func.value if isinstance(func, cst.Name) else ""
                if last.startswith("assert"):
                    checked = node
            if checked is not None and any(isinstance(n, cst.Name) and n.value == name for n in iter_tree(checked)):
                return True
        return False

    def _nnx_ok(self, value: cst.BaseExpression) -> bool:
        """`self.x = nnx.Param(...)` / `nnx.Variable(...)`: NNX tracks it as state."""
        if isinstance(value, cst.Call):
            q = self.ctx.qualname(value.func)
            if q is not None and q.startswith(_VARIABLE_PREFIXES):
                return True
            if isinstance(value.func, cst.Name) and value.func.value[:1].isupper():
                return True  # a module / variable class of this file
        return False




def _holds_container(cls: cst.ClassDef | None, attr: str) -> bool:
    """Does the class assign `self.<attr>` a list, dict or set (literal or constructor)?"""
    if cls is None:
        return False
    for node in iter_tree(cls):
        if isinstance(node, (cst.Assign, cst.AnnAssign)):
            targets = [t.target for t in node.targets] if isinstance(node, cst.Assign) else [node.target]
            if any(self_attr(t) == attr for t in targets):
                v = node.value
                if isinstance(v, (cst.List, cst.Dict, cst.Set, cst.ListComp, cst.DictComp, cst.SetComp)):
                    return True
                if isinstance(v, cst.Call) and isinstance(v.func, cst.Name) and v.func.value in (
                        "list", "dict", "set", "deque", "defaultdict", "OrderedDict"):
                    return True
    return False


def _read_in(fn: cst.CSTNode, name: str) -> bool:
    """`fn`'s own code (not its nested functions) reads `name` somewhere other than as an
    assignment target, the container a subscript assignment writes into, or the receiver of
    `append`/`update`/..."""
    written: set[cst.CSTNode] = set()
    stack: list[cst.CSTNode] = [fn.body] if isinstance(fn, (cst.FunctionDef, cst.Lambda)) else [fn]
    while stack:
        node = stack.pop()
        if isinstance(node, (cst.FunctionDef, cst.Lambda, cst.ClassDef)):
            continue
        if isinstance(node, (cst.Assign, cst.AugAssign, cst.AnnAssign)):
            targets = [t.target for t in node.targets] if isinstance(node, cst.Assign) else [node.target]
            for t in targets:
                written.add(t)
                if isinstance(t, cst.Subscript):
                    written.add(t.value)
        elif isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute) \
                and node.func.attr.value in _MUTATORS:
            written.add(node.func.value)  # `xs.append(v)` writes `xs`
        if isinstance(node, cst.Name) and node.value == name and node not in written:
            return True
        stack.extend(children(node))
    return False


def _traced_in(e: cst.BaseExpression, semantic) -> bool:
    """A print argument that shows a tracer: traced itself, or an f-string/str() of one."""
    if isinstance(e, cst.FormattedString):
        return any(
            isinstance(p, cst.FormattedStringExpression) and _traced_in(p.expression, semantic)
            for p in e.parts
        )
    if isinstance(e, cst.Call) and semantic.names.qualname(e.func) in ("builtins.str", "builtins.repr", "builtins.format"):
        return any(_traced_in(a.value, semantic) for a in e.args)
    if isinstance(e, cst.BinaryOperation) and isinstance(e.operator, cst.Modulo):
        return _traced_in(e.right, semantic)
    if isinstance(e, cst.Call) and isinstance(e.func, cst.Attribute) and e.func.attr.value == "format":
        return any(_traced_in(a.value, semantic) for a in e.args)
    return semantic.holds_tracers(e)


def _popped_in(fn, name: str) -> bool:
    """`fn` itself calls `name.pop()`: what it pushes it takes off again before returning."""
    for node in iter_tree(fn):
        if (isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute)
                and node.func.attr.value == "pop" and isinstance(node.func.value, cst.Name)
                and node.func.value.value == name):
            return True
    return False
