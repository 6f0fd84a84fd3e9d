"""Rules about compilation cost: re-jitting, unhashable static arguments, unrolled loops."""

from __future__ import annotations

import libcst as cst

from jaxdoctor.findings import Severity
from jaxdoctor.rules._values import is_jax_array
from jaxdoctor.rules.tracing import where
from jaxdoctor.static.kinds import STATIC
from jaxdoctor.static.rule import LintRule
from jaxdoctor.static.scopes import ASSIGN, scope_chain
from jaxdoctor.static.syntax import literal_ints, literal_strs
from jaxdoctor.static.transforms import PARTIALS
from jaxdoctor.static.walker import children

JIT_LIKE = frozenset(
    {"jax.jit", "flax.nnx.jit", "equinox.filter_jit", "jax.pmap", "flax.nnx.pmap",
     "equinox.filter_pmap", "jax.pjit", "jax.experimental.pjit.pjit", "flax.linen.jit"}
)
_COMPS = (cst.ListComp, cst.SetComp, cst.DictComp, cst.GeneratorExp)
_SCOPES = (cst.FunctionDef, cst.Lambda, cst.ClassDef)


def _in_loop(ancestors: list[cst.CSTNode]) -> cst.CSTNode | None:
    """The loop (for/while body or comprehension) around the current node, within its function."""
    for i in range(len(ancestors) - 1, -1, -1):
        node = ancestors[i]
        if isinstance(node, _SCOPES):
            return None
        child = ancestors[i + 1] if i + 1 < len(ancestors) else None
        if isinstance(node, (cst.For, cst.While)) and child is node.body:
            return node
        if isinstance(node, _COMPS) and child is not node.for_in:
            return node
    return None


def _bound_fresh_in(body: cst.CSTNode, name: str, qualname) -> bool:
    """A statement of `body` (nested scopes aside) binds `name` to a new function: a `def`, or
    an assignment of a lambda or `partial(...)`."""
    stack: list[cst.CSTNode] = [body]
    while stack:
        node = stack.pop()
        if isinstance(node, cst.FunctionDef):
            if node.name.value == name:
                return True
            continue
        if isinstance(node, (cst.Lambda, cst.ClassDef)):
            continue
        if isinstance(node, cst.Assign) and any(
                isinstance(t.target, cst.Name) and t.target.value == name for t in node.targets):
            v = node.value
            if isinstance(v, cst.Lambda) or (isinstance(v, cst.Call) and qualname(v.func) in PARTIALS):
                return True
        stack.extend(children(node))
    return False


def _bound_in(body: cst.CSTNode, name: str) -> bool:
    """A statement of `body` (nested scopes aside) assigns `name`."""
    stack: list[cst.CSTNode] = [body]
    while stack:
        node = stack.pop()
        if isinstance(node, (cst.FunctionDef, cst.Lambda, cst.ClassDef)):
            continue
        if isinstance(node, (cst.Assign, cst.AnnAssign)):
            targets = [t.target for t in node.targets] if isinstance(node, cst.Assign) else [node.target]
            if any(isinstance(t, cst.Name) and t.value == name for t in targets):
                return True
        stack.extend(children(node))
    return False


class JitInLoop(LintRule):
    code = "JD120"
    name = "jit-in-loop"
    severity = Severity.WARNING
    summary = "`jax.jit(...)` built inside a loop or per call, or an unhashable static argument"
    fix_title = "Build the jitted function once (at module level or before the loop) and reuse it"

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        self._statics: dict[str, tuple[set[int], set[str]]] | None = None

    # ------------------------------------------------------------ re-jitting
    def visit_Call(self, node: cst.Call) -> None:
        q = self.ctx.qualname(node.func)
        if q in JIT_LIKE:
            self._jit_call(node, q)
            return
        if isinstance(node.func, cst.Name):
            self._static_args(node)

    def _jit_call(self, node: cst.Call, q: str) -> None:
        parent = self.ctx.parent
        called = isinstance(parent, cst.Call) and parent.func is node
        loop = _in_loop(self.ctx.ancestors)
        short = q.split(".")[-1] if not q.startswith("jax.") else q
        if loop is not None and not isinstance(loop, _COMPS):
            assigned = isinstance(parent, cst.Assign) and all(
                isinstance(t.target, cst.Name) for t in parent.targets)
            fn = node.args[0].value if node.args else None
            # JAX caches traces per function object: only a callable made anew each iteration
            # recompiles; `jax.jit(f)` of the same `f` again is a cache hit
            if (called or assigned) and fn is not None and self._fresh_each_iteration(fn, loop):
                self.report(
                    node,
                    f"`{short}({self.ctx.code(fn)})` is applied inside a loop to a function created "
                    f"on each iteration: each one traces and compiles again",
                )
            return
        if not called:
            return
        info = self.ctx.function()
        if info is None or info.traced or not node.args:
            return  # module level: runs once; inside a traced function: inlined, no compile
        fn = node.args[0].value
        fresh = isinstance(fn, cst.Lambda) or (
            isinstance(fn, cst.Call) and self.ctx.qualname(fn.func) in PARTIALS
        )
        if isinstance(fn, cst.Name):
            # a function defined (`def` or `lambda`) inside this function: new on every call
            local = self.ctx.scopes.defining_scope(fn.value, scope_chain(self.ctx.ancestors, self.ctx.module))
            # only this function's own locals are new per call; a closure of an enclosing
            # function (`def outer(): def step(...): ...; def run(): jax.jit(step)(x)`) is not
            fresh = local is not None and local is info.node and (
                fn.value in self.ctx.semantic.defs.get(local, {})
                or any(isinstance(b.value, cst.Lambda) for b in self.ctx.scopes.bindings(local, fn.value))
            )
        if info.name == "main" or info.name.startswith("test"):
            fresh = False  # runs once
        if fresh:
            self.report(
                node,
                f"`{short}({self.ctx.code(fn)})(...)` jits a function created on every call of "
                f"`{info.name}`: each call traces and compiles again",
            )

    def _fresh_each_iteration(self, fn: cst.BaseExpression, loop: cst.CSTNode) -> bool:
        """`fn` evaluates to a new function object on each pass through `loop`: a lambda, a
        `partial(...)`, `self.step` (a bound method is a new object on every access), an
        attribute of an object made in the loop body, or a name that a `def` or such an
        assignment in the loop body binds. A module-level function, a parameter, `module.fn`,
        `opt.update` of an object made before the loop, or `jax.jit(make_step(cfg))` (a new
        function per configuration, compiled once each) is not."""
        if isinstance(fn, cst.Lambda):
            return True
        if isinstance(fn, cst.Call):
            return self.ctx.qualname(fn.func) in PARTIALS
        if isinstance(fn, cst.Attribute) and isinstance(fn.value, cst.Name):
            if fn.value.value == "self":  # `self.step`: a bound method, new on every access
                info = self.ctx.function()
                cls = info.cls if info is not None else None
                return cls is not None and self.ctx.semantic._method(cls, fn.attr.value) is not None
            # `opt.update` may be a plain function in a NamedTuple (optax): the same object
            # each time, unless `opt` itself is made in the loop
            return _bound_in(loop.body, fn.value.value)  # type: ignore[attr-defined]
        if isinstance(fn, cst.Name):
            return _bound_fresh_in(loop.body, fn.value, self.ctx.qualname)  # type: ignore[attr-defined]
        return False

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        for dec in node.decorators:
            d = dec.decorator
            q = self.ctx.qualname(d.func if isinstance(d, cst.Call) else d)
            if isinstance(d, cst.Call) and q in PARTIALS and d.args:
                q = self.ctx.qualname(d.args[0].value)
            if q in JIT_LIKE and _in_loop(self.ctx.ancestors) is not None:
                self.report(
                    dec,
                    f"`@{q}` on `{node.name.value}` defined inside a loop: each iteration builds a "
                    f"new jitted function, which traces and compiles again",
                )

    # ------------------------------------------------------- static arguments
    def _collect_statics(self) -> dict[str, tuple[set[int], set[str]]]:
        out: dict[str, tuple[set[int], set[str]]] = {}
        names = self.ctx.names
        # decorated functions
        for info in self.ctx.semantic.functions.values():
            node = info.node
            if not isinstance(node, cst.FunctionDef):
                continue
            for dec in node.decorators:
                d = dec.decorator
                if not isinstance(d, cst.Call):
                    continue
                q = names.qualname(d.func)
                if q in PARTIALS and d.args:
                    q = names.qualname(d.args[0].value)
                if q in JIT_LIKE:
                    self._record(out, node.name.value, d, info.positional)
        # g = jax.jit(f, static_argnums=...)
        for stmt in self.ctx.module.body:
            if not isinstance(stmt, cst.SimpleStatementLine):
                continue
            for small in stmt.body:
                if (isinstance(small, cst.Assign) and isinstance(small.value, cst.Call)
                        and names.qualname(small.value.func) in JIT_LIKE
                        and len(small.targets) == 1 and isinstance(small.targets[0].target, cst.Name)):
                    call = small.value
                    params: list[str] = []
                    if call.args and isinstance(call.args[0].value, cst.Name):
                        fn = self.ctx.semantic.defs.get(self.ctx.module, {}).get(call.args[0].value.value)
                        if fn is not None:
                            params = self.ctx.semantic.functions[fn].positional
                    self._record(out, small.targets[0].target.value, call, params)
        return out

    @staticmethod
    def _record(out, name: str, call: cst.Call, params: list[str]) -> None:
        nums: set[int] = set()
        strs: set[str] = set()
        for arg in call.args:
            if arg.keyword is None:
                continue
            if arg.keyword.value == "static_argnums":
                nums = literal_ints(arg.value) or set()
            elif arg.keyword.value == "static_argnames":
                strs = literal_strs(arg.value)
        for i in nums:
            if 0 <= i < len(params):
                strs.add(params[i])
        for i, p in enumerate(params):
            if p in strs:
                nums.add(i)
        if nums or strs:
            out[name] = (nums, strs)

    def _unhashable(self, expr: cst.BaseExpression, stmt: cst.CSTNode) -> str | None:
        if isinstance(expr, (cst.List, cst.ListComp)):
            return "a list"
        if isinstance(expr, (cst.Dict, cst.DictComp)):
            return "a dict"
        if isinstance(expr, (cst.Set, cst.SetComp)):
            return "a set"
        if isinstance(expr, cst.Call):
            q = self.ctx.qualname(expr.func)
            if is_jax_array(expr, self.ctx.names) or (q is not None and q.startswith("numpy.") and q.split(".")[-1] in (
                    "array", "asarray", "zeros", "ones", "arange", "full", "empty", "linspace")):
                return "an array"
            if q in ("builtins.list", "builtins.dict", "builtins.set"):
                return "a " + q.split(".")[1]
            return None
        if isinstance(expr, cst.Name):
            chain = scope_chain(self.ctx.ancestors, self.ctx.module)
            scope = self.ctx.scopes.defining_scope(expr.value, chain)
            if scope is None:
                return None
            b = self.ctx.scopes.last_before(scope, expr.value, stmt if scope is chain[-1] else None)
            if b is not None and b.how == ASSIGN and b.value is not None and not isinstance(b.value, cst.Name):
                return self._unhashable(b.value, stmt)
        return None

    def _static_args(self, node: cst.Call) -> None:
        if self._statics is None:
            self._statics = self._collect_statics()
        spec = self._statics.get(node.func.value)  # type: ignore[union-attr]
        if spec is None:
            return
        nums, strs = spec
        stmt = next((a for a in reversed(self.ctx.ancestors)
                     if isinstance(a, (cst.BaseSmallStatement, cst.BaseCompoundStatement))), node)
        index = 0
        for arg in node.args:
            if arg.star:
                return
            static = (arg.keyword is None and index in nums) or (
                arg.keyword is not None and arg.keyword.value in strs)
            if arg.keyword is None:
                index += 1
            if not static:
                continue
            what = self._unhashable(arg.value, stmt)
            if what is not None:
                self.report(
                    arg.value,
                    f"`{self.ctx.code(arg.value)}` ({what}) is passed as a static argument of "
                    f"`{node.func.value}`: static arguments must be hashable, this raises "  # type: ignore[union-attr]
                    f"`ValueError: Non-hashable static arguments are not supported`",
                    fix_title="Pass a tuple (or a hashable, frozen object), or make the argument non-static",
                )


THRESHOLD = 100


class UnrolledPythonLoop(LintRule):
    code = "JD121"
    name = "unrolled-python-loop"
    severity = Severity.WARNING
    summary = "A Python `for` over a large `range` inside a traced function (unrolled at trace time)"
    fix_title = "Use `jax.lax.fori_loop` or `jax.lax.scan` (compile time stays constant)"

    def visit_For(self, node: cst.For) -> None:
        info = self.ctx.traced_function()
        if info is None:
            return
        it = node.iter
        if not isinstance(it, cst.Call) or self.ctx.qualname(it.func) != "builtins.range":
            return
        args = [a.value for a in it.args if a.keyword is None and not a.star]
        if not args or len(args) > 3:
            return
        values = [self._value(a, info) for a in args]
        if len(args) == 1:
            count = values[0]
        else:
            start, stop = values[0], values[1]
            step = values[2] if len(args) == 3 else 1
            if start is None or stop is None or not step:
                count = None
            else:
                count = (stop - start) // step if step > 0 else None
        if count is not None and count >= THRESHOLD:
            self.report(
                node,
                f"Python `for` over `{self.ctx.code(it)}`{where(info)}: JAX unrolls all {count} "
                f"iterations while tracing, so trace and compile time grow with the loop length",
            )

    def _value(self, expr: cst.BaseExpression, info) -> int | None:
        if isinstance(expr, cst.Integer):
            return int(expr.value.replace("_", ""), 0)
        if isinstance(expr, cst.UnaryOperation) and isinstance(expr.operator, cst.Minus):
            v = self._value(expr.expression, info)
            return -v if v is not None else None
        if isinstance(expr, cst.BinaryOperation) and isinstance(expr.operator, (cst.Multiply, cst.Add, cst.Subtract)):
            left, right = self._value(expr.left, info), self._value(expr.right, info)
            if left is None or right is None:
                return None
            if isinstance(expr.operator, cst.Multiply):
                return left * right
            return left + right if isinstance(expr.operator, cst.Add) else left - right
        if isinstance(expr, cst.Name):
            chain = scope_chain(self.ctx.ancestors, self.ctx.module)
            scope = self.ctx.scopes.defining_scope(expr.value, chain)
            if scope is None:
                return None
            bindings = self.ctx.scopes.bindings(scope, expr.value)
            if len(bindings) == 1:
                b = bindings[0]
                if b.how == ASSIGN and isinstance(b.value, cst.Integer):
                    return int(b.value.value.replace("_", ""), 0)
                if b.how == "param" and isinstance(scope, cst.FunctionDef):
                    p = next((p for p in (*scope.params.params, *scope.params.kwonly_params)
                              if p.name.value == expr.value), None)
                    if p is not None and isinstance(p.default, cst.Integer) and \
                            self.ctx.semantic.kind(expr) == STATIC:
                        return int(p.default.value.replace("_", ""), 0)
        return None
