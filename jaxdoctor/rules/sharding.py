"""Multi-device mistakes: the sharding doctor's trace rules (JD530–JD537) and the static rules
that see the same mistakes in the source (JD140, JD141).

The trace findings come from `jaxdoctor.trace.sharding` (one module per rule), run on every
jitted function compiled for more than one device; this module holds their identity only.
The static rules are small `LintRule`s over the file's own meshes (JD140) and training loops
(JD141: the static spelling of JD537, which on CPU only the doctor's own fetch hook can see).
Never imports jax.
"""

from __future__ import annotations

from jaxdoctor.findings import Severity
from jaxdoctor.rule import TraceRule


class CollectiveInLoop(TraceRule):
    code = "JD530"
    name = "collective-in-loop"
    summary = (
        "An all-gather, all-to-all, collective-permute or reduce-scatter of activations runs in every "
        "iteration of a `scan`/`fori_loop`/`while_loop` (not the weight gathers of FSDP, not gradient "
        "reductions)"
    )
    severity = Severity.WARNING
    fix_title = (
        "Give the loop's activations the sharding their producers already have (or constrain them once "
        "outside the loop), so XLA has nothing to move on each iteration"
    )


class InvoluntaryResharding(TraceRule):
    code = "JD531"
    name = "involuntary-resharding"
    summary = (
        "XLA's SPMD partitioner cannot convert a tensor between two shardings and replicates all of it "
        "first (its \"Involuntary full rematerialization\" warning), shown at the user's line"
    )
    severity = Severity.WARNING
    fix_title = (
        "Make the two shardings agree (same mesh axes on the same dimensions), or reshard in steps "
        "XLA can do locally (one axis at a time)"
    )


class ReplicatedGiant(TraceRule):
    code = "JD532"
    name = "replicated-giant"
    summary = (
        "A large parameter or optimizer-state array is fully replicated on every device while the mesh "
        "has an axis that could split it"
    )
    severity = Severity.WARNING
    fix_title = "Shard it over a mesh axis that divides one of its dimensions (`NamedSharding(mesh, P(...))`)"


class DeviceMemoryExceeded(TraceRule):
    code = "JD533"
    name = "device-memory-exceeded"
    summary = (
        "A jitted function needs more memory per device (arguments + outputs + temporaries, from XLA's "
        "`memory_analysis()`) than the target device has (`--device-memory`)"
    )
    severity = Severity.ERROR
    fix_title = (
        "Shard the largest values over more devices, donate inputs that outputs replace, or "
        "rematerialize activations (`jax.checkpoint`)"
    )


class UnusableDonation(TraceRule):
    code = "JD534"
    name = "unusable-donation"
    summary = (
        "A donated argument has no output that can reuse its buffer (shape, dtype or sharding differ), "
        "so the donation frees nothing; with sharded inputs JAX does not warn"
    )
    severity = Severity.WARNING
    fix_title = (
        "Donate only arguments the function replaces with an output of the same shape, dtype and "
        "sharding (`donate_argnums`/`donate_argnames`)"
    )


class UnshardedInput(TraceRule):
    code = "JD535"
    name = "unsharded-input"
    summary = (
        "A batch-like input is replicated on every device (or copied to each from the host) while the "
        "parameters are sharded: every device gets the whole batch on each step"
    )
    severity = Severity.WARNING
    fix_title = "Shard the batch over the data axis: `jax.device_put(batch, NamedSharding(mesh, P('data')))`"


class MeshMistake(TraceRule):
    code = "JD536"
    name = "mesh-mistake"
    summary = (
        "A PartitionSpec that does not fit its mesh: a dimension the mesh axes do not divide, an axis "
        "name the mesh does not have, an axis used twice (shown at the user's line, with the axis)"
    )
    severity = Severity.ERROR
    fix_title = "Use an axis the mesh has, once per spec, on a dimension its size divides"


class HostTransferInStep(TraceRule):
    code = "JD537"
    name = "host-transfer-in-step"
    summary = (
        "The training loop copies a device value to the host on every step (`float(loss)`, "
        "`np.asarray(x)`, `.item()`): the host waits for each step before it can dispatch the next"
    )
    severity = Severity.WARNING
    fix_title = (
        "Keep the value on the device and read it every N steps (or accumulate metrics on the device "
        "and fetch them once)"
    )


# ----------------------------------------------------------------------------- static rules

import libcst as cst  # noqa: E402

from jaxdoctor.static.index import PARAM  # noqa: E402
from jaxdoctor.static.resolve import bind_args  # noqa: E402
from jaxdoctor.static.rule import LintRule  # noqa: E402
from jaxdoctor.static.walker import iter_tree  # noqa: E402

_PARTITION_SPECS = frozenset({"jax.sharding.PartitionSpec", "jax.P", "jax.experimental.pjit.PartitionSpec",
                              "jax.experimental.PartitionSpec", "jax.interpreters.pxla.PartitionSpec"})
#: mesh constructors → (position, keyword) of their axis names
_MESHES = {"jax.sharding.Mesh": (1, "axis_names"), "jax.make_mesh": (1, "axis_names"),
           "jax.sharding.AbstractMesh": (1, "axis_names"), "jax.experimental.maps.Mesh": (1, "axis_names")}
#: calls that take a PartitionSpec (or a tree of them) and apply it to a mesh
_SHARDING_CONSUMERS = frozenset({
    "jax.sharding.NamedSharding", "jax.NamedSharding", "jax.lax.with_sharding_constraint",
    "jax.sharding.reshard", "jax.device_put", "jax.shard_map", "jax.experimental.shard_map.shard_map",
    "jax.jit", "jax.experimental.pjit.pjit", "flax.nnx.shard_map", "flax.nnx.with_sharding_constraint",
    "jax.ShapeDtypeStruct", "functools.partial",
})
#: calls that run a jitted program (their results live on the device)
_JITS = frozenset({"jax.jit", "jax.pjit", "jax.experimental.pjit.pjit", "flax.nnx.jit", "equinox.filter_jit",
                   "jax.pmap", "flax.nnx.pmap", "equinox.filter_pmap"})
#: calls that copy a device value to the host, and methods that do
_FETCHES = frozenset({"builtins.float", "builtins.int", "builtins.bool", "builtins.complex", "numpy.asarray",
                      "numpy.array", "jax.device_get", "builtins.print"})
_FETCH_METHODS = frozenset({"item", "tolist", "__array__"})


def _strings(expr: cst.BaseExpression) -> list[cst.SimpleString] | None:
    """The string literals of an axis-names expression (`('data', 'model')`, `'batch'`); None
    when it is not made of literals only."""
    if isinstance(expr, cst.SimpleString):
        return [expr]
    if isinstance(expr, (cst.Tuple, cst.List)):
        out = []
        for el in expr.elements:
            if isinstance(el, cst.StarredElement) or not isinstance(el.value, cst.SimpleString):
                return None
            out.append(el.value)
        return out
    return None


def _arg(call: cst.Call, position: int, keyword: str) -> cst.BaseExpression | None:
    for a in call.args:
        if a.keyword is not None and a.keyword.value == keyword:
            return a.value
    positional = [a for a in call.args if a.keyword is None and not a.star]
    return positional[position].value if position < len(positional) else None


class UnknownMeshAxis(LintRule):
    code = "JD140"
    name = "unknown-mesh-axis"
    severity = Severity.ERROR
    summary = "A `PartitionSpec` applied to a mesh names an axis that no mesh built in the same file has"
    fix_title = "Use one of the mesh's axis names (or add the axis to the mesh)"

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        self.axes: set[str] | None = None  # None: no mesh with literal axis names in this file

    def _mesh_axes(self) -> set[str] | None:
        axes: set[str] = set()
        found = False
        for node in iter_tree(self.ctx.module):
            if not isinstance(node, cst.Call):
                continue
            spec = _MESHES.get(self.ctx.qualname(node.func) or "")
            if spec is None:
                continue
            names = _arg(node, *spec)
            literals = _strings(names) if names is not None else None
            if literals is None:
                return None  # a mesh whose names this file computes: say nothing
            found = True
            axes.update(s.evaluated_value for s in literals if isinstance(s.evaluated_value, str))
        return axes if found else None

    def visit_Module(self, node: cst.Module) -> None:
        # a text gate before the extra walk: only files that build a mesh are checked
        self.axes = self._mesh_axes() if ("Mesh" in self.ctx.source or "make_mesh" in self.ctx.source) else None

    def _used_on_a_mesh(self) -> bool:
        """Is the spec handed to something that shards with it (`NamedSharding`, a constraint,
        `shard_map`, jit's shardings, `device_put`)? A bare spec may hold logical axis names
        (flax's `get_partition_spec` metadata) that are mapped onto the mesh later."""
        for anc in reversed(self.ctx.ancestors):
            if isinstance(anc, (cst.Arg, cst.Element, cst.Tuple, cst.List, cst.Dict, cst.DictElement,
                                cst.StarredElement)):
                continue
            return isinstance(anc, cst.Call) and self.ctx.qualname(anc.func) in _SHARDING_CONSUMERS
        return False

    def visit_Call(self, node: cst.Call) -> None:
        if not self.axes or self.ctx.qualname(node.func) not in _PARTITION_SPECS or not self._used_on_a_mesh():
            return
        for a in node.args:
            if a.keyword is not None or a.star:
                continue
            literals = _strings(a.value) if not isinstance(a.value, cst.Name) else None
            for s in literals or ():
                name = s.evaluated_value
                if isinstance(name, str) and name not in self.axes:
                    have = ", ".join(f"`{x}`" for x in sorted(self.axes))
                    self.report(s, f"`{self.ctx.code(node)}` names the mesh axis `{name}`, but the meshes "
                                   f"built in this file have only {have}: JAX raises \"Resource axis: {name} "
                                   f"... is not found in mesh\" when the spec is used")


#: a literal `range` with fewer passes than this is a demo or a test, not a training loop
_FEW = 20


class HostSyncInLoop(LintRule):
    code = "JD141"
    name = "host-sync-in-loop"
    severity = Severity.WARNING
    summary = (
        "`float(loss)`, `loss.item()`, `np.asarray(x)`, `jax.device_get(x)` or `print(x)` of a jitted "
        "step's result on every iteration of the training loop"
    )
    fix_title = (
        "Keep the value on the device and fetch it every N steps (under an `if`), or collect the "
        "values and fetch them once after the loop"
    )

    def visit_For(self, node: cst.For) -> None:
        self._loop(node)

    def visit_While(self, node: cst.While) -> None:
        self._loop(node)

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        self.on = "jit" in ctx.source or "pmap" in ctx.source  # a text gate: no jitted call, no finding

    def _loop(self, loop: cst.For | cst.While) -> None:
        if not self.on or self.ctx.traced_function() is not None:
            return
        body = list(loop.body.body) if isinstance(loop.body, cst.IndentedBlock) else []
        if not self._step_loop(loop, body):
            return
        results = self._jitted_results(body)
        if not results:
            return
        live = dict(results)
        for stmt in self._every_iteration(body):
            if not self._checks(stmt):  # a test asserting each step's value needs it on the host
                for call in self._calls(stmt):
                    value = self._fetched(call, live)
                    if value is not None:  # one per statement: `print(a.item(), b.item())` is one read
                        self.report(call, f"`{self.ctx.code(call)}` copies `{value[0]}`, a result of the "
                                          f"jitted `{value[1]}`, to the host on every iteration of the loop: "
                                          "the host waits for each step before it can dispatch the next")
                        break
            # `loss = loss.item()`: from here on the name holds a host value, not the step's result
            for small in stmt.body:
                if isinstance(small, (cst.Assign, cst.AnnAssign)) and small.value is not None:
                    self._rebind(small, live)

    def _rebind(self, small: cst.Assign | cst.AnnAssign, live: dict[str, str]) -> None:
        """Names a statement binds: a jitted call's result is live; a value fetched to the host
        (`loss.item()`, `float(loss)`) or a literal is not; anything else keeps what it was (a
        `loss.mean()` of the step's result is still on the device). Only plain names and tuples
        of them: `metrics["lr"] = 0.1` rebinds nothing."""
        value = small.value
        fn = self._jitted(value.func) if isinstance(value, cst.Call) else None
        host = fn is None and (
            isinstance(value, (cst.Integer, cst.Float, cst.SimpleString, cst.ConcatenatedString, cst.FormattedString))
            or (isinstance(value, cst.Name) and value.value in ("True", "False", "None"))
            or (isinstance(value, cst.Call) and self._fetched(value, live) is not None))
        if fn is None and not host:
            return
        targets = [t.target for t in small.targets] if isinstance(small, cst.Assign) else [small.target]
        for target in targets:
            names = [target] if isinstance(target, cst.Name) else [
                el.value for el in target.elements if isinstance(el.value, cst.Name)
            ] if isinstance(target, (cst.Tuple, cst.List)) else []
            for n in names:
                if fn is not None:
                    live[n.value] = fn
                else:
                    live.pop(n.value, None)

    def _step_loop(self, loop: cst.For | cst.While, body: list) -> bool:
        """Is `loop` one that runs training or evaluation steps, one per iteration? Not: a loop
        under an `if` of an enclosing loop (evaluation every N steps), a loop whose body runs
        another loop (epochs: one read per epoch is logging), a loop over epochs by name, over a
        literal collection, a dict's items, or a literal `range` of fewer than `_FEW` passes."""
        seen_if = False
        for anc in reversed(self.ctx.ancestors):
            if isinstance(anc, (cst.If, cst.Else)):
                seen_if = True
            elif isinstance(anc, (cst.For, cst.While)):
                if seen_if:
                    return False
                break
            elif isinstance(anc, (cst.FunctionDef, cst.ClassDef, cst.Lambda)):
                break
        for stmt in body:
            if any(isinstance(n, (cst.For, cst.While)) for n in iter_tree(stmt)):
                return False
        if not isinstance(loop, cst.For):
            return True
        if any(isinstance(n, cst.Name) and "epoch" in n.value.lower() for n in iter_tree(loop.target)):
            return False
        it = loop.iter
        while isinstance(it, cst.Call) and isinstance(it.func, cst.Name) and it.func.value in (
                "enumerate", "zip", "list", "sorted", "tqdm", "reversed") and it.args:
            it = it.args[0].value
        if isinstance(it, (cst.Tuple, cst.List, cst.Set, cst.Dict)):
            return False
        if isinstance(it, cst.Call) and isinstance(it.func, cst.Attribute) and it.func.attr.value in ("items", "keys", "values"):
            return False
        if isinstance(it, cst.Call) and self.ctx.qualname(it.func) in ("range", "builtins.range"):
            bounds = [a.value for a in it.args if a.keyword is None and not a.star]
            if bounds and len(bounds) <= 2:
                ints = [self._few_passes(b) for b in bounds]
                if None not in ints and (ints[-1] - (ints[0] if len(ints) == 2 else 0)) < _FEW:
                    return False
        return True

    def _few_passes(self, e: cst.BaseExpression) -> int | None:
        """A loop bound as a literal int: written here, or a parameter that every call of the
        function in this file passes (or defaults) as a literal; the largest. None otherwise."""
        if isinstance(e, cst.Integer):
            return int(e.value.replace("_", ""), 0)
        if not isinstance(e, cst.Name):
            return None
        b = self.ctx.lookup(e.value)
        if b is None or b.how != PARAM or not isinstance(b.node, cst.Param):
            return None
        info = self.ctx.semantic.function(b.scope)
        sites = self.ctx.semantic.sites.get(info, ()) if info is not None else ()
        if not sites:
            return None
        best = 0
        for call, _scope, _order, callee in sites:
            passed = bind_args(call, info.positional, callee).get(e.value, b.node.default)
            if not isinstance(passed, cst.Integer):
                return None
            best = max(best, int(passed.value.replace("_", ""), 0))
        return best

    def _every_iteration(self, body: list) -> list:
        """The statements of a loop body that run on every iteration (not under `if`/`except`,
        not in a nested loop, function or class)."""
        out, todo = [], list(body)
        while todo:
            stmt = todo.pop(0)
            if isinstance(stmt, cst.SimpleStatementLine):
                out.append(stmt)
            elif isinstance(stmt, cst.With):
                todo[:0] = list(stmt.body.body) if isinstance(stmt.body, cst.IndentedBlock) else []
            elif isinstance(stmt, cst.Try):
                todo[:0] = list(stmt.body.body) if isinstance(stmt.body, cst.IndentedBlock) else []
        return out

    def _checks(self, stmt: cst.SimpleStatementLine) -> bool:
        """`assert ...`, `self.assertEqual(...)`, `np.testing.assert_allclose(...)`."""
        for small in stmt.body:
            if isinstance(small, cst.Assert):
                return True
            if isinstance(small, cst.Expr) and isinstance(small.value, cst.Call):
                func = small.value.func
                name = func.attr.value if isinstance(func, cst.Attribute) else func.value if isinstance(func, cst.Name) else ""
                if name.lower().startswith("assert") or "testing" in (self.ctx.qualname(func) or ""):
                    return True
        return False

    def _calls(self, stmt: cst.CSTNode) -> list[cst.Call]:
        out, stack = [], [stmt]
        while stack:
            n = stack.pop()
            if isinstance(n, (cst.FunctionDef, cst.ClassDef, cst.Lambda)):
                continue
            if isinstance(n, cst.Call):
                out.append(n)
            stack.extend(reversed(n.children))  # source order
        return out

    def _jitted_results(self, body: list) -> dict[str, str]:
        """name → the jitted function that assigned it, in this loop body."""
        out: dict[str, str] = {}
        for stmt in body:
            for node in iter_tree(stmt):
                if not isinstance(node, cst.Assign) or not isinstance(node.value, cst.Call):
                    continue
                fn = self._jitted(node.value.func)
                if fn is None:
                    continue
                for target in node.targets:
                    for n in iter_tree(target.target):
                        if isinstance(n, cst.Name):
                            out[n.value] = fn
        return out

    def _jitted(self, func: cst.BaseExpression) -> str | None:
        """The name of a jitted callable (`step = jax.jit(f)`, `@jax.jit def step`), else None."""
        if not isinstance(func, cst.Name):
            return None
        bind = self.ctx.lookup(func.value)
        if bind is None:
            return None
        if isinstance(bind.node, cst.FunctionDef):
            return func.value if any(self._jit_expr(d.decorator) for d in bind.node.decorators) else None
        if isinstance(bind.value, cst.Call) and self._jit_expr(bind.value):
            return func.value
        return None

    def _jit_expr(self, expr: cst.BaseExpression) -> bool:
        """`jax.jit`, `jax.jit(...)`, `partial(jax.jit, ...)`."""
        if isinstance(expr, cst.Call):
            q = self.ctx.qualname(expr.func)
            if q in _JITS:
                return True
            if q == "functools.partial" and expr.args:
                return self.ctx.qualname(expr.args[0].value) in _JITS
            return False
        return self.ctx.qualname(expr) in _JITS

    def _fetched(self, call: cst.Call, results: dict[str, str]) -> tuple[str, str] | None:
        q = self.ctx.qualname(call.func)
        if q in _FETCHES:
            args = [a.value for a in call.args if a.keyword is None and not a.star]
            if q != "builtins.print":
                args = args[:1]
            for arg in args:
                hit = self._uses(arg, results, formatted=q == "builtins.print")
                if hit is not None:
                    return hit
            return None
        if isinstance(call.func, cst.Attribute) and call.func.attr.value in _FETCH_METHODS:
            return self._uses(call.func.value, results)
        return None

    def _uses(self, expr: cst.BaseExpression, results: dict[str, str],
              formatted: bool = False) -> tuple[str, str] | None:
        """`loss`, `metrics['loss']`, `out.loss` (and, for print, `f"{loss}"`) of a jitted result."""
        if formatted and isinstance(expr, cst.FormattedString):
            for part in expr.parts:
                if isinstance(part, cst.FormattedStringExpression):
                    hit = self._uses(part.expression, results)
                    if hit is not None:
                        return hit
            return None
        base = expr
        while isinstance(base, (cst.Subscript, cst.Attribute)):
            base = base.value
        if isinstance(base, cst.Name) and base.value in results:
            return self.ctx.code(expr), results[base.value]
        return None
