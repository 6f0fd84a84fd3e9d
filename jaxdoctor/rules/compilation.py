"""Rules about compilation cost: re-jitting, unhashable static arguments, unrolled loops."""

from __future__ import annotations

import libcst as cst

from jaxdoctor.findings import Severity
from jaxdoctor.rules._values import is_jax_array
from jaxdoctor.rules.tracing import where
from jaxdoctor.static.values import holds_tracers
from jaxdoctor.static.rule import LintRule
from jaxdoctor.static.index import ASSIGN, CLASS, DEF, PARAM, target_names
from jaxdoctor.static.resolve import bind_args
from jaxdoctor.static.syntax import literal_ints, literal_strs
from jaxdoctor.static.transforms import PARTIALS
from jaxdoctor.static.walker import children, iter_tree

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


def _names_of(target: cst.BaseExpression) -> set[str]:
    out: list[cst.Name] = []
    target_names(target, out)
    return {n.value for n in out}


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


def static_positions(ctx, callee) -> tuple[set[int], set[str]]:
    """The static argument positions and names of a call through a jit-like transform, from
    the options of the transform call or decorator (literals only)."""
    options = callee.options
    info = callee.info
    if options is None:
        return set(), set()
    nums: set[int] = set()
    strs: set[str] = set()
    for arg in options.args:
        if arg.keyword is None:
            continue
        if arg.keyword.value == "static_argnums":
            nums = literal_ints(arg.value) or set()
        elif arg.keyword.value == "static_argnames":
            strs = literal_strs(arg.value)
    params = info.node.params
    if callee.decorated and info.is_method and not info.is_staticmethod:
        # jit sees the plain function: its `static_argnums` count `self`
        names = [p.name.value for p in (*params.posonly_params, *params.params)]
    else:
        names = info.positional
    names = names[callee.bound.positional:]
    for i in nums:
        if 0 <= i < len(names):
            strs.add(names[i])
    for i, p in enumerate(names):
        if p in strs:
            nums.add(i)
    return nums, strs


class JitInLoop(LintRule):
    code = "JD120"
    name = "jit-in-loop"
    severity = Severity.WARNING
    summary = "`jax.jit(...)` built inside a loop or per call, or an unhashable static argument"
    fix_title = "Build the jitted function once (at module level or before the loop) and reuse it"

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        self._looped: set[cst.Call] | None = None

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
            if (called or assigned) and fn is not None and self._fresh_each_iteration(fn, loop) \
                    and not self._specialised(self._made(fn, loop), loop) \
                    and not self._specialised(node, loop, options=True):
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
            # a function defined (`def` or `lambda`) inside this function: new on every call;
            # a closure of an enclosing function (`def outer(): def step(...): ...; def run():
            # jax.jit(step)(x)`) is not
            b = self.ctx.lookup(fn.value)
            fresh = b is not None and b.scope is info.node and (
                b.how == DEF or (b.how == ASSIGN and isinstance(b.value, cst.Lambda)))
            local = b.node if b is not None and b.how == DEF else b.value if b is not None else None
        else:
            local = fn if isinstance(fn, cst.Lambda) else None
        if fresh and local is not None and self._closes_over_call(local, info):
            # the function closes over this call's own values (its arguments, what it
            # computed): each call is a different function by design
            fresh = False
        if fresh and not self._called_repeatedly(info):
            fresh = False  # a test, a set-up step, a helper called once: one compile is all it costs
        if fresh:
            self.report(
                node,
                f"`{short}({self.ctx.code(fn)})(...)` jits a function created on every call of "
                f"`{info.name}`: each call traces and compiles again",
            )

    def _closes_over_call(self, local, info) -> bool:
        """`local` (a def or lambda made inside `info`'s function) reads a name bound by that
        function: a parameter or a local computed on this call."""
        inner = self.ctx.semantic.function(local)
        if inner is None:
            return False
        own = {p.name.value for p in inner.all_params()}
        outer = self.ctx.index.scope(info.node).bindings
        for node in iter_tree(local.body):
            if isinstance(node, cst.Name) and node.value not in own and node.value in outer:
                b = outer[node.value]
                if any(x.how != DEF and x.node is not local for x in b):
                    return True
        return False

    def _made_unvarying(self, name: str, loop: cst.CSTNode) -> bool:
        """`name` is assigned in the loop body, from an expression that reads nothing the loop
        binds (its target, or names assigned in its body)."""
        varying = _names_of(loop.target) if isinstance(loop, cst.For) else set()
        values = []
        for node in iter_tree(loop.body):
            if isinstance(node, cst.Assign):
                for t in node.targets:
                    names = _names_of(t.target)
                    if name in names:
                        values.append(node.value)
                    else:
                        varying |= names
        if not values:
            return False
        return not any(isinstance(n, cst.Name) and n.value in varying for v in values for n in iter_tree(v))

    def _made(self, fn: cst.BaseExpression, loop: cst.CSTNode) -> cst.CSTNode | None:
        """The lambda or `def` a loop body makes `fn` from, if it is one."""
        if isinstance(fn, cst.Lambda):
            return fn
        if isinstance(fn, cst.Name):
            b = self.ctx.lookup(fn.value)
            if b is not None and b.how == DEF:
                return b.node
            if b is not None and b.how == ASSIGN and isinstance(b.value, cst.Lambda):
                return b.value
        return None

    def _specialised(self, fn: cst.CSTNode | None, loop: cst.CSTNode, options: bool = False) -> bool:
        """The function made in the loop reads a value the loop binds that is not a loop index:
        one function per configuration (an autotuning sweep, a layer object, a sharding) is the
        point, and each needs its own compile. A function that reads only an integer index
        (`for i in range(n)`) could take it as an argument and compile once."""
        if fn is None or not isinstance(loop, (cst.For, cst.While)):
            return False
        inner = self.ctx.semantic.function(fn) if not options else None
        own = {p.name.value for p in inner.all_params()} if inner is not None else set()
        bound: dict[str, bool] = {}  # loop-bound name → is an integer index
        if isinstance(loop, cst.For):
            it = loop.iter
            q = self.ctx.qualname(it.func) if isinstance(it, cst.Call) else None
            targets = _names_of(loop.target)
            if q == "builtins.range":
                bound.update({n: True for n in targets})
            elif q == "builtins.enumerate" and isinstance(loop.target, cst.Tuple) and loop.target.elements:
                first = _names_of(loop.target.elements[0].value)
                bound.update({n: n in first for n in targets})
            else:
                bound.update({n: False for n in targets})
        for node in iter_tree(loop.body):
            if isinstance(node, cst.Assign):
                for t in node.targets:
                    for n in _names_of(t.target):
                        bound.setdefault(n, False)
        if options:
            # `jax.jit(f, out_shardings=sharding[name])`: options that vary per iteration make
            # one program per iteration whatever `f` is
            assert isinstance(fn, cst.Call)
            body = [a.value for a in fn.args if a.keyword is not None]
        else:
            body = [fn.body]
        for node in (n for b in body for n in iter_tree(b)):
            if isinstance(node, cst.Name) and node.value in bound and node.value not in own \
                    and not bound[node.value]:
                return True
        return False

    def _called_repeatedly(self, info) -> bool:
        """Some call of `info`'s function in this file sits in a loop or a comprehension, or in
        a function that runs per step (called in a loop itself): evidence that it runs again and
        again, so a compile per call adds up."""
        seen = set()
        todo = [info]
        while todo:
            fn = todo.pop()
            if fn in seen:
                continue
            seen.add(fn)
            for call, scope, _order, _callee in self.ctx.semantic.sites.get(fn, ()):
                if call in self._calls_in_loops():
                    return True
                caller = self.ctx.index.enclosing_function(scope)
                if caller is not None and len(seen) < 4:
                    todo.append(caller)
        return False

    def _calls_in_loops(self) -> set[cst.Call]:
        """Every call inside a loop body or comprehension (found once per file, when needed)."""
        if self._looped is None:
            looped: set[cst.Call] = set()
            stack: list[tuple[cst.CSTNode, bool]] = [(self.ctx.module, False)]
            while stack:
                node, inside = stack.pop()
                if isinstance(node, cst.Call) and inside:
                    looped.add(node)
                if isinstance(node, (cst.FunctionDef, cst.Lambda, cst.ClassDef)):
                    stack.extend((c, False) for c in children(node))
                elif isinstance(node, cst.For) and _configurations(node.iter):
                    # `for fused in (False, True):` runs the body once per configuration: a
                    # compile each is what a sweep of configurations costs, not a repetition
                    stack.extend((c, inside) for c in children(node))
                elif isinstance(node, (cst.For, cst.While)):
                    stack.extend((c, inside or c is node.body) for c in children(node))
                elif isinstance(node, _COMPS):
                    stack.extend((c, True) for c in children(node))
                else:
                    stack.extend((c, inside) for c in children(node))
            self._looped = looped
        return self._looped

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
                return cls is not None and self.ctx.semantic.method(cls, fn.attr.value) is not None
            # `opt.update` may be a plain function in a NamedTuple (optax): the same object each
            # time. When `opt` itself is made in the loop from what the iteration varies (a
            # configuration), each model compiles once by design; made from nothing that varies
            # (`m = Model()`), it is the same program compiled again and again.
            return self._made_unvarying(fn.value.value, loop)
        if isinstance(fn, cst.Name):
            return _bound_fresh_in(loop.body, fn.value, self.ctx.qualname)  # type: ignore[attr-defined]
        return False

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        for dec in node.decorators:
            d = dec.decorator
            q = self.ctx.qualname(d.func if isinstance(d, cst.Call) else d)
            if isinstance(d, cst.Call) and q in PARTIALS and d.args:
                q = self.ctx.qualname(d.args[0].value)
            loop = _in_loop(self.ctx.ancestors)
            if q in JIT_LIKE and loop is not None and not self._specialised(node, loop):
                self.report(
                    dec,
                    f"`@{q}` on `{node.name.value}` defined inside a loop: each iteration builds a "
                    f"new jitted function, which traces and compiles again",
                )

    # ------------------------------------------------------- static arguments
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
            cls = self._unhashable_dataclass(expr.func, stmt)
            if cls is not None:
                return f"a `{cls}`, a dataclass with `eq=True` and not frozen, so its `__hash__` is None"
            return None
        if isinstance(expr, cst.Name):
            b = self.ctx.lookup(expr.value, stmt)
            if b is not None and b.how == ASSIGN and b.path is None and b.value is not None \
                    and not isinstance(b.value, cst.Name):
                return self._unhashable(b.value, stmt)
        return None

    def _unhashable_dataclass(self, func: cst.BaseExpression, stmt: cst.CSTNode,
                              pytree_ok: bool = False) -> str | None:
        """The name of a class of this file, called by `func`, that `@dataclass` made
        unhashable: `eq=True` (the default) without `frozen=True`/`unsafe_hash=True` sets
        `__hash__` to None, unless the class defines `__hash__` itself. With `pytree_ok`, a
        class registered as a pytree (`filter_jit` flattens it) is not one."""
        if not isinstance(func, cst.Name):
            return None
        b = self.ctx.lookup(func.value, stmt)
        if b is None or b.how != CLASS:
            return None
        cls: cst.ClassDef = b.node  # type: ignore[assignment]
        made = False
        for dec in cls.decorators:
            d = dec.decorator
            q = self.ctx.qualname(d.func if isinstance(d, cst.Call) else d)
            if q != "dataclasses.dataclass":
                return None  # another decorator may register a pytree or add a hash
            if isinstance(d, cst.Call):
                for a in d.args:
                    if a.keyword is None or a.keyword.value not in ("frozen", "unsafe_hash", "eq"):
                        continue
                    literal = a.value.value if isinstance(a.value, cst.Name) else None
                    # `frozen=True`/`unsafe_hash=True`: hashable; `eq=False`: hashed by identity
                    if literal != ("True" if a.keyword.value == "eq" else "False"):
                        return None
            made = True
        if not made or self.ctx.semantic.method(cls, "__hash__") is not None:
            return None
        if self.ctx.semantic.class_family(cls) is not None:
            return None  # a module class: the framework decides
        if pytree_ok:
            for call, _scope, _order in self.ctx.semantic.calls:
                q = self.ctx.qualname(call.func) or ""
                if "register" in q and any(isinstance(a.value, cst.Name) and a.value.value == cls.name.value
                                           for a in call.args):
                    return None
        return cls.name.value

    def _static_args(self, node: cst.Call) -> None:
        for callee in self.ctx.semantic.callees(node):
            if callee.transform is None or callee.transform.qualname not in JIT_LIKE:
                continue
            if callee.transform.qualname == "equinox.filter_jit":
                self._filtered_args(node)
                return
            nums, strs = static_positions(self.ctx, callee)
            if not nums and not strs:
                continue
            stmt = self.ctx.statement() or node
            if callee.decorated and callee.info.is_method and not callee.info.is_staticmethod:
                nums = {n - 1 for n in nums if n >= 1}  # the call passes `self` implicitly
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
                        f"`{self.ctx.code(node.func)}`: static arguments must be hashable, this raises "
                        f"`ValueError: Non-hashable static arguments are not supported`",
                        fix_title="Pass a tuple (or a hashable, frozen object), or make the argument non-static",
                    )
            return

    def _filtered_args(self, node: cst.Call) -> None:
        """`eqx.filter_jit` hashes every argument leaf that is not an array: an instance of an
        unhashable dataclass that is not a pytree raises as a static argument does."""
        stmt = self.ctx.statement() or node
        for arg in node.args:
            if arg.star:
                return
            value = arg.value
            if isinstance(value, cst.Name):
                b = self.ctx.lookup(value.value, stmt)
                if b is None or b.how != ASSIGN or b.path is not None or not isinstance(b.value, cst.Call):
                    continue
                value = b.value
            if not isinstance(value, cst.Call):
                continue
            cls = self._unhashable_dataclass(value.func, stmt, pytree_ok=True)
            if cls is not None:
                self.report(
                    arg.value,
                    f"`{self.ctx.code(arg.value)}` (a `{cls}`, a dataclass with `eq=True` and not frozen, "
                    f"so its `__hash__` is None) is passed to `{self.ctx.code(node.func)}`: "
                    "`eqx.filter_jit` hashes non-array arguments, this raises "
                    "`ValueError: Non-hashable static arguments are not supported`",
                    fix_title="Make the dataclass `frozen=True`, or register it as a pytree",
                )
                return


THRESHOLD = 100
_ABSTRACT = frozenset({"jax.eval_shape", "flax.nnx.eval_shape", "equinox.filter_eval_shape", "jax.make_jaxpr"})
_LAX_LOOPS = frozenset({"jax.lax.fori_loop", "jax.lax.scan", "jax.lax.while_loop", "jax.lax.map"})


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
        t = info.transform
        if t is not None and getattr(t, "qualname", None) in _ABSTRACT:
            return  # `make_jaxpr`/`eval_shape`: nothing is compiled; the unrolled program is what is asked for
        if self._rolled_alternative(node):
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

    def _rolled_alternative(self, node: cst.For) -> bool:
        """The loop is one branch of an `if` whose other branch runs a `lax` loop: unrolling is
        a deliberate option (`unroll=True` in a benchmark), chosen next to the rolled form."""
        anc = self.ctx.ancestors
        for i in range(len(anc) - 1, -1, -1):
            a = anc[i]
            if isinstance(a, (cst.FunctionDef, cst.Lambda, cst.ClassDef)):
                return False
            if isinstance(a, cst.If):
                child = anc[i + 1] if i + 1 < len(anc) else node
                other = a.orelse if child is a.body else a.body
                if other is not None and any(
                        isinstance(n, cst.Call) and self.ctx.qualname(n.func) in _LAX_LOOPS for n in iter_tree(other)):
                    return True
        return False

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
            b = self.ctx.lookup(expr.value)
            if b is None or len(self.ctx.index.bindings(b.scope, expr.value)) != 1:
                return None
            if b.how == ASSIGN and b.path is None and isinstance(b.value, cst.Integer):
                return int(b.value.value.replace("_", ""), 0)
            if b.how == PARAM and isinstance(b.node, cst.Param) and not holds_tracers(self.ctx.semantic.value(expr)):
                known = [self._passed(b.scope, expr.value)]
                if isinstance(b.node.default, cst.Integer):
                    known.append(int(b.node.default.value.replace("_", ""), 0))
                values = [v for v in known if v is not None]
                return max(values) if values else None
        return None

    def _passed(self, fn_node, name: str) -> int | None:
        """The largest literal int the file's calls pass for a static parameter (`n` in
        `static_argnames`): `sample(key, 1000)`, or a module constant `STEPS = 1000`. A
        parameter that is only ever given small numbers, or names the file cannot follow,
        stays unknown."""
        semantic = self.ctx.semantic
        info = semantic.function(fn_node)
        if info is None:
            return None
        best = None
        for call, scope, order, callee in semantic.sites.get(info, ()):
            e = bind_args(call, info.positional, callee).get(name)
            v = self._literal(e, scope, order) if e is not None else None
            if v is not None and (best is None or v > best):
                best = v
        return best

    def _literal(self, e: cst.BaseExpression, scope, order: int, depth: int = 0) -> int | None:
        if isinstance(e, cst.Integer):
            return int(e.value.replace("_", ""), 0)
        if isinstance(e, cst.BinaryOperation) and isinstance(e.operator, (cst.Multiply, cst.Add)):
            left, right = self._literal(e.left, scope, order, depth), self._literal(e.right, scope, order, depth)
            if left is None or right is None:
                return None
            return left * right if isinstance(e.operator, cst.Multiply) else left + right
        if isinstance(e, cst.Name) and depth < 3:
            b = self.ctx.index.lookup(e.value, scope, order)
            if b is None or len(self.ctx.index.bindings(b.scope, e.value)) != 1:
                return None
            if b.how == ASSIGN and b.path is None and b.value is not None:
                return self._literal(b.value, b.scope, b.order, depth + 1)
        return None


def _configurations(it: cst.BaseExpression) -> bool:
    """A display of literal constants (`(False, True)`, `["sgd", "adam"]`, `[(1, 2), (2, 4)]`):
    a loop over it runs once per configuration."""
    def literal(e: cst.BaseExpression) -> bool:
        if isinstance(e, (cst.Integer, cst.Float, cst.SimpleString, cst.ConcatenatedString)):
            return True
        if isinstance(e, cst.Name):
            return e.value in ("True", "False", "None")
        if isinstance(e, cst.UnaryOperation):
            return literal(e.expression)
        if isinstance(e, (cst.Tuple, cst.List)):
            return all(not isinstance(el, cst.StarredElement) and literal(el.value) for el in e.elements)
        return False

    return isinstance(it, (cst.Tuple, cst.List, cst.Set)) and bool(it.elements) and literal(it)
