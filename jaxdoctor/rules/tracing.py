"""Rules about Python reading the value of a tracer: control flow and concretization."""

from __future__ import annotations

import libcst as cst

from jaxdoctor.findings import Severity
from jaxdoctor.static.index import FunctionInfo
from jaxdoctor.static.rule import LintRule
from jaxdoctor.static.values import ARRAY, STATIC, TRACED


def where(info: FunctionInfo | None) -> str:
    """`in `step`, which `jax.jit` traces` — the context part of a message."""
    if info is None:
        return ""
    name = "a lambda" if info.name == "<lambda>" else f"`{info.name}`"
    via = info.via
    if via.startswith("called") or via.startswith("the "):
        return f" in {name} ({via})"
    return f" in {name}, which {via} traces"


def _operands(test: cst.BaseExpression) -> list[cst.BaseExpression]:
    """The operands of an `and`/`or` chain: Python tests each for truth as it gets to it."""
    if isinstance(test, cst.BooleanOperation):
        return _operands(test.left) + _operands(test.right)
    return [test]


#: Python builtins that call `bool()` on (comparisons of) their arguments' elements
_PYTHON_COMPARERS = frozenset({"builtins.any", "builtins.all", "builtins.max", "builtins.min",
                               "builtins.sorted"})


def _array_links(semantic, e: cst.BaseExpression) -> bool:
    """`e` is a chained comparison (`0 < x < 1`) whose links before the last are traced
    arrays: Python tests each of those for truth."""
    if not isinstance(e, cst.Comparison) or len(e.comparisons) < 2:
        return False
    operands = [e.left] + [c.comparator for c in e.comparisons]
    values = [semantic.value(x) for x in operands]
    for i, c in enumerate(e.comparisons[:-1]):
        if isinstance(c.operator, (cst.Is, cst.IsNot, cst.In, cst.NotIn)):
            continue
        if _array_pair((operands[i], operands[i + 1]), (values[i], values[i + 1])):
            return True
    return False


def _array_pair(operands, values) -> bool:
    """Comparing these operands gives a traced array (as the value model's comparisons do):
    one is a traced array, or one holds tracers and the other is a number or holds tracers
    too (a pytree compared with a pytree compares its array leaves). Strings and Python
    objects (`spec == P("data")`) are metadata comparisons."""
    if any(isinstance(x, (cst.SimpleString, cst.ConcatenatedString, cst.FormattedString, cst.Tuple, cst.List))
           for x in operands):
        return False
    if ARRAY in values:
        return True
    return TRACED in values and all(v in (STATIC, TRACED) for v in values)


def _elements_are_arrays(semantic, e: cst.BaseExpression) -> bool:
    """A display or comprehension whose elements are traced arrays: `[a > 0, b > 0]`,
    `(jnp.isnan(v) for v in leaves)`."""
    if isinstance(e, (cst.List, cst.Tuple, cst.Set)):
        return any(not isinstance(el, cst.StarredElement) and semantic.value(el.value) == ARRAY
                   for el in e.elements)
    if isinstance(e, (cst.GeneratorExp, cst.ListComp, cst.SetComp)):
        return semantic.value(e.elt) == ARRAY
    return False


class PythonControlFlowOnTracer(LintRule):
    code = "JD101"
    name = "python-control-flow-on-tracer"
    severity = Severity.ERROR
    summary = "Python `if`/`while`/`assert`/ternary/`and`/`or`/`not` on a traced value"
    fix_title = (
        "Use `jax.lax.cond`/`jax.lax.switch` or `jnp.where` for value-dependent choices, "
        "`jax.lax.while_loop` for value-dependent loops, or make the argument static"
    )
    trace_fix_title = "Branch with `jax.lax.cond`/`jnp.where`, or mark the argument static (`static_argnums`)"

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        #: comparisons already reported as (part of) a test
        self._covered: set[cst.CSTNode] = set()

    def _staged(self) -> bool:
        info = self.ctx.traced_function()
        # under `grad` alone the primal values are concrete: Python can branch on them
        return info is not None and info.staged

    def _check(self, test: cst.BaseExpression, keyword: str) -> None:
        if not self._staged():
            return
        parts = _operands(test)
        if self.ctx.semantic.value(test) == ARRAY or any(
                self.ctx.semantic.value(part) == ARRAY for part in parts):
            self._covered.update(parts)
            chained = next((p for p in parts if _array_links(self.ctx.semantic, p)), None)
            note = ""
            if chained is not None:
                note = (f" (the chained comparison `{self.ctx.code(chained)}` is an `and` of its "
                        "links: write `(a < x) & (x < b)`)")
            self.report(
                test,
                f"Python `{keyword}` on traced value `{self.ctx.code(test)}`"
                f"{where(self.ctx.function())}: raises `TracerBoolConversionError` (`ValueError` "
                f"for an array of more than one element){note}",
            )

    def visit_Comparison(self, node: cst.Comparison) -> None:
        if node in self._covered or not self._staged():
            return
        semantic = self.ctx.semantic
        ops = [c.operator for c in node.comparisons]
        if isinstance(ops[-1], (cst.In, cst.NotIn)) and semantic.value(node.comparisons[-1].comparator) == ARRAY:
            self.report(
                node,
                f"`{self.ctx.code(node)}` tests membership in a traced array"
                f"{where(self.ctx.function())}: `in` calls `bool()` on `(array == value).any()`, "
                "which raises `TracerBoolConversionError`",
                fix_title="Use `jnp.any(array == value)` (or `jnp.isin`) and keep the result an array",
            )
            return
        if _array_links(semantic, node):
            self.report(
                node,
                f"chained comparison `{self.ctx.code(node)}`{where(self.ctx.function())} is an `and` "
                "of its links: Python calls `bool()` on the traced first link, which raises "
                "`TracerBoolConversionError`",
                fix_title="Compare link by link and combine the arrays: `(a < x) & (x < b)`",
            )

    def visit_Call(self, node: cst.Call) -> None:
        q = self.ctx.qualname(node.func)
        if q not in _PYTHON_COMPARERS or not self._staged():
            return
        positional = [a for a in node.args if a.keyword is None]
        if any(a.star for a in node.args) or not positional:
            return
        if q in ("builtins.max", "builtins.min") and any(a.keyword is not None and a.keyword.value == "key"
                                                          for a in node.args):
            return
        semantic = self.ctx.semantic
        name = q.split(".")[1]
        if len(positional) > 1:
            exprs = [a.value for a in positional]
            if q in ("builtins.max", "builtins.min") and _array_pair(exprs, [semantic.value(e) for e in exprs]):
                self._report_builtin(node, name, "compares its arguments with `<`/`>`")
            return
        arg = positional[0].value
        if semantic.value(arg) == ARRAY or _elements_are_arrays(semantic, arg):
            what = ("tests each element for truth" if name in ("any", "all")
                    else "compares the elements with `<`/`>`")
            self._report_builtin(node, name, what)

    def _report_builtin(self, node: cst.Call, name: str, what: str) -> None:
        replacement = {"any": "jnp.any", "all": "jnp.all", "max": "jnp.maximum / jnp.max",
                       "min": "jnp.minimum / jnp.min", "sorted": "jnp.sort"}[name]
        self.report(
            node,
            f"Python's `{name}()` on traced values `{self.ctx.code(node)}`"
            f"{where(self.ctx.function())}: it {what} in Python, which raises "
            "`TracerBoolConversionError`",
            fix_title=f"Use `{replacement}` so the result stays an array",
        )

    def visit_If(self, node: cst.If) -> None:
        self._check(node.test, "if")

    def visit_While(self, node: cst.While) -> None:
        self._check(node.test, "while")

    def visit_IfExp(self, node: cst.IfExp) -> None:
        self._check(node.test, "... if ... else ...")

    def visit_Assert(self, node: cst.Assert) -> None:
        self._check(node.test, "assert")

    def visit_CompIf(self, node: cst.CompIf) -> None:
        self._check(node.test, "if")

    def visit_UnaryOperation(self, node: cst.UnaryOperation) -> None:
        if isinstance(node.operator, cst.Not):
            self._check(node.expression, "not")

    def visit_BooleanOperation(self, node: cst.BooleanOperation) -> None:
        parent = self.ctx.parent
        # inside a test that is reported as a whole: don't report its parts again
        if isinstance(parent, (cst.If, cst.While, cst.IfExp, cst.Assert, cst.CompIf, cst.BooleanOperation)):
            return
        keyword = "and" if isinstance(node.operator, cst.And) else "or"
        self._check(node.left, keyword)


_CONVERSIONS = {
    "builtins.float": TRACED,
    "builtins.int": TRACED,
    "builtins.complex": TRACED,
    "builtins.bool": ARRAY,
    "builtins.range": TRACED,
    "numpy.asarray": TRACED,
    "numpy.array": TRACED,
    "numpy.asanyarray": TRACED,
    "numpy.ascontiguousarray": TRACED,
    "jax.device_get": TRACED,
    "operator.index": TRACED,
}
_METHODS = {"item", "tolist", "__float__", "__int__", "__index__", "__bool__"}
#: conversions that work on a `grad` tracer (it carries its concrete primal value); `float()`,
#: `.tolist()`, NumPy and `math` still fail there (checked on jax 0.10.2)
_CONCRETE_UNDER_GRAD = frozenset({"builtins.int", "builtins.bool", "builtins.range", "jax.device_get",
                                  "operator.index", "item", "__int__", "__index__", "__bool__"})


class TracerConcretization(LintRule):
    code = "JD102"
    name = "tracer-concretization"
    severity = Severity.ERROR
    summary = "`float()`/`int()`/`bool()`/`.item()`/`.tolist()`/`range()`/`np.asarray()` on a traced value"
    fix_title = (
        "Keep the value as a JAX array (`jnp` ops, `jax.lax.fori_loop` for traced bounds), "
        "mark the argument static, or print it with `jax.debug.print`"
    )
    trace_fix_title = "Keep the value a traced array (use `jnp` operations), or mark the argument static"

    def visit_Call(self, node: cst.Call) -> None:
        semantic = self.ctx.semantic
        func = node.func
        info = self.ctx.traced_function()
        staged = info is not None and info.staged
        if isinstance(func, cst.Attribute) and func.attr.value in _METHODS and not node.args:
            if semantic.value(func.value) >= TRACED and self.ctx.qualname(func) is None \
                    and (staged or func.attr.value not in _CONCRETE_UNDER_GRAD):
                self._report(node, f"`.{func.attr.value}()`", func.value)
            return
        q = self.ctx.qualname(func)
        if q is None or (not staged and q in _CONCRETE_UNDER_GRAD):
            return
        need = _CONVERSIONS.get(q)
        if need is None and q.startswith("math."):
            need = TRACED
        if need is None:
            return
        for arg in node.args:
            if arg.keyword is None and semantic.value(arg.value) >= need:
                self._report(node, f"`{q.split('.')[-1] if q.startswith('builtins.') else q}()`", arg.value)
                return

    def _report(self, node: cst.Call, what: str, value: cst.BaseExpression) -> None:
        self.report(
            node,
            f"{what} needs a concrete value, but `{self.ctx.code(value)}` is traced"
            f"{where(self.ctx.function())}: raises `ConcretizationTypeError`",
        )
