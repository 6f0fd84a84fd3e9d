"""Flags that travel into layers: a Python train/eval flag that a `jit` traces and that reaches
a Flax layer which branches on it in Python (`nn.Dropout(deterministic=...)`,
`nn.BatchNorm(use_running_average=...)`, their NNX versions).

Two places matter to the user: the layer line (where it fails) and the jit boundary (where the
flag became a tracer, and where the fix goes: `static_argnames=`). `jit_origins` walks from a
flag back through call sites and closures to the jitted parameters it comes from; the Equinox
rule JD301 shares it.
"""

from __future__ import annotations

import libcst as cst

from jaxdoctor.findings import Severity
from jaxdoctor.static.index import ASSIGN, PARAM, FunctionInfo
from jaxdoctor.static.model import SemanticModel
from jaxdoctor.static.resolve import bind_args
from jaxdoctor.static.rule import LintRule
from jaxdoctor.static.syntax import call_arg
from jaxdoctor.static.transforms import PARTIALS
from jaxdoctor.static.values import ARRAY, TRACED
from jaxdoctor.static.walker import iter_tree

#: transforms whose traced arguments a `static_argnums`/`static_argnames` option keeps Python
JITS = frozenset({"jax.jit", "jax.pjit", "jax.experimental.pjit.pjit", "flax.nnx.jit"})


class _Layer:
    """A Flax layer that tests a flag with a Python `if`: the flag's keyword, its position in
    the call (after the input) and in the constructor, and whether a zero `rate` skips the
    test (`if self.rate == 0.0 or deterministic`)."""

    def __init__(self, short: str, flag: str, call_pos: int | None, ctor_pos: int | None, rate: bool) -> None:
        self.short, self.flag, self.call_pos, self.ctor_pos, self.rate = short, flag, call_pos, ctor_pos, rate


#: measured on flax 0.12.8: each raises `TracerBoolConversionError` on a traced flag
LAYERS = {
    "flax.linen.Dropout": _Layer("nn.Dropout", "deterministic", 0, 2, True),
    "flax.linen.BatchNorm": _Layer("nn.BatchNorm", "use_running_average", 0, 0, False),
    "flax.nnx.Dropout": _Layer("nnx.Dropout", "deterministic", None, None, True),
    "flax.nnx.BatchNorm": _Layer("nnx.BatchNorm", "use_running_average", 0, None, False),
}


def _positional(call: cst.Call, index: int | None) -> cst.BaseExpression | None:
    if index is None:
        return None
    pos = [a for a in call.args if a.keyword is None]
    if any(a.star for a in pos[: index + 1]):
        return None
    return pos[index].value if index < len(pos) else None


def _keyword(call: cst.Call, name: str) -> cst.BaseExpression | None:
    for a in call.args:
        if a.keyword is not None and a.keyword.value == name:
            return a.value
    return None


def _zero(expr: cst.BaseExpression | None) -> bool:
    return isinstance(expr, (cst.Integer, cst.Float)) and float(expr.value.replace("_", "")) == 0.0


def traced_flag(semantic: SemanticModel, expr: cst.BaseExpression) -> tuple[cst.BaseExpression, bool] | None:
    """(the traced value, whether Python's `not` is applied to it here) when the flag `expr`
    holds tracers: `training`, `not training`, `jnp.logical_not(training)`."""
    if semantic.value(expr) >= TRACED:
        return expr, False
    if isinstance(expr, cst.UnaryOperation) and isinstance(expr.operator, cst.Not):
        inner = expr.expression
        while isinstance(inner, cst.UnaryOperation) and isinstance(inner.operator, cst.Not):
            inner = inner.expression
        if semantic.value(inner) >= TRACED:
            return inner, True
    return None


def jit_origins(semantic: SemanticModel, expr: cst.BaseExpression, scope, order: int,
                depth: int = 0, seen: set | None = None) -> list[tuple[cst.CSTNode, FunctionInfo, str, str]]:
    """The jit boundaries a traced value comes from: (decorator or `jit(...)` call, the jitted
    function, its parameter, the transform's name), following names through assignments,
    closures and the call sites of plain functions and module methods."""
    seen = set() if seen is None else seen
    out: list = []
    if depth > 8:
        return out
    for name in iter_tree(expr):
        if not isinstance(name, cst.Name) or semantic.value(name) < TRACED:
            continue
        b = semantic.index.lookup(name.value, scope, order)
        if b is None or (b.node, name.value) in seen:
            continue
        seen.add((b.node, name.value))
        if b.how == ASSIGN and b.path is None and b.value is not None:
            out += jit_origins(semantic, b.value, b.scope, b.order, depth + 1, seen)
            continue
        if b.how != PARAM:
            continue
        info = semantic.function(b.scope)
        if info is None:
            continue
        boundaries = jit_boundaries(semantic, info)
        if boundaries and info.params.get(name.value, 0) >= TRACED \
                and name.value not in semantic.from_callers.get(info, ()):
            out += [(node, info, name.value, q) for node, q in boundaries]
            continue
        for call, s_scope, s_order, callee in semantic.sites.get(info, ()):
            arg = bind_args(call, info.positional, callee).get(name.value)
            if arg is not None:
                out += jit_origins(semantic, arg, s_scope, s_order, depth + 1, seen)
    return out


def jit_boundaries(semantic: SemanticModel, info: FunctionInfo) -> list[tuple[cst.CSTNode, str]]:
    """The `@jax.jit`/`@nnx.jit`/`partial(jax.jit, ...)` decorators of a function and the
    `jax.jit(f, ...)` calls that reach it."""
    cache = getattr(semantic, "_jit_boundaries", None)
    if cache is None:
        cache = _all_boundaries(semantic)
        semantic._jit_boundaries = cache  # type: ignore[attr-defined]  # one walk per file
    return cache.get(info, [])


def _all_boundaries(semantic: SemanticModel) -> dict[FunctionInfo, list[tuple[cst.CSTNode, str]]]:
    out: dict[FunctionInfo, list] = {}
    resolver = semantic.resolver
    for info in semantic.functions.values():
        if not isinstance(info.node, cst.FunctionDef):
            continue
        for dec in info.node.decorators:
            found = resolver.transform_of_expr(dec.decorator)
            if found is not None and found[0].qualname in JITS:
                out.setdefault(info, []).append((dec, found[0].qualname))
                break
    for call, scope, order in semantic.calls:
        spec = semantic.transform_of(call)
        if spec is None or spec.qualname not in JITS:
            continue
        for fn in resolver.function_args(call, spec):
            for c in resolver.callees(fn, scope, order):
                if c.transform is None:
                    out.setdefault(c.info, []).append((call, spec.qualname))
    return out


class TracedLayerFlag(LintRule):
    code = "JD203"
    name = "traced-layer-flag"
    severity = Severity.ERROR
    summary = ("A traced train/eval flag reaches a Flax layer that branches on it in Python "
               "(`nn.Dropout(deterministic=...)`, `nn.BatchNorm(use_running_average=...)`, NNX too)")
    fix_title = ("Keep the flag a Python bool: mark it static where it enters the jit "
                 "(`static_argnames=('train',)`), or pass `True`/`False` literally")
    trace_fix_title = "Mark the flag static in `jax.jit`/`nnx.jit` (`static_argnames=`)"
    requires = ("flax",)

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        #: jit boundary node → {parameter: the layer code it reaches}
        self._boundaries: dict[cst.CSTNode, dict[str, tuple[FunctionInfo, str, str]]] = {}

    def visit_Call(self, node: cst.Call) -> None:
        info = self.ctx.traced_function()
        if info is None:
            return
        found = self._layer_flag(node)
        if found is None:
            return
        layer, flag_expr, rate = found
        if layer.rate and _zero(rate):
            return  # `Dropout(rate=0.0)` returns before it tests the flag
        traced = traced_flag(self.ctx.semantic, flag_expr)
        if traced is None:
            return
        value, negated = traced
        semantic = self.ctx.semantic
        order = self.ctx.index.order.get(self.ctx.statement(), 1 << 30)
        origins = jit_origins(semantic, value, self.ctx.scope(), order)
        if not origins:
            return  # traced, but not by a jit this file shows (Linen's lifted `nn.scan` keeps
            # `nn.broadcast` flags Python): no evidence of where, so no finding
        code = self.ctx.code(value)
        _node, fn, param, q = origins[0]
        where = f"`{fn.name}`'s argument" if code == param else f"from `{fn.name}`'s argument `{param}`,"
        where = f"{where} traced by `{_short(q)}`"
        for bnode, fn_, param_, q_ in origins:
            self._boundaries.setdefault(bnode, {}).setdefault(param_, (fn_, q_, f"{layer.short}({layer.flag}=...)"))
        if negated and semantic.value(value) == ARRAY and info.staged:
            return  # JD101 reports Python's `not` on the traced array at this line; the
            # boundary finding below says where it became traced
        if negated:
            fails = (f"Python's `not` on it raises `TracerBoolConversionError` here, before "
                     f"`{layer.short}` sees it")
        else:
            fails = (f"`{layer.short}` tests `{layer.flag}` with a Python `if` and raises "
                     f"`TracerBoolConversionError` inside Flax")
        self.report(node, f"The flag `{layer.flag}={self.ctx.code(flag_expr)}` of `{layer.short}` is "
                          f"traced (`{code}` is {where}): {fails}")

    def leave_Module(self, node: cst.Module) -> None:
        for bnode, params in self._boundaries.items():
            names = sorted(params)
            fn, q, layer = params[names[0]]
            shown = ", ".join(f"`{n}`" for n in names)
            static = ", ".join(repr(n) for n in names) + ("," if len(names) == 1 else "")
            self.report(
                bnode,
                f"`{_short(q)}` traces {shown} of `{fn.name}`, a Python flag that reaches "
                f"`{layer}`, which branches on it in Python: `TracerBoolConversionError`",
                fix_title=f"Mark it static: `{_short(q)}(..., static_argnames=({static}))` "
                f"(one compilation per flag value), or pass the flag as a Python bool outside the jit",
            )

    # ------------------------------------------------------------------ which layer
    def _layer_flag(self, node: cst.Call) -> tuple[_Layer, cst.BaseExpression, cst.BaseExpression | None] | None:
        """(layer, flag expression, rate expression) when `node` builds or calls a flag layer
        with a flag."""
        q = self.ctx.qualname(node.func)
        if q in LAYERS:  # the constructor: `nn.Dropout(0.5, deterministic=not train)`
            layer = LAYERS[q]
            flag = _keyword(node, layer.flag) or _positional(node, layer.ctor_pos)
            return (layer, flag, call_arg(node, 0, "rate")) if flag is not None else None
        if q in PARTIALS and node.args and node.args[0].keyword is None:
            inner = self.ctx.qualname(node.args[0].value)
            if inner in LAYERS:  # `partial(nn.Dropout, rate=0.1, deterministic=not train)`
                layer = LAYERS[inner]
                flag = _keyword(node, layer.flag)
                rate = _keyword(node, "rate") or _positional(node, 1)
                return (layer, flag, rate) if flag is not None else None
            return None
        ctor = self._layer_ctor(node.func)
        if ctor is None:
            return None
        cq, ctor_call = ctor
        layer = LAYERS[cq]
        flag = _keyword(node, layer.flag)
        if flag is None and layer.call_pos is not None:
            flag = _positional(node, layer.call_pos + 1)
        if flag is None:
            return None
        rate = None
        if ctor_call is not None:
            rate = call_arg(ctor_call, 0, "rate") if self.ctx.qualname(ctor_call.func) == cq else \
                _keyword(ctor_call, "rate") or _positional(ctor_call, 1)
        return layer, flag, rate

    def _layer_ctor(self, func: cst.BaseExpression) -> tuple[str, cst.Call | None] | None:
        """The layer constructor call that built the instance `func` calls: inline
        (`nn.Dropout(0.5)(x, ...)`), a local name, or `self.attr` assigned in a method."""
        semantic = self.ctx.semantic
        value: cst.BaseExpression | None = func
        if isinstance(func, cst.Name):
            value = semantic.assigned_value(func.value, self.ctx.scope(), self.ctx.statement())
        elif isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name) and func.value.value == "self":
            value = self._self_attr_value(func.attr.value)
        if not isinstance(value, cst.Call):
            return None
        q = self.ctx.qualname(value.func)
        if q in LAYERS:
            return q, value
        if q in PARTIALS and value.args and self.ctx.qualname(value.args[0].value) in LAYERS:
            return self.ctx.qualname(value.args[0].value), value  # type: ignore[return-value]
        return None

    def _self_attr_value(self, attr: str) -> cst.BaseExpression | None:
        """What `self.attr = ...` assigns in a method of the enclosing class (one assignment)."""
        cls = self.ctx.enclosing(cst.ClassDef)
        if not isinstance(cls, cst.ClassDef):
            return None
        found = []
        for stmt in iter_tree(cls):
            if isinstance(stmt, cst.Assign) and len(stmt.targets) == 1:
                t = stmt.targets[0].target
                if isinstance(t, cst.Attribute) and isinstance(t.value, cst.Name) and t.value.value == "self" \
                        and t.attr.value == attr:
                    found.append(stmt.value)
        return found[0] if len(found) == 1 else None


def _short(q: str) -> str:
    return q.replace("flax.nnx.", "nnx.").replace("jax.experimental.pjit.", "")
