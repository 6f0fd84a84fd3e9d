"""Traced values where JAX needs concrete shapes and sizes (failure family 1 of issue 9).

Inside `jit`, `vmap`, `scan` and the other staging transforms, every array has a shape known
while tracing. A size computed from traced values (`n = jnp.sum(mask)`, a jitted function's
argument) has no value yet, so any operation whose *output shape* depends on it cannot be
traced: `jnp.arange(n)`, `jnp.zeros((n, 3))`, `x.reshape(n, -1)`, `x[:n]`, `x[x > 0]`,
`jnp.nonzero(x)` without `size=`, `jax.ops.segment_sum` without `num_segments=`.
"""

from __future__ import annotations

import libcst as cst

from jaxdoctor.findings import Severity
from jaxdoctor.rules.tracing import where
from jaxdoctor.rules.vmap import _NON_ARRAY_ANNOTATIONS, _SHAPE_NAME, non_array
from jaxdoctor.static.resolve import bind_args
from jaxdoctor.static.syntax import annotation_names
from jaxdoctor.static.rule import LintRule
from jaxdoctor.static.values import ARRAY, CONTAINER, TRACED

#: function → the arguments that must be concrete: (position, keyword, "shape" | "size")
_STATIC_ARGS: dict[str, tuple[tuple[int | None, str | None, str], ...]] = {
    "jax.numpy.arange": ((0, "start", "size"), (1, "stop", "size"), (2, "step", "size")),
    "jax.numpy.zeros": ((0, "shape", "shape"),),
    "jax.numpy.ones": ((0, "shape", "shape"),),
    "jax.numpy.empty": ((0, "shape", "shape"),),
    "jax.numpy.full": ((0, "shape", "shape"),),
    "jax.numpy.eye": ((0, "N", "size"), (1, "M", "size")),
    "jax.numpy.tri": ((0, "N", "size"), (1, "M", "size")),
    "jax.numpy.identity": ((0, "n", "size"),),
    "jax.numpy.linspace": ((2, "num", "size"),),
    "jax.numpy.logspace": ((2, "num", "size"),),
    "jax.numpy.geomspace": ((2, "num", "size"),),
    "jax.numpy.reshape": ((1, "shape", "shape"), (None, "newshape", "shape")),
    "jax.numpy.broadcast_to": ((1, "shape", "shape"),),
    "jax.numpy.resize": ((1, "new_shape", "shape"),),
    "jax.numpy.tile": ((1, "reps", "shape"),),
    "jax.numpy.pad": ((1, "pad_width", "shape"),),
    "jax.numpy.split": ((1, "indices_or_sections", "shape"),),
    "jax.numpy.array_split": ((1, "indices_or_sections", "shape"),),
    "jax.numpy.hsplit": ((1, "indices_or_sections", "shape"),),
    "jax.numpy.vsplit": ((1, "indices_or_sections", "shape"),),
    "jax.numpy.dsplit": ((1, "indices_or_sections", "shape"),),
    "jax.nn.one_hot": ((1, "num_classes", "size"),),
    "jax.lax.dynamic_slice": ((2, "slice_sizes", "shape"),),
    "jax.lax.dynamic_slice_in_dim": ((2, "slice_size", "size"),),
    "jax.lax.top_k": ((1, "k", "size"),),
    "jax.lax.iota": ((1, "size", "size"),),
    "jax.lax.broadcast": ((1, "sizes", "shape"),),
    "jax.lax.reshape": ((1, "new_sizes", "shape"),),
    "jax.lax.full": ((0, "shape", "shape"),),
    "jax.lax.slice": ((1, "start_indices", "shape"), (2, "limit_indices", "shape")),
    "jax.random.split": ((1, "num", "shape"),),
    "jax.random.orthogonal": ((1, "n", "size"), (2, "shape", "shape")),
}
#: `jax.random` samplers: the position of `shape` (also accepted as a keyword)
_RANDOM_SHAPE = {
    "normal": 1, "uniform": 1, "randint": 1, "bits": 1, "gumbel": 1, "exponential": 1,
    "laplace": 1, "logistic": 1, "cauchy": 1, "rademacher": 1, "maxwell": 1,
    "bernoulli": 2, "gamma": 2, "loggamma": 2, "poisson": 2, "dirichlet": 2, "t": 2,
    "chisquare": 2, "pareto": 2, "geometric": 2, "rayleigh": 2, "wald": 2, "lognormal": 2,
    "generalized_normal": 2, "choice": 2, "categorical": 3, "truncated_normal": 3, "beta": 3,
    "multivariate_normal": 3, "binomial": 3, "f": 3, "weibull_min": 3, "double_sided_maxwell": 3,
    "triangular": 4,
}
for _name, _pos in _RANDOM_SHAPE.items():
    _STATIC_ARGS[f"jax.random.{_name}"] = ((_pos, "shape", "shape"),)

#: functions whose output size depends on the values of their input: (data positions, the
#: keyword that fixes the size)
_DATA_DEPENDENT: dict[str, tuple[tuple[int, ...], str]] = {
    "jax.numpy.nonzero": ((0,), "size"),
    "jax.numpy.argwhere": ((0,), "size"),
    "jax.numpy.flatnonzero": ((0,), "size"),
    "jax.numpy.unique": ((0,), "size"),
    "jax.numpy.unique_values": ((0,), "size"),
    "jax.numpy.unique_counts": ((0,), "size"),
    "jax.numpy.unique_inverse": ((0,), "size"),
    "jax.numpy.unique_all": ((0,), "size"),
    "jax.numpy.setdiff1d": ((0, 1), "size"),
    "jax.numpy.union1d": ((0, 1), "size"),
    "jax.numpy.intersect1d": ((0, 1), "size"),
    "jax.numpy.setxor1d": ((0, 1), "size"),
    "jax.numpy.compress": ((0,), "size"),
    "jax.numpy.extract": ((0,), "size"),
    "jax.numpy.bincount": ((0,), "length"),
    "jax.numpy.repeat": ((1,), "total_repeat_length"),
    "jax.ops.segment_sum": ((1,), "num_segments"),
    "jax.ops.segment_max": ((1,), "num_segments"),
    "jax.ops.segment_min": ((1,), "num_segments"),
    "jax.ops.segment_prod": ((1,), "num_segments"),
}
_DATA_KEYWORDS = {"jax.numpy.repeat": ("repeats",), "jax.ops.segment_sum": ("segment_ids",),
                  "jax.ops.segment_max": ("segment_ids",), "jax.ops.segment_min": ("segment_ids",),
                  "jax.ops.segment_prod": ("segment_ids",), "jax.numpy.bincount": ("x",)}
_JITS = frozenset({"jax.jit", "flax.nnx.jit", "jax.pjit", "jax.experimental.pjit.pjit", "flax.linen.jit"})
#: `jnp` functions that make boolean arrays: an index built from them is a mask
_BOOLEAN_FUNCS = frozenset(
    {"isnan", "isinf", "isfinite", "isneginf", "isposinf", "logical_and", "logical_or",
     "logical_not", "logical_xor", "less", "less_equal", "greater", "greater_equal", "equal",
     "not_equal", "isclose", "isin", "signbit", "iscomplex", "isreal"}
)


def _short(q: str) -> str:
    for long, short in (("jax.numpy.", "jnp."), ("jax.random.", "jax.random."), ("jax.lax.", "lax."),
                        ("jax.nn.", "jax.nn."), ("jax.ops.", "jax.ops.")):
        if q.startswith(long):
            return short + q[len(long):]
    return q


class TracedShape(LintRule):
    code = "JD109"
    name = "traced-shape"
    severity = Severity.ERROR
    summary = (
        "A traced value where JAX needs a concrete shape or size: `jnp.arange(n)`, `jnp.zeros((n, 3))`, "
        "`x.reshape(n, -1)`, `x[:n]`, `x[x > 0]`, `jnp.nonzero(x)` without `size=`"
    )
    fix_title = (
        "Make the size static (`static_argnames=`, or compute it from `x.shape`), or keep the "
        "shape fixed and mask: `size=`/`fill_value=`, `jnp.where(mask, x, 0)`, `lax.dynamic_slice`"
    )
    trace_fix_title = "Give the operation a static size (`static_argnames`, `size=`) or mask with `jnp.where`"

    # ------------------------------------------------------------------ helpers
    def _staged(self) -> bool:
        info = self.ctx.traced_function()
        return info is not None and info.staged

    def _value(self, e: cst.BaseExpression) -> int:
        return self.ctx.semantic.value(e)

    def _culprit(self, e: cst.BaseExpression, kind: str) -> cst.BaseExpression | None:
        """The part of `e` that holds tracers where a concrete shape (a tuple of sizes) or
        size is needed."""
        if isinstance(e, (cst.Tuple, cst.List)):
            for el in e.elements:
                if isinstance(el, cst.StarredElement):
                    continue
                found = self._culprit(el.value, "size")
                if found is not None:
                    return found
            return None
        v = self._value(e)
        if v >= TRACED or (kind == "shape" and v == CONTAINER):
            return e
        return None

    def _advice(self, culprit: cst.BaseExpression) -> str:
        """How to make the culprit concrete: a jitted function's own argument can be made
        static; anything else must come from shapes, or the code must keep a fixed shape."""
        info = self.ctx.traced_function()
        if info is None or not isinstance(culprit, cst.Name) or culprit.value not in info.params:
            return ""
        b = self.ctx.lookup(culprit.value)
        transform = getattr(info.transform, "qualname", None)
        if b is not None and b.scope is info.node and b.how == "param" and transform in _JITS:
            return (f"; `{culprit.value}` is an argument of `{info.name}`: list it in "
                    "`static_argnames` (or derive it from a shape)")
        return ""

    def _mapped_non_array(self, culprit: cst.BaseExpression) -> bool:
        """`culprit` is a parameter that `vmap` maps although it is a shape, a number or a
        string (`jax.vmap(lambda x, s: x.reshape(s))(xs, (2, 2))`): the failure is at the vmap
        call, which JD108 reports."""
        info = self.ctx.function()
        while isinstance(culprit, cst.Subscript):
            culprit = culprit.value  # `shape[0]`
        if info is None or not info.batched or not isinstance(culprit, cst.Name):
            return False
        b = self.ctx.lookup(culprit.value)
        if b is None or b.scope is not info.node or b.how != "param":
            return False
        param = b.node
        if _SHAPE_NAME.search(culprit.value) or (
                isinstance(param, cst.Param) and annotation_names(param) & _NON_ARRAY_ANNOTATIONS):
            return True
        for call, _scope, _order, callee in self.ctx.semantic.sites.get(info, ()):
            bound = bind_args(call, info.positional, callee).get(culprit.value)
            if bound is not None and non_array(self.ctx.names, bound) is not None:
                return True
        return False

    def _passed_traced(self, culprit: cst.BaseExpression) -> bool:
        """For a parameter of a function traced because traced code calls it: some call site
        passes it, by position or name, a value that holds tracers. A parameter filled from
        `*args` (`ops[name](*args)` over a mix of traced inputs and constant tables) has no
        such evidence."""
        info = self.ctx.function()
        if info is None or info.transform is not None or not isinstance(culprit, cst.Name):
            return True
        b = self.ctx.lookup(culprit.value)
        if b is None or b.scope is not info.node or b.how != "param":
            return True
        sites = self.ctx.semantic.sites.get(info, ())
        if not sites:
            return True
        semantic = self.ctx.semantic
        for call, _scope, _order, callee in sites:
            bound = bind_args(call, info.positional, callee).get(culprit.value)
            if bound is not None and semantic.value(bound) >= TRACED:
                return True
        return False

    def _report_size(self, node: cst.CSTNode, culprit: cst.BaseExpression, kind: str = "size") -> None:
        if self._mapped_non_array(culprit) or not self._passed_traced(culprit):
            return
        self.report(
            node,
            f"`{self.ctx.code(node)}` needs a concrete {kind}, but `{self.ctx.code(culprit)}` is "
            f"traced{where(self.ctx.function())}: shapes must be known while tracing "
            f"(`TypeError`/`ConcretizationTypeError`){self._advice(culprit)}",
        )

    # ------------------------------------------------------------------ calls
    def visit_Call(self, node: cst.Call) -> None:
        if not self._staged():
            return
        q = self.ctx.qualname(node.func)
        if q is None:
            self._method(node)
            return
        spec = _STATIC_ARGS.get(q)
        if spec is not None:
            self._static_args(node, q, spec)
            return
        dep = _DATA_DEPENDENT.get(q)
        if dep is not None:
            self._data_dependent(node, q, dep)
            return
        if q == "jax.numpy.where":
            positional = [a for a in node.args if a.keyword is None and not a.star]
            keywords = {a.keyword.value for a in node.args if a.keyword is not None}
            if len(positional) == 1 and not keywords & {"x", "y", "size"} \
                    and self._value(positional[0].value) >= TRACED:
                self.report(
                    node,
                    f"`jnp.where({self.ctx.code(positional[0].value)})` with one argument returns the "
                    f"indices where it is true, a data-dependent size{where(self.ctx.function())}: "
                    "raises `ConcretizationTypeError` while tracing",
                    fix_title=("Use the three-argument form `jnp.where(cond, x, y)`, or pass "
                               "`size=` (and `fill_value=`) for a fixed number of indices"),
                )

    def _static_args(self, node: cst.Call, q: str, spec) -> None:
        positional = [a for a in node.args if a.keyword is None]
        if any(a.star for a in positional):
            return
        keywords = {a.keyword.value: a for a in node.args if a.keyword is not None}
        for pos, kw, kind in spec:
            arg = None
            if pos is not None and pos < len(positional):
                arg = positional[pos]
            elif kw is not None and kw in keywords:
                arg = keywords[kw]
            if arg is None:
                continue
            culprit = self._culprit(arg.value, kind)
            if culprit is not None:
                self._report_size(node, culprit, "shape" if kind == "shape" else "size")
                return

    def _data_dependent(self, node: cst.Call, q: str, dep) -> None:
        positions, size_kw = dep
        keywords = {a.keyword.value: a for a in node.args if a.keyword is not None}
        positional = [a for a in node.args if a.keyword is None]
        if any(a.star for a in positional) or any(a.star for a in node.args):
            return
        fixed = keywords.get(size_kw)
        if fixed is None and q == "jax.ops.segment_sum" and len(positional) > 2:
            fixed = positional[2]
        if fixed is not None:
            culprit = self._culprit(fixed.value, "size")
            if culprit is not None:
                self._report_size(node, culprit)
            return
        if q.startswith("jax.ops.segment_") and len(positional) > 2:
            culprit = self._culprit(positional[2].value, "size")
            if culprit is not None:
                self._report_size(node, culprit)
            return
        data = [positional[i].value for i in positions if i < len(positional)]
        data += [keywords[k].value for k in _DATA_KEYWORDS.get(q, ("a", "ar", "x", "condition"))
                 if k in keywords]
        traced = next((d for d in data if self._value(d) >= TRACED), None)
        if traced is None:
            return
        if q == "jax.numpy.repeat" and self._scalar_literal(traced):
            return
        self.report(
            node,
            f"`{_short(q)}` without `{size_kw}=` has an output size that depends on the values of "
            f"`{self.ctx.code(traced)}`, which is traced{where(self.ctx.function())}: raises "
            "`ConcretizationTypeError` while tracing",
            fix_title=f"Pass `{size_kw}=` (a static upper bound, with `fill_value=` for the padding) "
                      "or compute the result with a fixed shape and a mask",
        )

    @staticmethod
    def _scalar_literal(e: cst.BaseExpression) -> bool:
        return isinstance(e, cst.Integer)

    def _method(self, node: cst.Call) -> None:
        func = node.func
        if not isinstance(func, cst.Attribute) or self._value(func.value) != ARRAY:
            return
        method = func.attr.value
        if method == "reshape":
            for a in node.args:
                if a.keyword is not None or a.star:
                    continue
                culprit = self._culprit(a.value, "shape")
                if culprit is not None:
                    self._report_size(node, culprit, "shape")
                    return
        elif method == "nonzero" and not any(a.keyword is not None and a.keyword.value == "size"
                                             for a in node.args):
            self.report(
                node,
                f"`{self.ctx.code(func.value)}.nonzero()` without `size=` has a data-dependent size"
                f"{where(self.ctx.function())}: raises `ConcretizationTypeError` while tracing",
                fix_title="Use `jnp.nonzero(x, size=..., fill_value=...)` with a static upper bound",
            )

    # ------------------------------------------------------------------ indexing
    def visit_Subscript(self, node: cst.Subscript) -> None:
        if not self._staged():
            return
        parent = self.ctx.parent
        if isinstance(parent, (cst.AssignTarget, cst.AugAssign)) and getattr(parent, "target", None) is node:
            return  # `x[mask] = v` is an in-place update: JD104's business
        if isinstance(parent, cst.Del):
            return
        for el in node.slice:
            s = el.slice
            if isinstance(s, cst.Slice):
                for part in (s.lower, s.upper, s.step):
                    if part is not None and self._value(part) >= TRACED:
                        self.report(
                            node,
                            f"slice `{self.ctx.code(node)}` has a traced bound `{self.ctx.code(part)}`"
                            f"{where(self.ctx.function())}: slice sizes must be static "
                            "(`IndexError: Array slice indices must have static start/stop/step`)",
                            fix_title=("Use `jax.lax.dynamic_slice(x, (start,), (size,))` with a static "
                                       "size (traced starts are fine there), or mask with `jnp.where`"),
                        )
                        return
            elif isinstance(s, cst.Index) and self._is_mask(s.value):
                self.report(
                    node,
                    f"boolean mask index `{self.ctx.code(node)}`{where(self.ctx.function())}: the "
                    "result's size is the number of true entries, unknown while tracing "
                    "(`NonConcreteBooleanIndexError`)",
                    fix_title=("Keep the shape and mask instead: `jnp.where(mask, x, 0)`, "
                               "`jnp.sum(x, where=mask)`, or `jnp.nonzero(mask, size=...)`"),
                )
                return

    def _is_mask(self, e: cst.BaseExpression, depth: int = 0) -> bool:
        """`e` is certainly a traced boolean array: a comparison of traced values, a `jnp`
        predicate, `~`/`&`/`|` of masks, or a name bound once in this function to one."""
        if depth > 3 or self._value(e) < TRACED:
            return False
        if isinstance(e, cst.Comparison):
            return self._value(e) == ARRAY and not any(
                isinstance(c.operator, (cst.Is, cst.IsNot, cst.In, cst.NotIn)) for c in e.comparisons)
        if isinstance(e, cst.UnaryOperation) and isinstance(e.operator, cst.BitInvert):
            return self._is_mask(e.expression, depth + 1)
        if isinstance(e, cst.BinaryOperation) and isinstance(e.operator, (cst.BitAnd, cst.BitOr, cst.BitXor)):
            return self._is_mask(e.left, depth + 1) or self._is_mask(e.right, depth + 1)
        if isinstance(e, cst.Call):
            q = self.ctx.qualname(e.func)
            if q is not None and q.startswith("jax.numpy.") and q[10:] in _BOOLEAN_FUNCS:
                return True
            func = e.func
            if isinstance(func, cst.Attribute) and func.attr.value == "astype" and e.args \
                    and self.ctx.qualname(e.args[0].value) in ("builtins.bool", "jax.numpy.bool_", "jax.numpy.bool"):
                return True
            return False
        if isinstance(e, cst.Name):
            b = self.ctx.lookup(e.value)
            fn = self.ctx.enclosing(cst.FunctionDef, cst.Lambda)
            if b is None or fn is None or b.scope is not fn or b.how != "assign" or b.path is not None \
                    or b.value is None:
                return False
            if len(self.ctx.index.bindings(fn, e.value)) != 1:
                return False
            return self._is_mask(b.value, depth + 1)
        return False
