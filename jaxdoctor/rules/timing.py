"""JD123: timing a JAX computation without waiting for it (`block_until_ready`)."""

from __future__ import annotations

import re


import libcst as cst

from jaxdoctor.findings import Severity
from jaxdoctor.static.resolve import bind_args
from jaxdoctor.static.rule import LintRule
from jaxdoctor.static.transforms import PARTIALS, TRANSFORMS
from jaxdoctor.static.walker import children, iter_tree

TIMERS = frozenset({"time.time", "time.perf_counter", "time.monotonic", "time.time_ns",
                    "time.perf_counter_ns", "time.monotonic_ns", "timeit.default_timer"})
#: calls that wait for device results (or copy them to the host, which waits)
_SYNC_CALLS = frozenset({"jax.block_until_ready", "jax.device_get", "jax.effects_barrier",
                         "builtins.float", "builtins.int", "builtins.bool", "builtins.print",
                         "numpy.asarray", "numpy.array", "numpy.testing.assert_allclose",
                         "flax.training.common_utils.get_metrics"})
#: calls that read their arguments on the host: a JAX result passed to them waits for it
_HOST_READS = ("numpy.", "logging.", "builtins.str", "builtins.repr", "builtins.format")
_SYNC_METHODS = frozenset({"block_until_ready", "item", "tolist", "__array__", "copy_to_host_async"})
#: jax.* calls that do not launch device work
_HOST_ONLY = ("jax.jit", "jax.devices", "jax.device_count", "jax.local_devices", "jax.config",
              "jax.random.PRNGKey", "jax.random.key", "jax.tree", "jax.tree_util", "jax.ShapeDtypeStruct",
              "jax.eval_shape", "jax.make_jaxpr", "jax.process_index", "jax.default_backend",
              "jax.sharding", "jax.process_count", "jax.local_device_count", "jax.named_call",
              "jax.tree_map", "jax.tree_leaves", "jax.tree_structure", "jax.ShapeDtypeStruct")

#: a callable parameter named like a JAX step (`train_step`, `apply_fn`, `forward`, `model`):
#: in a file that imports JAX, calling it runs device work
_STEP_LIKE = re.compile(r"(?i)(step|apply|forward|model|predict|infer|update|train|loss|net|policy)")
#: transforms whose calls wait for their results (`eqx.filter_jit` blocks before returning, since
#: equinox 0.11.8): timing them measures the computation
_BLOCKING = frozenset({"equinox.filter_jit", "equinox.filter_pmap"})
#: `jax.*` modules whose calls launch device work
_DEVICE_WORK = ("jax.numpy.", "jax.lax.", "jax.nn.", "jax.scipy.", "jax.image.",
                "jax.ops.", "jax.device_put", "jax.vmap", "jax.pmap", "jax.grad", "jax.value_and_grad",
                "jax.jacfwd", "jax.jacrev", "jax.hessian", "jax.vjp", "jax.jvp", "jax.linearize",
                "jax.checkpoint", "jax.remat", "jax.lax.", "jax.tree.map", "jax.tree_util.tree_map")


def _calls_run(stmt: cst.CSTNode) -> list[cst.Call]:
    """Calls that `stmt` makes when it runs: not those in the body of a function or class it
    defines (`def embed(x): return predict_fn(x)` runs nothing yet). A lambda's body counts: it
    is usually handed to a call that runs it (`jax.tree.map(lambda x: x.block_until_ready(), m)`)."""
    out: list[cst.Call] = []
    stack = [stmt]
    while stack:
        node = stack.pop()
        if isinstance(node, cst.Call):
            out.append(node)
        if isinstance(node, (cst.FunctionDef, cst.ClassDef)):
            stack.extend(d.decorator for d in node.decorators)
            continue
        stack.extend(reversed(children(node)))
    return out


def _own_nodes(stmt: cst.CSTNode):
    """The nodes of a statement, not those of a function or class it defines (a timer stopped
    inside a callback does not stop the timer around it)."""
    stack = [stmt]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, (cst.FunctionDef, cst.ClassDef, cst.Lambda)) and node is not stmt:
            continue
        stack.extend(children(node))


def _empty_body(fn: cst.FunctionDef) -> bool:
    """`def step(model, opt): pass` or `return graphdef, state`: a compiled function that
    computes nothing (a benchmark of dispatch overhead) leaves nothing on the device to wait for."""
    body = fn.body.body if isinstance(fn.body, cst.IndentedBlock) else [fn.body]
    for stmt in body:
        if not isinstance(stmt, cst.SimpleStatementLine):
            return False
        for small in stmt.body:
            if isinstance(small, cst.Pass) or (isinstance(small, cst.Expr) and isinstance(
                    small.value, (cst.SimpleString, cst.ConcatenatedString, cst.Ellipsis))):
                continue
            if isinstance(small, cst.Return) and (small.value is None or _only_params(small.value, fn)):
                continue
            return False
    return True


def _only_params(value: cst.BaseExpression, fn: cst.FunctionDef) -> bool:
    """`return graphdef, state`: the function hands its arguments back (JAX forwards them)."""
    params = _params(fn)
    parts = [el.value for el in value.elements] if isinstance(value, cst.Tuple) else [value]
    return all(isinstance(p, cst.Name) and p.value in params for p in parts)


def _params(fn: cst.FunctionDef | None) -> frozenset[str]:
    if fn is None:
        return frozenset()
    p = fn.params
    return frozenset(x.name.value for x in (*p.posonly_params, *p.params, *p.kwonly_params)
                     if x.name.value not in ("self", "cls"))


class UnblockedTiming(LintRule):
    code = "JD123"
    name = "unblocked-timing"
    severity = Severity.WARNING
    summary = "Timing a JAX computation without `block_until_ready()`: measures only the dispatch"
    fix_title = "Call `.block_until_ready()` (or `jax.block_until_ready(out)`) on the result before stopping the timer"

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        # each block of statements, with the parameters of the function it is in
        self.blocks: list[tuple[list[cst.BaseStatement], frozenset[str]]] = []
        self.jitted: set[str] = set()

    def visit_Module(self, node: cst.Module) -> None:
        self.blocks.append((list(node.body), frozenset()))

    def visit_IndentedBlock(self, node: cst.IndentedBlock) -> None:
        fn = next((a for a in reversed(self.ctx.ancestors) if isinstance(a, (cst.FunctionDef, cst.Lambda))), None)
        params = _params(fn) if isinstance(fn, cst.FunctionDef) else frozenset()
        self.blocks.append((list(node.body), params))

    def visit_Assign(self, node: cst.Assign) -> None:
        # f = jax.jit(g) / step = nnx.jit(step): a name that runs compiled code
        spec = self.ctx.semantic.transform_of(node.value) if isinstance(node.value, cst.Call) else None
        if spec is not None and spec.qualname not in _BLOCKING:
            for t in node.targets:
                if isinstance(t.target, cst.Name):
                    self.jitted.add(t.target.value)

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        # @jax.jit / @partial(jax.jit, ...) / @eqx.filter_jit: calling it runs device work
        for dec in node.decorators:
            d = dec.decorator
            q = self.ctx.qualname(d.func if isinstance(d, cst.Call) else d)
            if q in PARTIALS and isinstance(d, cst.Call) and d.args:
                q = self.ctx.qualname(d.args[0].value)
            if q in TRANSFORMS and not TRANSFORMS[q].control_flow and q not in _BLOCKING \
                    and not _empty_body(node):
                self.jitted.add(node.name.value)

    def leave_Module(self, node: cst.Module) -> None:
        for body, params in self.blocks:
            self._block(body, params)

    # ---------------------------------------------------------------------------
    def _timer_start(self, stmt: cst.BaseStatement) -> str | None:
        if not isinstance(stmt, cst.SimpleStatementLine):
            return None
        for small in stmt.body:
            if (isinstance(small, cst.Assign) and len(small.targets) == 1
                    and isinstance(small.targets[0].target, cst.Name)
                    and isinstance(small.value, cst.Call)
                    and self.ctx.qualname(small.value.func) in TIMERS):
                return small.targets[0].target.value
        return None

    def _timer_stop(self, stmt: cst.BaseStatement, start: str, ends: frozenset[str] = frozenset()
                    ) -> cst.BinaryOperation | None:
        """`timer() - start` (or `end - start`, `end` a timer read since) anywhere in `stmt`:
        assigned, appended, printed, returned."""
        for node in _own_nodes(stmt):
            if (isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.Subtract)
                    and isinstance(node.right, cst.Name) and node.right.value == start
                    and (isinstance(node.left, cst.Call) and self.ctx.qualname(node.left.func) in TIMERS
                         or isinstance(node.left, cst.Name) and node.left.value in ends)):
                return node
        return None

    def _runs_jax(self, call: cst.Call, params: frozenset[str] = frozenset()) -> bool:
        func = call.func
        if isinstance(func, cst.Name) and func.value in self.jitted:
            return True
        if isinstance(func, cst.Name) and func.value in params and self._handed_jitted(call, func.value):
            return True  # `def bench(f, x): ... f(x)` where the callers pass a jitted function
        if params and self.ctx.names.uses_jax:
            # `train_step(state, batch)`, `state.apply_fn(...)`: a step handed in by the caller
            root = func
            while isinstance(root, cst.Attribute):
                root = root.value
            last = func.attr.value if isinstance(func, cst.Attribute) else (
                func.value if isinstance(func, cst.Name) else None)
            if (isinstance(root, cst.Name) and root.value in params and last is not None
                    and _STEP_LIKE.search(last) and self.ctx.qualname(func) is None):
                return True
        if any(c.transform is not None and c.transform.traces and not c.transform.control_flow
               and c.transform.qualname not in _BLOCKING
               and not (isinstance(c.info.node, cst.FunctionDef) and _empty_body(c.info.node))
               for c in self.ctx.semantic.callees(call)):
            return True  # a jitted function of this file, however it is reached
        if isinstance(func, cst.Call) and self.ctx.semantic.transform_of(func) is not None \
                and self.ctx.semantic.transform_of(func).qualname not in _BLOCKING:
            return True  # jax.jit(f)(x)
        q = self.ctx.qualname(func)
        if q is None or not q.startswith(_DEVICE_WORK):
            return False
        return not any(q == h or q.startswith(h + ".") for h in _HOST_ONLY)

    def _handed_jitted(self, call: cst.Call, param: str) -> bool:
        """Every call of the function around `call` passes a jitted function for `param`."""
        fn = self.ctx.function()
        if fn is None:
            return False
        sites = self.ctx.semantic.sites.get(fn, ())
        if not sites:
            return False
        for site, scope, order, callee in sites:
            arg = bind_args(site, fn.positional, callee).get(param)
            if arg is None:
                return False
            if isinstance(arg, cst.Call) and self.ctx.semantic.transform_of(arg) is not None:
                continue
            found = self.ctx.semantic.resolver.callees(arg, scope, order)
            if not found or not all(c.transform is not None and c.transform.traces for c in found):
                return False
        return True

    def _syncs(self, call: cst.Call) -> bool:
        func = call.func
        if isinstance(func, cst.Attribute) and func.attr.value in _SYNC_METHODS:
            return True
        return self.ctx.qualname(func) in _SYNC_CALLS

    def _results(self, stmt: cst.BaseStatement, params: frozenset[str]) -> set[str]:
        """Names assigned from JAX work in `stmt` (`out = step(x)`, `loss, s = train(s)`)."""
        out: set[str] = set()
        for small in iter_tree(stmt):
            if isinstance(small, cst.Assign) and any(
                    isinstance(n, cst.Call) and self._runs_jax(n, params) for n in iter_tree(small.value)):
                for t in small.targets:
                    out.update(n.value for n in iter_tree(t.target) if isinstance(n, cst.Name))
        return out

    @staticmethod
    def _mentions(node: cst.CSTNode, results: set[str]) -> bool:
        return bool(results) and any(isinstance(n, cst.Name) and n.value in results for n in iter_tree(node))

    def _reads(self, call: cst.Call, results: set[str]) -> bool:
        """`np.argmax(logits)`, `logging.info("%s", loss)`: the host reads a JAX result."""
        q = self.ctx.qualname(call.func)
        return q is not None and q.startswith(_HOST_READS) and any(
            self._mentions(a.value, results) for a in call.args)

    def _waits(self, stmt: cst.BaseStatement, results: set[str]) -> bool:
        """A statement that waits for a JAX result: `assert size >= n`, `if loss < best:`,
        a host read of it, or an f-string that formats it."""
        if not results:
            return False
        for n in iter_tree(stmt):
            if isinstance(n, (cst.If, cst.While, cst.Assert)) and self._mentions(n.test, results):
                return True
            if isinstance(n, cst.FormattedStringExpression) and self._mentions(n.expression, results):
                return True
            if isinstance(n, cst.Call) and self._reads(n, results):
                return True
        return False

    def _formatted_before(self, stmt: cst.CSTNode, stop: cst.CSTNode, results: set[str]) -> bool:
        """In an f-string, a JAX result formatted before the part that stops the timer."""
        for node in iter_tree(stmt):
            if not isinstance(node, cst.FormattedString):
                continue
            for part in node.parts:
                if not isinstance(part, cst.FormattedStringExpression):
                    continue
                if any(n is stop for n in iter_tree(part)):
                    break
                if self._mentions(part.expression, results):
                    return True
        return False

    def _block(self, body: list[cst.BaseStatement], params: frozenset[str]) -> None:
        for i, stmt in enumerate(body):
            start = self._timer_start(stmt)
            if start is None:
                continue
            ran = synced = False
            ends: frozenset[str] = frozenset()  # `end = timer()` read after the work
            results: set[str] = set()  # names bound to results of the JAX work
            for later in body[i + 1:]:
                again = self._timer_start(later)
                if again == start:
                    break  # restarted
                if again is not None and not ends:
                    ends = frozenset({again})
                    stopped = (ran, synced)
                stop = self._timer_stop(later, start, ends)
                calls = _calls_run(later)
                if stop is not None and isinstance(stop.left, cst.Name):
                    ran, synced = stopped  # the time was taken at `end = timer()`
                    calls = []
                if stop is not None and isinstance(stop.left, cst.Call) and self._formatted_before(later, stop, results):
                    synced = True  # f"{loss} ({time() - t0:.2f}s)": formatting `loss` waited
                if stop is not None:
                    inside = set(map(id, iter_tree(stop)))
                    before = [c for c in calls
                              if id(c) not in inside and not any(n is stop for n in iter_tree(c))]
                    ran = ran or any(self._runs_jax(c, params) for c in before)
                    synced = synced or any(self._syncs(c) for c in before) or any(
                        self._reads(c, results) for c in before)
                    if ran and not synced:
                        self.report(
                            stop,
                            f"`{self.ctx.code(stop)}` times JAX work that was only dispatched: "
                            "JAX runs asynchronously, so without `block_until_ready()` this "
                            "measures the launch, not the computation",
                        )
                    break
                ran = ran or any(self._runs_jax(c, params) for c in calls)
                results |= self._results(later, params)
                synced = synced or any(self._syncs(c) for c in calls) or self._waits(later, results)
