"""The kind of an expression inside a traced function: static, traced (maybe a pytree), or a
traced array. Shared by the flow pass, which records the kind of each name it sees, and by
rules' queries, which read those records (`SemanticModel.kind`).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Iterable

import libcst as cst

from jaxdoctor.static.syntax import self_attr

if TYPE_CHECKING:
    from jaxdoctor.static.flow import Flow
    from jaxdoctor.static.traced import SemanticModel

STATIC, TRACED, ARRAY = 0, 1, 2

_STATIC_ATTRS = frozenset(
    {"shape", "ndim", "dtype", "size", "itemsize", "nbytes", "aval", "sharding", "weak_type",
     "devices", "device", "is_fully_replicated", "committed"}
)
_ARRAY_ATTRS = frozenset({"T", "mT", "real", "imag", "at", "flat", "value"})
#: Parameter names whose attributes are configuration, never array leaves.
_STATIC_ROOTS = frozenset(
    {"config", "cfg", "conf", "configs", "args", "hparams", "hp", "opts", "options", "settings",
     "flags", "FLAGS", "model_config"}
)
#: Attribute names that are hyperparameters on any object (a model's `.num_layers`, `.dim`,
#: `.use_bias`): Python data in NNX graphdefs, Equinox static fields and frozen configs alike.
_HYPERPARAMETER = re.compile(
    r"^(num|n|use|is|has)_|_(dim|dims|size|layers|heads|features|rate)$"
    r"|^(dim|features|depth|width|hidden_size|embed_dim|vocab_size|training|deterministic)$"
)
_ARRAY_METHODS = frozenset(
    {
        "sum", "mean", "max", "min", "any", "all", "astype", "reshape", "dot", "squeeze",
        "argmax", "argmin", "transpose", "ravel", "flatten", "clip", "round", "std", "var",
        "prod", "cumsum", "cumprod", "sort", "argsort", "take", "conj", "swapaxes", "repeat",
        "nonzero", "set", "add", "multiply", "divide", "power", "get", "apply", "min", "ptp",
        "trace", "diagonal", "view", "block_until_ready", "__getitem__", "__array__",
    }
)
#: Calls whose result is static whatever their arguments (they look at shapes or types).
_STATIC_CALLS = frozenset(
    {
        "builtins.len", "builtins.isinstance", "builtins.issubclass", "builtins.type",
        "builtins.id", "builtins.hasattr", "builtins.callable", "builtins.repr", "builtins.str",
        "builtins.print", "builtins.format", "builtins.float", "builtins.int", "builtins.bool",
        "builtins.complex", "jax.numpy.shape", "jax.numpy.ndim", "jax.numpy.size",
        "jax.numpy.result_type", "jax.numpy.issubdtype", "jax.numpy.dtype", "jax.numpy.iscomplexobj",
        "numpy.shape", "numpy.ndim", "numpy.size", "numpy.issubdtype", "numpy.result_type",
        "jax.eval_shape", "flax.nnx.eval_shape", "equinox.filter_eval_shape",
        "jax.tree_util.tree_structure", "jax.tree.structure", "jax.ShapeDtypeStruct",
        "jax.typeof", "jax.core.get_aval", "equinox.is_array", "equinox.is_inexact_array",
        "jax.dtypes.issubdtype", "jax.lax.axis_size", "jax.debug.print", "jax.debug.callback",
        "jax.debug.breakpoint",
    }
)
#: methods whose result is Python data even on a pytree of tracers: a dict's keys, and the
#: ahead-of-time chain (`f.lower(x).compile().cost_analysis()`)
_STATIC_METHODS = frozenset({"keys", "lower", "compile", "cost_analysis", "memory_analysis", "as_text"})
#: `isinstance(x, T)` with these `T`: `x` is a Python value, never a tracer (kind cap 0), or a
#: Python container that may hold tracers but is not one (cap 1)
_NARROWING_TYPES = {
    "builtins.int": STATIC, "builtins.float": STATIC, "builtins.bool": STATIC,
    "builtins.str": STATIC, "builtins.bytes": STATIC, "builtins.complex": STATIC,
    "numpy.ndarray": STATIC, "builtins.tuple": TRACED, "builtins.list": TRACED,
    "builtins.dict": TRACED,
}
_ARRAY_MODULES = ("jax.numpy", "jax.lax", "jax.nn", "jax.random", "jax.scipy", "jax.image",
                  "jax.ops")


class KindEvaluator:
    """Kind of an expression, given a lookup for names. Shared by the flow pass (which
    records what it sees) and by rules' queries (which read those records)."""

    def __init__(self, model: SemanticModel, flow: "Flow | None", lookup) -> None:
        self.model = model
        self.flow = flow
        self.lookup = lookup
        self.names = model.names

    def kind(self, e: cst.BaseExpression) -> int:
        method = getattr(self, "_" + type(e).__name__, None)
        if method is None:
            return STATIC
        return method(e)

    def _Name(self, e: cst.Name) -> int:
        return self.lookup(e)

    def _Attribute(self, e: cst.Attribute) -> int:
        base = self.kind(e.value)
        if base == STATIC or e.attr.value in _STATIC_ATTRS or e.attr.value in self.model.static_fields:
            return STATIC
        if e.attr.value not in _ARRAY_ATTRS and (
            (isinstance(e.value, cst.Name) and e.value.value in _STATIC_ROOTS)
            or _HYPERPARAMETER.search(e.attr.value)
        ):
            return STATIC  # `config.dropout`, `model.num_layers`: Python attributes, not leaves
        if e.attr.value in _ARRAY_ATTRS or base == ARRAY:
            return ARRAY
        return TRACED

    def _Subscript(self, e: cst.Subscript) -> int:
        base = self.kind(e.value)
        index = STATIC
        for el in e.slice:
            if isinstance(el.slice, cst.Index):
                index = max(index, self.kind(el.slice.value))
            else:
                for part in (el.slice.lower, el.slice.upper, el.slice.step):
                    if part is not None:
                        index = max(index, self.kind(part))
        if base == ARRAY or (index and base == STATIC and self_attr(e.value) is None):
            return ARRAY if (base or index) else STATIC
        return base

    def _Call(self, e: cst.Call) -> int:
        # calling a traced value (a module or pytree of functions passed in) gives a traced value
        func_kind = self.kind(e.func)
        arg_kinds = [(a, self.kind(a.value)) for a in e.args]
        if self.flow is not None:
            self.model._on_call(self.flow, e, arg_kinds)
        q = self.names.qualname(e.func)
        if q in _STATIC_CALLS:
            return STATIC
        any_arg = max((k for _a, k in arg_kinds), default=STATIC)
        if isinstance(e.func, cst.Attribute) and q is None:
            method = e.func.attr.value
            base = self.kind(e.func.value)
            if method in ("item", "tolist", "__bool__", "__int__", "__float__", "__index__"):
                return STATIC
            if method in _STATIC_METHODS and base:
                return STATIC
            if base:
                return ARRAY if method in _ARRAY_METHODS or base == ARRAY else TRACED
            return TRACED if any_arg else STATIC
        if q is not None and any(q.startswith(m + ".") for m in _ARRAY_MODULES):
            return ARRAY if any_arg else STATIC
        return TRACED if (any_arg or func_kind) else STATIC

    def _BinaryOperation(self, e: cst.BinaryOperation) -> int:
        return ARRAY if max(self.kind(e.left), self.kind(e.right)) else STATIC

    def _Comparison(self, e: cst.Comparison) -> int:
        kinds = [self.kind(e.left)] + [self.kind(c.comparator) for c in e.comparisons]
        if all(isinstance(c.operator, (cst.Is, cst.IsNot)) for c in e.comparisons):
            return STATIC
        if any(isinstance(c.operator, (cst.In, cst.NotIn)) for c in e.comparisons):
            # `"key" in batch` on a dict of tracers is a static membership test
            return ARRAY if kinds[0] == ARRAY else STATIC
        return ARRAY if max(kinds) else STATIC

    def _UnaryOperation(self, e: cst.UnaryOperation) -> int:
        k = self.kind(e.expression)
        if isinstance(e.operator, cst.Not):
            return STATIC
        return ARRAY if k else STATIC

    def _BooleanOperation(self, e: cst.BooleanOperation) -> int:
        left = self.kind(e.left)
        # `isinstance(g, int) and g == 1`: the right operand runs only once `g` is an int
        if isinstance(e.operator, cst.And):
            caps = self.narrowing(e.left)
        elif isinstance(e.left, cst.UnaryOperation) and isinstance(e.left.operator, cst.Not):
            caps = self.narrowing(e.left.expression)  # `not isinstance(g, int) or ...`
        else:
            caps = {}
        return max(left, self._narrowed(caps, e.right))

    def _IfExp(self, e: cst.IfExp) -> int:
        self.kind(e.test)
        return max(self._narrowed(self.narrowing(e.test), e.body), self.kind(e.orelse))

    def _narrowed(self, caps: dict[str, int], e: cst.BaseExpression) -> int:
        if not caps or self.flow is None:
            return self.kind(e)
        saved = self.flow.narrow(caps)
        try:
            return self.kind(e)
        finally:
            self.flow.env.update(saved)

    def narrowing(self, test: cst.BaseExpression) -> dict[str, int]:
        """Names that `test`, when true, proves to be Python values: `isinstance(x, int)`
        (and `and`-chains of such tests) → {"x": cap on its kind}."""
        if isinstance(test, cst.BooleanOperation) and isinstance(test.operator, cst.And):
            out = self.narrowing(test.left)
            for name, cap in self.narrowing(test.right).items():
                out[name] = min(out.get(name, cap), cap)
            return out
        if not (isinstance(test, cst.Call) and self.names.qualname(test.func) == "builtins.isinstance"
                and len(test.args) == 2 and isinstance(test.args[0].value, cst.Name)):
            return {}
        types = test.args[1].value
        elements = [el.value for el in types.elements] if isinstance(types, cst.Tuple) else [types]
        caps = [_NARROWING_TYPES.get(self.names.qualname(t) or "", None) for t in elements]
        if not caps or any(c is None for c in caps):
            return {}
        return {test.args[0].value.value: max(caps)}  # type: ignore[type-var]

    def _NamedExpr(self, e: cst.NamedExpr) -> int:
        k = self.kind(e.value)
        if self.flow is not None:
            self.flow.bind(e.target, k)
        return k

    def _container(self, elements: Iterable[cst.CSTNode]) -> int:
        k = STATIC
        for el in elements:
            value = getattr(el, "value", None)
            if isinstance(el, (cst.DictElement,)):
                k = max(k, self.kind(el.key), self.kind(el.value))
            elif value is not None:
                k = max(k, self.kind(value))
        return TRACED if k else STATIC

    def _Tuple(self, e: cst.Tuple) -> int:
        return self._container(e.elements)

    _List = _Tuple
    _Set = _Tuple

    def _Dict(self, e: cst.Dict) -> int:
        return self._container(e.elements)

    def _Starred(self, e) -> int:
        return self.kind(e.value)

    def _StarredElement(self, e) -> int:
        return self.kind(e.value)

    def _FormattedString(self, e: cst.FormattedString) -> int:
        for part in e.parts:
            if isinstance(part, cst.FormattedStringExpression):
                self.kind(part.expression)
        return STATIC

    def _Await(self, e: cst.Await) -> int:
        return self.kind(e.expression)

    def _Lambda(self, e: cst.Lambda) -> int:
        if self.flow is not None:
            self.flow.closure(e)
        return STATIC

    def _comprehension(self, e, elts: list[cst.BaseExpression]) -> int:
        flow = self.flow
        saved = dict(flow.env) if flow is not None else None
        comp = e.for_in
        while comp is not None:
            it = self.kind(comp.iter)
            if flow is not None:
                flow.bind_iter(comp.target, comp.iter, it)
            for cond in comp.ifs:
                self.kind(cond.test)
            comp = comp.inner_for_in
        k = max((self.kind(x) for x in elts), default=STATIC)
        if flow is not None and saved is not None:
            flow.env = saved
        return TRACED if k else STATIC

    def _ListComp(self, e) -> int:
        return self._comprehension(e, [e.elt])

    _SetComp = _ListComp
    _GeneratorExp = _ListComp

    def _DictComp(self, e) -> int:
        return self._comprehension(e, [e.key, e.value])
