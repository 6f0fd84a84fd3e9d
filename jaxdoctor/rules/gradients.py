"""JD124: `jnp.where(c, f(x), y)` with an `f` that is NaN/inf where `c` is false, under `grad`."""

from __future__ import annotations

import libcst as cst

from jaxdoctor.findings import Severity
from jaxdoctor.static.values import UNKNOWN
from jaxdoctor.static.rule import LintRule
from jaxdoctor.static.index import ASSIGN
from jaxdoctor.static.index import FunctionInfo
from jaxdoctor.static.walker import iter_tree

#: reverse-mode transforms: a NaN cotangent of the unselected branch poisons the gradient
GRADS = frozenset(
    {"jax.grad", "jax.value_and_grad", "jax.jacrev", "jax.hessian", "jax.vjp",
     "flax.nnx.grad", "flax.nnx.value_and_grad", "flax.linen.grad", "flax.linen.value_and_grad",
     "equinox.filter_grad", "equinox.filter_value_and_grad", "equinox.filter_vjp"}
)
#: functions with an infinite or NaN derivative (or value) somewhere on the real line
_SINGULAR = frozenset(
    {"jax.numpy.log", "jax.numpy.log2", "jax.numpy.log10", "jax.numpy.sqrt", "jax.numpy.arccos",
     "jax.numpy.arcsin", "jax.numpy.arccosh", "jax.numpy.arctanh", "jax.numpy.reciprocal",
     "jax.numpy.divide", "jax.numpy.true_divide", "jax.numpy.power", "jax.numpy.float_power",
     "jax.numpy.cbrt", "jax.lax.log", "jax.lax.sqrt", "jax.lax.rsqrt", "jax.lax.div",
     "jax.lax.acos", "jax.lax.asin", "jax.lax.atanh", "jax.lax.pow", "jax.lax.cbrt",
     "jax.numpy.arccos", "jax.scipy.special.xlogy", "jax.scipy.special.gammaln",
     "jax.nn.log_sigmoid"}
)
#: wrapping the operand in one of these guards it
_GUARDS = frozenset(
    {"jax.numpy.where", "jax.numpy.maximum", "jax.numpy.minimum", "jax.numpy.clip",
     "jax.lax.stop_gradient", "jax.numpy.abs", "jax.numpy.exp", "jax.numpy.square",
     "jax.lax.max", "jax.lax.min", "jax.lax.clamp", "jax.nn.softplus", "jax.nn.relu"}
)


class WhereNanGradient(LintRule):
    code = "JD124"
    name = "where-nan-gradient"
    severity = Severity.WARNING
    summary = "`jnp.where(c, f(x), y)` under `grad` where `f` is NaN/inf outside `c` (log, sqrt, 1/x)"
    fix_title = (
        "Guard the input too (the double-where trick): "
        "`jnp.where(c, jnp.log(jnp.where(c, x, 1.0)), y)`"
    )

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        self._differentiated: set[cst.CSTNode] | None = None
        self._at: cst.Call | None = None  # the `jnp.where` being checked

    # ------------------------------------------------ which functions are differentiated
    def _grad_roots(self) -> set[cst.CSTNode]:
        semantic = self.ctx.semantic
        names = self.ctx.names
        roots: set[cst.CSTNode] = set()
        for call, scope, _order in semantic.calls:
            if names.qualname(call.func) in GRADS:
                fns = [a.value for a in call.args[:1] if a.keyword is None]
                fns += [a.value for a in call.args if a.keyword is not None and a.keyword.value in ("fun", "f")]
                for expr in fns:
                    if isinstance(expr, cst.Call):  # grad(jit(f)), grad(partial(f, ...))
                        inner = semantic.transform_of(expr)
                        if inner is not None and expr.args:
                            expr = expr.args[0].value
                    roots.update(i.node for i in semantic.resolve_functions(expr, scope, call))
        for info in semantic.functions.values():
            if not isinstance(info.node, cst.FunctionDef):
                continue
            for dec in info.node.decorators:
                d = dec.decorator
                q = names.qualname(d.func if isinstance(d, cst.Call) else d)
                if q in GRADS or (isinstance(d, cst.Call) and q == "functools.partial" and d.args
                                  and names.qualname(d.args[0].value) in GRADS):
                    roots.add(info.node)
        return roots

    def differentiated(self) -> set[cst.CSTNode]:
        """Functions run under reverse-mode AD: grad roots, what they call, what they define."""
        if self._differentiated is not None:
            return self._differentiated
        semantic = self.ctx.semantic
        done: set[cst.CSTNode] = set()
        todo = list(self._grad_roots())
        by_scope: dict[cst.CSTNode, list] = {}
        for call, scope, _order in semantic.calls:
            by_scope.setdefault(scope, []).append(call)
        children: dict[cst.CSTNode, list] = {}
        for fn, info in semantic.functions.items():
            children.setdefault(info.scope, []).append(fn)
        while todo:
            fn = todo.pop()
            if fn in done:
                continue
            done.add(fn)
            todo.extend(children.get(fn, []))
            for call in by_scope.get(fn, []):
                todo.extend(i.node for i in semantic.resolve_functions(call.func, fn, call))
        self._differentiated = done
        return done

    # ------------------------------------------------ the pattern
    def _guarded(self, expr: cst.BaseExpression, depth: int = 0) -> bool:
        for node in iter_tree(expr):
            if isinstance(node, cst.Call) and self.ctx.qualname(node.func) in _GUARDS:
                return True
            if isinstance(node, cst.Name) and depth < 3 and self._guarded_name(node, depth):
                return True  # safe = jnp.where(c, x, 1.0); ... jnp.sqrt(safe)
            if isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.Add) and (
                isinstance(node.left, (cst.Float, cst.Integer)) or isinstance(node.right, (cst.Float, cst.Integer))
            ):
                return True  # x + eps
        return False

    def _guarded_name(self, name: cst.Name, depth: int) -> bool:
        """`name` was last assigned a guarded value in this function, before the `where`."""
        fn = self.ctx.enclosing(cst.FunctionDef, cst.Lambda)
        if fn is None or not self.ctx.index.is_local(fn, name.value):
            return False
        binding = self.ctx.index.lookup_at(name.value, fn, self._at)
        if binding is None or binding.how != ASSIGN or binding.path is not None or binding.value is None:
            return False
        return self._guarded(binding.value, depth + 1)

    def _risky(self, expr: cst.BaseExpression) -> cst.CSTNode | None:
        """The first singular operation on an unguarded operand inside `expr` that is not a
        Python value (inside a differentiated function, what is not static is differentiated
        or computed from what is)."""
        kind = self.ctx.semantic.kind
        for node in iter_tree(expr):
            if isinstance(node, cst.Call):
                if self.ctx.qualname(node.func) == "jax.numpy.where":
                    continue
                q = self.ctx.qualname(node.func)
                if q in _SINGULAR and node.args:
                    operand = node.args[-1].value if q in ("jax.numpy.divide", "jax.numpy.true_divide", "jax.lax.div") and len(node.args) > 1 else node.args[0].value
                    if kind(operand) >= UNKNOWN and not self._guarded(operand):
                        return node
            elif isinstance(node, cst.BinaryOperation):
                op = node.operator
                if isinstance(op, (cst.Divide, cst.FloorDivide)):
                    if kind(node.right) >= UNKNOWN and not self._guarded(node.right):
                        return node
                elif isinstance(op, cst.Power) and kind(node.left) >= UNKNOWN and not self._guarded(node.left):
                    exp = node.right
                    if isinstance(exp, cst.UnaryOperation) and isinstance(exp.operator, cst.Minus):
                        return node
                    if isinstance(exp, cst.Float) and float(exp.value) < 1:
                        return node
        return None

    def visit_Call(self, node: cst.Call) -> None:
        if self.ctx.qualname(node.func) != "jax.numpy.where" or len(node.args) != 3:
            return
        if any(a.keyword is not None or a.star for a in node.args):
            return
        fn = self.ctx.enclosing(cst.FunctionDef, cst.Lambda)
        if fn is None or fn not in self.differentiated():
            return
        self._at = node
        for branch in (node.args[1].value, node.args[2].value):
            risky = self._risky(branch)
            if risky is not None:
                info: FunctionInfo | None = self.ctx.function()
                name = f" in `{info.name}`" if info is not None and info.name != "<lambda>" else ""
                self.report(
                    node,
                    f"`jnp.where` selects around `{self.ctx.code(risky)}`{name}, which is "
                    "differentiated: the unselected branch still gets a gradient, and its NaN/inf "
                    "times zero makes the whole gradient NaN",
                )
                return
