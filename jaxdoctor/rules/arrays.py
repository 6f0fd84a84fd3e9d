"""Rules about JAX arrays as values: they are immutable."""

from __future__ import annotations

import libcst as cst

from jaxdoctor.findings import Applicability, Severity
from jaxdoctor.rules._values import (
    is_jax_array,
    is_not_jax_array,
    is_string_index,
)
from jaxdoctor.rules.tracing import where
from jaxdoctor.static.values import ARRAY, TRACED
from jaxdoctor.static.rule import LintRule
from jaxdoctor.static.index import ASSIGN, PARAM, target_names

#: augmented operator → the `.at[...]` method that does the same out of place
_AT_METHODS: dict[type, str] = {
    cst.AddAssign: "add",
    cst.SubtractAssign: "subtract",
    cst.MultiplyAssign: "multiply",
    cst.DivideAssign: "divide",
    cst.PowerAssign: "power",
}
_AUG_SYMBOL: dict[type, str] = {
    cst.AddAssign: "+=", cst.SubtractAssign: "-=", cst.MultiplyAssign: "*=", cst.DivideAssign: "/=",
    cst.PowerAssign: "**=", cst.FloorDivideAssign: "//=", cst.ModuloAssign: "%=",
    cst.MatrixMultiplyAssign: "@=", cst.BitAndAssign: "&=", cst.BitOrAssign: "|=",
    cst.BitXorAssign: "^=", cst.LeftShiftAssign: "<<=", cst.RightShiftAssign: ">>=",
}
#: parameter annotations that say "not an array"
_CONTAINER_ANNOTATIONS = frozenset(
    {"list", "List", "dict", "Dict", "MutableMapping", "MutableSequence", "Mapping", "Sequence",
     "tuple", "Tuple", "set", "Set", "defaultdict", "OrderedDict", "PyTree", "Any", "ndarray"}
)

#: NNX variable types: `.value` of one holds the array it was built from
_NNX_VARIABLES = frozenset(
    {"flax.nnx.Variable", "flax.nnx.Param", "flax.nnx.Cache", "flax.nnx.BatchStat",
     "flax.nnx.Intermediate", "flax.nnx.Perturbation"}
)
#: attributes of an NNX variable that are its raw value
_VALUE_ATTRS = frozenset({"value", "raw_value"})

ARRAY_VALUE, NOT_ARRAY_VALUE, UNKNOWN_VALUE, NUMPY_VALUE = "array", "not-array", "unknown", "numpy"
#: NumPy constructors: a NumPy array in a variable is mutable, until a transform traces it
_NUMPY_ARRAYS = ("numpy.zeros", "numpy.ones", "numpy.empty", "numpy.full", "numpy.array",
                 "numpy.asarray", "numpy.arange", "numpy.zeros_like", "numpy.ones_like")


class InplaceArrayUpdate(LintRule):
    code = "JD104"
    name = "inplace-array-update"
    severity = Severity.ERROR
    summary = "`x[i] = v` / `x[i] += v` on a JAX array (JAX arrays are immutable)"
    fix_title = "Use an out-of-place update: `x = x.at[i].set(v)` (`.add`, `.multiply`, ...)"
    trace_fix_title = "Use `x = x.at[i].set(v)` (or `.add`, `.mul`, ...) instead of `x[i] = v`"
    fix_applicability = Applicability.SAFE

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        # `self.attr = nnx.Param(...)` in a class: (class, attr) → what the variable holds
        self._variables: dict[tuple[cst.ClassDef | None, str], set[str]] = {}
        # `<...>.attr.value[i] = v` decided once every class's variables are known
        self._pending: list[tuple] = []
        #: the file writes Pallas kernels, whose parameters are refs
        self._pallas = any(v.startswith("jax.experimental.pallas") for v in ctx.names.aliases.values())

    # --------------------------------------------------------------- evidence
    def _is_array(self, stmt: cst.CSTNode, sub: cst.Subscript) -> bool:
        """`sub.value` is a JAX array, on evidence: bound to one (`x = jnp.zeros(...)`),
        annotated as one, or computed as one in a traced function. A parameter that is only
        traced may be a list, an `nnx.Variable`, a `jax.Ref` or a Pallas ref — all mutable by
        design — so tracedness alone is not evidence."""
        if is_string_index(sub):
            return False
        base = sub.value
        names = self.ctx.names
        binding = self.ctx.lookup(base.value, stmt) if isinstance(base, cst.Name) else None
        if binding is not None and binding.how == ASSIGN and binding.path is None:
            if is_jax_array(binding.value, names):
                return True
            if is_not_jax_array(binding.value, names) or _mutable_by_design(binding.value, names):
                return False
        only = sub.slice[0].slice if len(sub.slice) == 1 else None
        if isinstance(only, cst.Index) and isinstance(only.value, cst.Ellipsis):
            return False  # `x[...] = v`: how a `jax.Ref`, an `nnx.Variable` or a Pallas ref is written
        if binding is not None and binding.how == PARAM:
            if self._pallas:
                return False  # a Pallas kernel's parameters are refs (often annotated `jax.Array`)
            info = self.ctx.semantic.function(binding.scope)
            param = info.param(base.value) if info is not None else None
            if param is not None and self._annotation_says(param) is not None:
                return self._annotation_says(param)  # type: ignore[return-value]
        if self._mapping_key(sub):
            return False  # `for name in d: d[name] = ...` on a dict of arrays
        info = self.ctx.traced_function()
        if info is None:
            return False
        value = self.ctx.semantic.value(base)
        if value == ARRAY:
            return True
        return value == TRACED and self._array_argument(base, sub, info)

    def _array_argument(self, base, sub: cst.Subscript, info) -> bool:
        """`x[i] = v` on an argument that `jit`/`vmap`/`grad` traces as a pytree (not NNX,
        Equinox or loop carries, whose arguments are often lists, variables or refs)."""
        if not isinstance(base, cst.Name) or base.value not in info.trees:
            return False
        t = info.transform
        if t is None or t.control_flow or t.qualname.endswith("shard_map"):
            return False
        binding = self.ctx.lookup(base.value, self.ctx.statement())
        return binding is not None and binding.how == PARAM and binding.scope is info.node

    def _mapping_key(self, sub: cst.Subscript) -> bool:
        """The index is the variable of an enclosing `for` over something other than
        `range(...)`/`enumerate(...)` (a dict, its keys or items): a key, not an array index."""
        if len(sub.slice) != 1 or not isinstance(sub.slice[0].slice, cst.Index):
            return False
        index = sub.slice[0].slice.value
        if not isinstance(index, cst.Name):
            return False
        for node in reversed(self.ctx.ancestors):
            if isinstance(node, (cst.FunctionDef, cst.Lambda)):
                return False
            if isinstance(node, cst.For) and index.value in _names_in(node.target):
                it = node.iter
                q = self.ctx.qualname(it.func) if isinstance(it, cst.Call) else None
                if q in ("builtins.range", "builtins.enumerate"):
                    return isinstance(node.target, cst.Tuple) and q == "builtins.enumerate" and (
                        _names_in(node.target.elements[-1].value) >= {index.value})
                return True
        return False

    # ------------------------------------------------------ NNX variable values
    def _variable_holds(self, expr: cst.BaseExpression | None) -> str | None:
        """What `expr` = `nnx.Param(value, ...)` (any NNX variable type) holds; None when
        `expr` is not such a call."""
        if not isinstance(expr, cst.Call) or self.ctx.names.qualname(expr.func) not in _NNX_VARIABLES:
            return None
        value = next((a.value for a in expr.args if a.keyword is None and not a.star), None)
        if is_jax_array(value, self.ctx.names) or _initializer_output(value, self.ctx.names):
            return ARRAY_VALUE
        if isinstance(value, cst.Call) and self.ctx.names.qualname(value.func) in _NUMPY_ARRAYS:
            return NUMPY_VALUE
        if value is None or is_not_jax_array(value, self.ctx.names):
            return NOT_ARRAY_VALUE
        return UNKNOWN_VALUE

    def _note_variable(self, node: cst.Assign) -> None:
        """Record `self.attr = nnx.Variable(...)` for `self.attr.value[i] = v` checks."""
        if len(node.targets) != 1:
            return
        target = node.targets[0].target
        if not (isinstance(target, cst.Attribute) and isinstance(target.value, cst.Name)
                and target.value.value == "self"):
            return
        holds = self._variable_holds(node.value)
        if holds is not None:
            cls = self.ctx.enclosing(cst.ClassDef)
            self._variables.setdefault((cls, target.attr.value), set()).add(holds)

    def _variable_value(self, stmt: cst.CSTNode, sub: cst.Subscript) -> str | None:
        """For `<var>.value[i] = v`: what `<var>` holds, when it is an NNX variable — a local
        bound to `nnx.Param(...)` (decided now), or "pending" for `<...>.attr.value` (decided
        at the end of the file, from the `self.attr = nnx.Param(...)` assignments)."""
        base = sub.value
        if not (isinstance(base, cst.Attribute) and base.attr.value in _VALUE_ATTRS):
            return None
        var = base.value
        if isinstance(var, cst.Name):
            binding = self.ctx.lookup(var.value, stmt)
            return self._variable_holds(binding.value) if binding is not None and binding.how == ASSIGN else None
        if isinstance(var, cst.Attribute):
            return "pending"
        return None

    def _holds_array(self, var: cst.Attribute, cls: cst.ClassDef | None, traced: bool) -> bool:
        """`self.attr` of class `cls` (or `obj.attr` of any NNX variable attribute of this
        file, when `var` is not on `self`) holds a JAX array: built from one, or a NumPy or
        unknown value inside a traced function (where every variable's value is a tracer)."""
        on_self = isinstance(var.value, cst.Name) and var.value.value == "self"
        found: set[str] = set()
        for (owner, attr), holds in self._variables.items():
            if attr == var.attr.value and (owner is cls or not on_self):
                found |= holds
        if not found or NOT_ARRAY_VALUE in found:
            return False
        return ARRAY_VALUE in found or traced

    def _annotation_says(self, param: cst.Param) -> bool | None:
        if param.annotation is None:
            return None
        ann = param.annotation.annotation
        if isinstance(ann, cst.Subscript):
            ann = ann.value
        q = self.ctx.names.qualname(ann)
        if q in ("jax.Array", "jax.numpy.ndarray", "jax.typing.ArrayLike") or (
            q is not None and q.startswith("jaxtyping.")
        ):
            return True
        last = ann.attr.value if isinstance(ann, cst.Attribute) else ann.value if isinstance(ann, cst.Name) else None
        if last in _CONTAINER_ANNOTATIONS:
            return False
        return None

    # ----------------------------------------------------------------- checks
    def visit_Assign(self, node: cst.Assign) -> None:
        self._note_variable(node)
        for target in node.targets:
            for sub in _subscripts(target.target):
                whole = len(node.targets) == 1 and target.target is sub
                if self._check(node, sub, "=", lambda: self._fix(node, sub, "set", node.value) if whole else None):
                    return

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        sub = node.target
        if not isinstance(sub, cst.Subscript):
            return
        method = _AT_METHODS.get(type(node.operator))
        self._check(node, sub, _AUG_SYMBOL.get(type(node.operator), "op="),
                    lambda: self._fix(node, sub, method, node.value) if method is not None else None)

    def _check(self, node, sub: cst.Subscript, op: str, fix) -> bool:
        # `fix` makes the fix (only for what is reported)
        """Report now, or defer an NNX variable's `.value[i] = v`; True when reported/deferred."""
        if self._is_array(node, sub):
            self._report(node, sub, op, fix(), where(self.ctx.traced_function()))
            return True
        holds = self._variable_value(node, sub)
        if holds == ARRAY_VALUE or (holds in (UNKNOWN_VALUE, NUMPY_VALUE) and self.ctx.traced_function() is not None):
            self._report(node, sub, op, fix(), where(self.ctx.traced_function()))
            return True
        if holds == "pending":
            info = self.ctx.traced_function()
            cls = self.ctx.enclosing(cst.ClassDef)
            # a transform traces the variable's value (a module method alone is not evidence
            # for a NumPy value: eager NNX code mutates it)
            transformed = info is not None and not info.via.startswith("the ")
            self._pending.append((node, sub, op, fix(), cls, transformed, where(info)))
            return True
        return False

    def leave_Module(self, node: cst.Module) -> None:
        for stmt, sub, op, fix, cls, traced, place in self._pending:
            if self._holds_array(sub.value.value, cls, traced):
                self._report(stmt, sub, op, fix, place)

    def _report(self, node, sub: cst.Subscript, op: str, fix, place: str) -> None:
        base = self.ctx.code(sub.value)
        self.report(
            node,
            f"`{self.ctx.code(sub)} {op} ...` updates JAX array `{base}` in place"
            f"{place}: JAX arrays are immutable, this raises `TypeError`",
            fix=fix,
        )

    def _fix(self, node, sub: cst.Subscript, method: str | None, value: cst.BaseExpression):
        if method is None or sub.lpar or not isinstance(sub.value, (cst.Name, cst.Attribute)):
            return None
        if isinstance(sub.value, cst.Name):
            # `x = x.at[...]` makes `x` local: only for a name already local here
            binding = self.ctx.lookup(sub.value.value, node)
            if binding is None or binding.scope is not self.ctx.scope():
                return None
        if isinstance(value, (cst.Yield, cst.Await)) and not value.lpar:
            return None
        if isinstance(value, cst.Tuple) and not value.lpar:
            value = value.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
        base = sub.value
        at = sub.with_changes(value=cst.Attribute(value=base, attr=cst.Name("at")))
        call = cst.Call(func=cst.Attribute(value=at, attr=cst.Name(method)), args=[cst.Arg(value=value)])
        new = cst.Assign(targets=[cst.AssignTarget(target=base)], value=call)
        return self.fix((node, new), title=f"Use `{self.ctx.code(base)} = {self.ctx.code(base)}.at[...].{method}(...)`")


#: constructors of values that are mutable by design: `x[i] = v` is their API
_MUTABLE = frozenset(
    {"jax.new_ref", "jax.array_ref", "jax.empty_ref", "jax.ref.new_ref", "jax.ref.empty_ref",
     "jax.experimental.mutable_array", "jax.experimental.pallas.empty_ref"}
)


def _initializer_output(value: cst.BaseExpression | None, names) -> bool:
    """`nnx.initializers.lecun_normal()(key, shape)`, `jax.nn.initializers.zeros(key, shape)`:
    an initializer's output is a JAX array."""
    if not isinstance(value, cst.Call):
        return False
    func = value.func.func if isinstance(value.func, cst.Call) else value.func
    q = names.qualname(func)
    return q is not None and (q.startswith("flax.nnx.initializers.") or q.startswith("jax.nn.initializers.")
                              or q.startswith("flax.linen.initializers."))


def _mutable_by_design(value: cst.BaseExpression | None, names) -> bool:
    """An NNX variable, a `jax.Ref` or another mutable array type."""
    if not isinstance(value, cst.Call):
        return False
    q = names.qualname(value.func)
    return q is not None and (q in _MUTABLE or q in _NNX_VARIABLES or (
        q.startswith("flax.nnx.") and q.rsplit(".", 1)[1] in ("Variable", "Param", "BatchStat", "Cache",
                                                            "Intermediate", "VariableState")))


def _names_in(target: cst.BaseExpression) -> set[str]:
    names: list[cst.Name] = []
    target_names(target, names)
    return {n.value for n in names}


def _subscripts(target: cst.BaseExpression) -> list[cst.Subscript]:
    if isinstance(target, cst.Subscript):
        return [target]
    if isinstance(target, (cst.Tuple, cst.List)):
        out = []
        for el in target.elements:
            out.extend(_subscripts(el.value))
        return out
    if isinstance(target, cst.StarredElement):
        return _subscripts(target.value)
    return []
