"""JD124: `jnp.where(c, f(x), y)` with an `f` that is NaN/inf where `c` is false, under `grad`."""

from __future__ import annotations

import libcst as cst

from jaxdoctor.findings import Severity
from jaxdoctor.static.values import UNKNOWN
from jaxdoctor.static.rule import LintRule
from jaxdoctor.static.index import ASSIGN
from jaxdoctor.static.index import FunctionInfo
from jaxdoctor.static.transforms import HOST_CALLBACKS
from jaxdoctor.static.walker import iter_tree

#: reverse-mode transforms: a NaN cotangent of the unselected branch poisons the gradient
#: (forward mode — `jvp`, `jacfwd`, `linearize` — selects the tangents and stays finite)
GRADS = frozenset(
    {"jax.grad", "jax.value_and_grad", "jax.jacrev", "jax.hessian", "jax.vjp",
     "flax.nnx.grad", "flax.nnx.value_and_grad", "flax.linen.grad", "flax.linen.value_and_grad",
     "equinox.filter_grad", "equinox.filter_value_and_grad", "equinox.filter_vjp"}
)
#: functions whose derivative is given by hand: reverse mode never differentiates their body
_CUSTOM_RULES = frozenset({"jax.custom_jvp", "jax.custom_vjp", "flax.nnx.custom_vjp"})
#: functions with an infinite or NaN derivative (or value) somewhere on the real line
_SINGULAR = frozenset(
    {"jax.numpy.log", "jax.numpy.log2", "jax.numpy.log10", "jax.numpy.sqrt", "jax.numpy.arccos",
     "jax.numpy.arcsin", "jax.numpy.arccosh", "jax.numpy.arctanh", "jax.numpy.reciprocal",
     "jax.numpy.divide", "jax.numpy.true_divide", "jax.numpy.power", "jax.numpy.float_power",
     "jax.numpy.cbrt", "jax.lax.log", "jax.lax.sqrt", "jax.lax.rsqrt", "jax.lax.div",
     "jax.lax.acos", "jax.lax.asin", "jax.lax.atanh", "jax.lax.pow", "jax.lax.cbrt",
     "jax.scipy.special.xlogy", "jax.scipy.special.gammaln"}
)
#: the Euclidean norm: its gradient `x / norm(x)` is 0/0 at zero (with the default `ord`)
_NORMS = frozenset({"jax.numpy.linalg.norm"})
#: singular in the last argument (the divisor) rather than the first
_DIVISIONS = frozenset({"jax.numpy.divide", "jax.numpy.true_divide", "jax.lax.div"})
#: wrapping the operand in one of these guards it
_GUARDS = frozenset(
    {"jax.numpy.where", "jax.numpy.maximum", "jax.numpy.minimum", "jax.numpy.clip",
     "jax.lax.stop_gradient", "jax.numpy.abs", "jax.numpy.exp", "jax.numpy.square",
     "jax.lax.max", "jax.lax.min", "jax.lax.clamp", "jax.nn.softplus", "jax.nn.relu"}
)
#: reductions that keep a guarded operand away from zero (a sum of positives is positive)
_KEEPS_SIGN = frozenset({"jax.numpy.sum", "jax.numpy.mean", "jax.numpy.max", "jax.numpy.amax",
                         "jax.numpy.sqrt"})
#: singular at ±1 rather than at zero
_UNIT_SINGULAR = frozenset({"jax.numpy.arccos", "jax.numpy.arcsin", "jax.numpy.arctanh",
                            "jax.lax.acos", "jax.lax.asin", "jax.lax.atanh"})
#: guards whose protection depends on their bounds
_BOUNDED = frozenset({"jax.numpy.clip", "jax.numpy.maximum", "jax.lax.max", "jax.lax.clamp",
                      "jax.numpy.fmax"})
_NONE = object()
#: how many names deep a `where` operand is followed to the expression it was assigned
_DEPTH = 4


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
        self._blocks: dict[cst.CSTNode, dict[cst.CSTNode, tuple]] = {}

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

    def _custom_rule(self, node: cst.CSTNode) -> bool:
        """A `custom_jvp` / `custom_vjp` function: differentiated by its rule, not its body."""
        if not isinstance(node, cst.FunctionDef):
            return False
        names = self.ctx.names
        for dec in node.decorators:
            d = dec.decorator
            q = names.qualname(d.func if isinstance(d, cst.Call) else d)
            if q in _CUSTOM_RULES or (isinstance(d, cst.Call) and q == "functools.partial" and d.args
                                      and names.qualname(d.args[0].value) in _CUSTOM_RULES):
                return True
        return False

    def differentiated(self) -> set[cst.CSTNode]:
        """Functions run under reverse-mode AD: the grad roots, then what they call (helpers,
        methods, a module's `__call__` through `model(x)` / `model.apply`), the functions they
        hand to a transform (`jit`, `vmap`, `scan`, `checkpoint` bodies) and those they define."""
        if self._differentiated is not None:
            return self._differentiated
        semantic = self.ctx.semantic
        names = self.ctx.names
        resolver = semantic.resolver
        done: set[cst.CSTNode] = set()
        todo = list(self._grad_roots())
        by_scope: dict[cst.CSTNode, list] = {}
        for call, scope, order in semantic.calls:
            by_scope.setdefault(scope, []).append((call, order))
        children: dict[cst.CSTNode, list] = {}
        for fn, info in semantic.functions.items():
            children.setdefault(info.scope, []).append(fn)
        while todo:
            fn = todo.pop()
            if fn in done or self._custom_rule(fn):
                continue
            done.add(fn)
            todo.extend(children.get(fn, []))
            for call, order in by_scope.get(fn, []):
                todo.extend(c.info.node for c in semantic.callees(call))
                spec = semantic.transform_of(call)
                if spec is not None and spec.traces and spec.qualname not in _CUSTOM_RULES:
                    for arg in resolver.function_args(call, spec):
                        todo.extend(c.info.node for c in resolver.callees(arg, fn, order))
                elif names.qualname(call.func) in HOST_CALLBACKS:
                    continue
        self._differentiated = done
        return done

    # ------------------------------------------------ names, followed in straight-line code
    def _chains(self, fn: cst.CSTNode) -> dict[cst.CSTNode, tuple]:
        """Statement of `fn`'s body → the blocks around it (outermost first)."""
        found = self._blocks.get(fn)
        if found is not None:
            return found
        out: dict[cst.CSTNode, tuple] = {}

        def suite(node: cst.CSTNode, chain: tuple) -> None:
            if isinstance(node, cst.SimpleStatementSuite):
                for small in node.body:
                    out[small] = chain
                return
            for stmt in node.body:  # an IndentedBlock
                if isinstance(stmt, cst.SimpleStatementLine):
                    for small in stmt.body:
                        out[small] = chain
                else:
                    compound(stmt, chain)

        def compound(stmt: cst.CSTNode, chain: tuple) -> None:
            out[stmt] = chain
            if isinstance(stmt, (cst.FunctionDef, cst.ClassDef)):
                return  # another scope
            for part in _suites(stmt):
                if isinstance(part, cst.If):  # `elif`
                    compound(part, chain + (part,))
                else:
                    suite(part, chain + (part,))

        if isinstance(fn, cst.FunctionDef):  # a lambda has no statements
            suite(fn.body, ())
        self._blocks[fn] = out
        return out

    def _bound_value(self, name: cst.Name, fn: cst.CSTNode, at: cst.CSTNode | None) -> tuple | None:
        """(value, statement) of the one assignment `name = value` of `fn` that reaches statement
        `at` on every path: before it, in the same block or one around it."""
        index = self.ctx.index
        if at is None or not index.is_local(fn, name.value):
            return None
        b = index.lookup_at(name.value, fn, at)
        if b is not None and b.node is at:
            # `theta = jnp.where(c, theta, 0.0)`: the right-hand side reads the binding before
            b = index.lookup(name.value, fn, index.order.get(at, 1) - 1)
        if b is None or b.how != ASSIGN or b.path is not None or b.value is None or b.scope is not fn:
            return None
        order = index.order
        if not order.get(b.node, 1 << 30) < order.get(at, -1):
            return None  # loop-carried: used before this assignment
        chains = self._chains(fn)
        bc, uc = chains.get(b.node), chains.get(at)
        if bc is None or uc is None or uc[: len(bc)] != bc:
            return None  # assigned in a branch or loop the use may not go through
        return b.value, b.node

    # ------------------------------------------------ the pattern
    def _guarded(self, expr: cst.BaseExpression, fn: cst.CSTNode, at: cst.CSTNode | None, depth: int = 0,
                 unit: bool = False) -> bool:
        """`expr` is kept away from the singularity by how it is computed at the top: a guard
        call (`jnp.where(c, x, 1.0)`, `jnp.maximum(x, eps)`, `jnp.clip`), `x + eps`, a sum or
        mean of a guarded value, a name last assigned such a value, or a call of a function of
        this file whose every return is guarded. A guard buried deeper (`softmax(where(m, z,
        -inf))` can still be 0) does not count."""
        while isinstance(expr, cst.UnaryOperation) and isinstance(expr.operator, cst.Minus):
            expr = expr.expression
        if isinstance(expr, cst.Call):
            q = self.ctx.qualname(expr.func)
            if q in _BOUNDED:
                return self._bounds_exclude(expr, q, unit)
            if q in _GUARDS:
                return True
            if q in _KEEPS_SIGN and not unit and expr.args and expr.args[0].keyword is None:
                return self._guarded(expr.args[0].value, fn, at, depth)
            if q is None and depth < _DEPTH:
                found = self.ctx.semantic.resolve_functions(expr.func, fn, at)
                if found and all(self._returns_guarded(i, depth) for i in found):
                    return True  # `1.0 / safe_dist(x)` where `safe_dist` returns `sqrt(d + eps)`
            return False
        if isinstance(expr, cst.BinaryOperation):
            if isinstance(expr.operator, cst.Add) and (
                    isinstance(expr.left, (cst.Float, cst.Integer)) or isinstance(expr.right, (cst.Float, cst.Integer))
                    or self._eps_name(expr.left) or self._eps_name(expr.right)):
                return True  # x + eps
            if isinstance(expr.operator, (cst.Multiply, cst.Divide)):
                return self._guarded(expr.left, fn, at, depth) and self._guarded(expr.right, fn, at, depth)
            return False
        if isinstance(expr, cst.Name) and depth < _DEPTH:
            return self._guarded_name(expr, fn, at, depth)
        if isinstance(expr, (cst.Float, cst.Integer)):
            return True
        return False

    def _bounds_exclude(self, call: cst.Call, q: str, unit: bool) -> bool:
        """`jnp.clip(x, lo, hi)` / `jnp.maximum(x, lo)` keep `x` off the singular point: off zero
        for `log`/`sqrt`/division (a lower bound above zero, `eps`), off ±1 for `arccos`/`arcsin`
        (bounds strictly inside). `jnp.maximum(x, 0.0)` and `jnp.clip(c, -1.0, 1.0)` reach it.
        A bound that is not a literal is given the benefit of the doubt."""
        args = [a.value for a in call.args if a.keyword is None]
        keywords = {a.keyword.value: a.value for a in call.args if a.keyword is not None}
        if q in ("jax.numpy.maximum", "jax.lax.max", "jax.numpy.fmax"):
            bounds = args[1:2]
        else:  # clip(x, min, max), lax.clamp(min, x, max)
            if q == "jax.lax.clamp":
                bounds = [args[0], args[2]] if len(args) == 3 else []
            else:
                bounds = args[1:3] + [keywords[k] for k in ("a_min", "a_max", "min", "max") if k in keywords]
        literals = [_literal(b) for b in bounds]
        if not bounds or any(v is None for v in literals if v is not _NONE):
            return True  # a computed bound: no evidence it reaches the singular point
        values = [v for v in literals if v is not _NONE]
        if unit:
            return bool(values) and all(abs(v) < 1.0 for v in values)
        return any(v > 0.0 for v in values[:1])

    @staticmethod
    def _eps_name(e: cst.BaseExpression) -> bool:
        """`x + eps`, `x + self.epsilon`: a name for a small constant."""
        name = e.value if isinstance(e, cst.Name) else e.attr.value if isinstance(e, cst.Attribute) else ""
        return "eps" in name.lower()

    def _returns_guarded(self, info: FunctionInfo, depth: int) -> bool:
        node = info.node
        if isinstance(node, cst.Lambda):
            return self._guarded(node.body, node, None, depth + 1)
        values = [r.value for r in iter_tree(node) if isinstance(r, cst.Return)]
        return bool(values) and all(v is not None and self._guarded(v, node, None, depth + 1) for v in values)

    def _guarded_name(self, name: cst.Name, fn: cst.CSTNode, at: cst.CSTNode | None, depth: int) -> bool:
        """`name` was last assigned a guarded value in this function, before statement `at` (a
        guard on one path is enough to stay quiet)."""
        index = self.ctx.index
        if at is None or not index.is_local(fn, name.value):
            return False
        binding = index.lookup_at(name.value, fn, at)
        if binding is None or binding.how != ASSIGN or binding.path is not None or binding.value is None:
            return False
        return self._guarded(binding.value, fn, binding.node, depth + 1)

    def _risky(self, expr: cst.BaseExpression, fn: cst.CSTNode, at: cst.CSTNode | None,
               depth: int = 0, seen: frozenset = frozenset(),
               cond_names: frozenset = frozenset()) -> cst.CSTNode | None:
        """The first singular operation on an unguarded operand inside `expr` — or inside the
        expression a name of `expr` was assigned, on every path to statement `at` — that is not
        a Python value (inside a differentiated function, what is not static is differentiated
        or computed from what is). Another `jnp.where` inside is checked on its own."""
        kind = self.ctx.semantic.kind
        stack: list[cst.CSTNode] = [expr]
        while stack:
            node = stack.pop()
            if isinstance(node, cst.Call):
                q = self.ctx.qualname(node.func)
                if q == "jax.numpy.where":
                    continue
                if q in _SINGULAR and node.args:
                    operand = node.args[-1].value if q in _DIVISIONS and len(node.args) > 1 else node.args[0].value
                    if kind(operand) >= UNKNOWN and not self._guarded(operand, fn, at, unit=q in _UNIT_SINGULAR):
                        return node
                if q in _NORMS and len(node.args) == 1 and node.args[0].keyword is None:
                    operand = node.args[0].value
                    if kind(operand) >= UNKNOWN and not self._guarded(operand, fn, at):
                        return node
            elif isinstance(node, cst.BinaryOperation):
                op = node.operator
                if isinstance(op, (cst.Divide, cst.FloorDivide)):
                    if kind(node.right) >= UNKNOWN and not self._guarded(node.right, fn, at):
                        return node
                    if kind(node.left) >= UNKNOWN and not isinstance(node.right, (cst.Integer, cst.Float)) \
                            and cond_names and cond_names & _names_in(node.right) \
                            and not self._guarded(node.right, fn, at):
                        # `a / b` with `b` data the condition tests (`where(b > 0, a / b, 0)`):
                        # the gradient for `a` is `1 / b`, infinite where `b == 0`
                        return node
                elif isinstance(op, cst.Power) and kind(node.left) >= UNKNOWN and not self._guarded(node.left, fn, at):
                    exp = node.right
                    if isinstance(exp, cst.UnaryOperation) and isinstance(exp.operator, cst.Minus):
                        return node
                    if isinstance(exp, cst.Float) and float(exp.value) < 1:
                        return node
            elif isinstance(node, cst.Name) and depth < _DEPTH and node.value not in seen and kind(node) >= UNKNOWN:
                bound = self._bound_value(node, fn, at)
                if bound is not None:
                    value, stmt = bound
                    found = self._risky(value, fn, stmt, depth + 1, seen | {node.value}, cond_names)
                    if found is not None:
                        return found
                continue
            elif isinstance(node, (cst.Lambda, cst.FunctionDef)):
                continue
            elif isinstance(node, cst.Attribute):
                stack.append(node.value)  # `x.T`, not the attribute's name
                continue
            stack.extend(reversed(node.children))
        return None

    def _inner_guard(self, node: cst.Call) -> bool:
        """`node` is the operand a singular operation reads (`jnp.arccos(jnp.where(...))`,
        `a / jnp.where(...)`, `jnp.where(...) ** 0.5`): it is the guard, not the select."""
        parent = self.ctx.parent
        if isinstance(parent, cst.Arg):
            call = self.ctx.ancestors[-2] if len(self.ctx.ancestors) > 1 else None
            return isinstance(call, cst.Call) and (self.ctx.qualname(call.func) in _SINGULAR
                                                  or self.ctx.qualname(call.func) in _NORMS)
        if isinstance(parent, cst.BinaryOperation):
            return (isinstance(parent.operator, (cst.Divide, cst.FloorDivide)) and parent.right is node) or (
                isinstance(parent.operator, cst.Power) and parent.left is node)
        return False

    def visit_Call(self, node: cst.Call) -> None:
        if self.ctx.qualname(node.func) != "jax.numpy.where" or len(node.args) != 3:
            return
        if any(a.keyword is not None or a.star for a in node.args):
            return
        fn = self.ctx.enclosing(cst.FunctionDef, cst.Lambda)
        if fn is None or fn not in self.differentiated():
            return
        if self._inner_guard(node):
            return  # `jnp.log(jnp.where(c, x, 1.0))`: the inner where of the double-where trick
        at = next((a for a in reversed(self.ctx.ancestors)
                   if isinstance(a, (cst.BaseSmallStatement, cst.BaseCompoundStatement))), None)
        cond_names = frozenset(_names_in(node.args[0].value))
        for branch in (node.args[1].value, node.args[2].value):
            risky = self._risky(branch, fn, at, cond_names=cond_names)
            if risky is not None:
                info: FunctionInfo | None = self.ctx.function()
                name = f" in `{info.name}`" if info is not None and info.name != "<lambda>" else ""
                via = "" if any(r is risky for r in iter_tree(branch)) else " (through a variable)"
                self.report(
                    node,
                    f"`jnp.where` selects around `{self.ctx.code(risky)}`{via}{name}, which is "
                    "differentiated: the unselected branch still gets a gradient, and its NaN/inf "
                    "times zero makes the whole gradient NaN",
                )
                return


def _literal(e: cst.BaseExpression):
    """A numeric literal's value (`-1.0`, `1e-6`, `1 - 1e-6`), `_NONE` for `None`, else None."""
    if isinstance(e, cst.Name) and e.value == "None":
        return _NONE
    if isinstance(e, (cst.Name, cst.Attribute)):
        name = e.value if isinstance(e, cst.Name) else e.attr.value
        return 1e-9 if "eps" in name.lower() else None
    if isinstance(e, cst.UnaryOperation) and isinstance(e.operator, cst.Minus):
        v = _literal(e.expression)
        return -v if isinstance(v, float) else None
    if isinstance(e, (cst.Integer, cst.Float)):
        try:
            return float(e.value.replace("_", ""))
        except ValueError:
            return None
    if isinstance(e, cst.BinaryOperation) and isinstance(e.operator, (cst.Add, cst.Subtract)):
        a, b = _literal(e.left), _literal(e.right)
        if isinstance(a, float) and isinstance(b, float):
            return a + b if isinstance(e.operator, cst.Add) else a - b
    return None


def _names_in(e: cst.BaseExpression) -> set[str]:
    return {n.value for n in iter_tree(e) if isinstance(n, cst.Name)}


def _suites(stmt: cst.CSTNode) -> list[cst.CSTNode]:
    """The blocks of a compound statement; an `elif` is given as its `If`."""
    out: list[cst.CSTNode] = []
    body = getattr(stmt, "body", None)
    if isinstance(body, (cst.IndentedBlock, cst.SimpleStatementSuite)):
        out.append(body)
    for name in ("orelse", "finalbody"):
        part = getattr(stmt, name, None)
        if isinstance(part, cst.If):
            out.append(part)
        elif part is not None:
            out.append(part.body)
    for handler in getattr(stmt, "handlers", ()) or ():
        out.append(handler.body)
    for case in getattr(stmt, "cases", ()) or ():
        out.append(case.body)
    return out
