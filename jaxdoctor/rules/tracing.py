"""Rules about Python reading the value of a tracer: control flow and concretization."""

from __future__ import annotations

import libcst as cst

from jaxdoctor.findings import Severity
from jaxdoctor.static.index import FunctionInfo
from jaxdoctor.static.rule import LintRule
from jaxdoctor.static.values import ARRAY, TRACED


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

    def _check(self, test: cst.BaseExpression, keyword: str) -> None:
        info = self.ctx.traced_function()
        if info is None or not info.staged:
            return  # under `grad` alone the primal values are concrete: Python can branch on them
        if self.ctx.semantic.value(test) == ARRAY or any(
                self.ctx.semantic.value(part) == ARRAY for part in _operands(test)):
            self.report(
                test,
                f"Python `{keyword}` on traced value `{self.ctx.code(test)}`"
                f"{where(self.ctx.function())}: raises `TracerBoolConversionError`",
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
        if isinstance(func, cst.Attribute) and func.attr.value in _METHODS and not node.args:
            if semantic.value(func.value) >= TRACED and self.ctx.qualname(func) is None:
                self._report(node, f"`.{func.attr.value}()`", func.value)
            return
        q = self.ctx.qualname(func)
        if q is None:
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
