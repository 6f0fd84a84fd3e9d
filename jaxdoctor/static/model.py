"""The semantic model of one file: which functions JAX traces, and what each value is there.

Built once per file, before the rules walk, and shared by every rule:

1. `FileIndex` (one walk): scopes, bindings, functions, classes, calls, imports.
2. Every call is resolved to the functions of the file it reaches (`Resolver`), through the
   binding that reaches it.
3. *Entries* (`entries.seed`): functions decorated by or passed to a transform get the parameter
   values the transform gives them; a module method (`__call__` of an NNX / Linen / Equinox
   module, a Linen `@compact` method) is traced only as its callers are: its parameters are
   unknown until a traced caller passes something.
4. The flow pass (`flow.Flow`) runs over each traced (or maybe-traced) function; its calls pass
   values on to the functions they reach, which are re-run until nothing changes. Parameters a
   transform hands through (`static_argnums`, `in_axes=None`) take what their call sites pass.

Error-severity rules ask `value(expr) == ARRAY` inside a function whose `traced` is True.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace

import libcst as cst

from jaxdoctor.static.entries import seed
from jaxdoctor.static.flow import Flow
from jaxdoctor.static.index import (
    ASSIGN,
    MAYBE_STATE,
    NOT_TRACED,
    TRACED_STATE,
    Bind,
    FileIndex,
    FunctionInfo,
    FunctionNode,
    ScopeNode,
)
from jaxdoctor.static.resolve import NO_PARTIAL, Callee, Partial, Resolver, bind_args
from jaxdoctor.static.evaluate import STATIC_CALLS, array_uses
from jaxdoctor.static.syntax import annotated_array, annotation_expr, call_arg, never_traced, scalar_annotation
from jaxdoctor.static.transforms import HOST_CALLBACKS, MODULE_BASES, PARTIALS, PATH_MAPS, TRANSFORMS, TREE_MAPS, Params, Transform
from jaxdoctor.static.names import ImportTable
from jaxdoctor.static.values import ARRAY, CONTAINER, STATIC, TRACED, UNKNOWN, holds_tracers, join, may_join

_FIELD_CALLS = frozenset({"flax.struct.field", "equinox.field", "dataclasses.field"})
#: class decorators that make every instance a static pytree node (no leaves)
_STATIC_PYTREES = frozenset({"jax.tree_util.register_static"})
#: transforms that add a batch dimension
VMAPS = frozenset({"jax.vmap", "flax.nnx.vmap", "equinox.filter_vmap", "flax.linen.vmap"})
#: Linen's lifted maps whose `in_axes` may broadcast an argument (`nn.broadcast` / None)
_LINEN_MAPS = frozenset({"flax.linen.scan", "flax.linen.vmap"})
#: transforms whose result, called, returns what the function returns
_RETURNS_THROUGH = frozenset({Params.JIT, Params.FILTER, Params.OPERANDS})
#: array constructors: at an untraced call site an argument built by one of these is an array
_ARRAY_PREFIXES = ("jax.numpy.", "jax.random.", "jax.nn.", "jax.lax.")

Site = tuple[cst.Call, ScopeNode, int, Callee]


class SemanticModel:
    """Per-file facts shared by all rules: names, functions, classes, values."""

    def __init__(self, module: cst.Module) -> None:
        self.module = module
        self.index = FileIndex(module)
        self.names = self.index.names
        self.functions = self.index.functions
        self.classes = self.index.classes
        self.resolver = Resolver(self.index)
        #: resolve_functions answers, once the model is built (None while it is being built)
        self._resolved: dict | None = None
        #: value of each expression the flow pass evaluated
        self.record: dict[cst.CSTNode, int] = {}
        #: call → transform, for every call of a known transform
        self.transform_calls: dict[cst.Call, Transform] = {}
        #: call → the functions of this file it reaches
        self.callees_of: dict[cst.Call, list[Callee]] = {}
        #: function → its call sites
        self.sites: dict[FunctionInfo, list[Site]] = defaultdict(list)
        #: function → parameters whose values come from its call sites (static, unmapped)
        self.from_callers: dict[FunctionInfo, set[str]] = defaultdict(set)
        #: names of dataclass fields declared static in a class of this file
        self.static_fields: set[str] = set()
        self._worklist: list[FunctionInfo] = []
        self._queued: set[FunctionInfo] = set()
        self._uses: dict[FunctionInfo, tuple[set[str], set[str]]] = {}
        self._static_fields()
        self._resolve_calls()
        self._seed()
        self._run()
        self._resolved = {}

    # ---------------------------------------------------------------- queries
    @property
    def calls(self) -> list[tuple[cst.Call, ScopeNode, int]]:
        return self.index.calls

    def function(self, node: cst.CSTNode) -> FunctionInfo | None:
        return self.functions.get(node)  # type: ignore[arg-type]

    def value(self, expr: cst.BaseExpression) -> int:
        """What `expr` is where the flow pass saw it (static outside analysed functions)."""
        return self.record.get(expr, STATIC)

    kind = value

    def is_array(self, expr: cst.BaseExpression) -> bool:
        return self.record.get(expr, STATIC) == ARRAY

    def holds_tracers(self, expr: cst.BaseExpression) -> bool:
        return holds_tracers(self.record.get(expr, STATIC))

    is_traced = holds_tracers

    def transform_of(self, call: cst.Call) -> Transform | None:
        return self.transform_calls.get(call)

    def class_family(self, cls: cst.ClassDef) -> str | None:
        return self.resolver.class_family(cls)

    def enclosing_class(self, node: cst.CSTNode) -> cst.ClassDef | None:
        return self.index.enclosing_class(node)

    def method(self, cls: cst.ClassDef, name: str) -> FunctionInfo | None:
        return self.resolver.method(cls, name)

    def lookup(self, name: str, scope: cst.CSTNode, at: cst.CSTNode | None = None) -> Bind | None:
        """The binding of `name` that reaches statement `at` (or the end of `scope`)."""
        return self.index.lookup_at(name, scope, at)

    def assigned_value(self, name: str, scope: cst.CSTNode, at: cst.CSTNode | None = None) -> cst.BaseExpression | None:
        """The expression `name` was last assigned (`name = value`) before `at`, if that is how
        it was bound."""
        b = self.lookup(name, scope, at)
        if b is not None and b.how == ASSIGN and b.path is None:
            return b.value
        return None

    def resolve_functions(self, expr: cst.BaseExpression, scope: cst.CSTNode,
                          at: cst.CSTNode | None = None) -> list[FunctionInfo]:
        """The functions of this file that `expr` (a name, `self.method`, lambda, partial,
        transform call, list of functions) denotes at statement `at`."""
        order = self.index.order.get(at, 1 << 30) if at is not None else 1 << 30
        if self._resolved is None:
            return [c.info for c in self.resolver.callees(expr, scope, order)]
        key = (expr, scope, order)
        found = self._resolved.get(key)
        if found is None:  # several rules ask about the same expression at the same place
            found = self._resolved[key] = tuple(c.info for c in self.resolver.callees(expr, scope, order))
        return list(found)

    def callees(self, call: cst.Call) -> list[Callee]:
        return self.callees_of.get(call, [])

    # ---------------------------------------------------------------- build
    def _static_fields(self) -> None:
        for (_cls, name), node in self.index.fields.items():
            value = node.value
            if isinstance(value, cst.Call) and _static_field(value, self.names):
                self.static_fields.add(name)

    def _resolve_calls(self) -> None:
        """Each call → the functions it reaches. Twice: a parameter's class (`m(x)` where every
        caller passes `m = Block(...)`) is known once the first pass found the callers."""
        resolver = self.resolver
        unresolved = []
        for call, scope, order in self.index.calls:
            q = self.names.qualname(call.func)
            if q in TRANSFORMS:
                self.transform_calls[call] = TRANSFORMS[q]
                continue
            if q is not None and (q in HOST_CALLBACKS or q in PARTIALS):
                continue
            callees = resolver.callees(call.func, scope, order) or self._instance_call(call, scope, order)
            if callees:
                self._add_callees(call, scope, order, callees)
            elif q is None:
                unresolved.append((call, scope, order))
        resolver.sites = self.sites
        for call, scope, order in unresolved:
            # a parameter's class, or the functions the callers pass for it
            callees = self._instance_call(call, scope, order) or resolver.callees(call.func, scope, order)
            if callees:
                self._add_callees(call, scope, order, callees)

    def _add_callees(self, call: cst.Call, scope: ScopeNode, order: int, callees: list[Callee]) -> None:
        self.callees_of[call] = callees
        for c in callees:
            self.sites[c.info].append((call, scope, order, c))

    def _instance_call(self, call: cst.Call, scope: ScopeNode, order: int) -> list[Callee]:
        """`model(x)` / `Block(...)(x)` on an instance of a module class of this file (its
        `__call__`), and Linen's `model.apply(variables, x)` / `model.init(key, x)`."""
        resolver = self.resolver
        func = call.func
        if isinstance(func, cst.Attribute) and func.attr.value in ("apply", "init", "init_with_output"):
            cls = resolver.instance_class(func.value, scope, order)
            if cls is not None and resolver.class_family(cls) == "linen":
                method = resolver.method(cls, "__call__")
                if method is not None:
                    return [Callee(method, drop=1)]
            return []
        cls = resolver.instance_class(func, scope, order)
        if cls is None or resolver.class_family(cls) is None:
            return []
        method = resolver.method(cls, "__call__")
        return [Callee(method)] if method is not None else []

    def _seed(self) -> None:
        resolver = self.resolver
        # 1. transforms applied by call: jax.jit(f), lax.scan(body, ...), nn.scan(Block, ...)
        for call, scope, order in self.index.calls:
            spec = self.transform_calls.get(call)
            if spec is None:
                continue
            for fn in resolver.function_args(call, spec):
                for target in self._transform_targets(fn, scope, order):
                    inner = target.transform
                    if spec.params is Params.ARGNUMS and inner is not None and not inner.traces:
                        continue  # grad of a custom_jvp/vjp function runs its rule, not the function
                    self._enter(target.info, spec, call, target.bound, False, f"`{spec.qualname}`")
                cls = resolver.class_named(fn, scope, order)
                if cls is not None:
                    method = resolver.method(cls, "__call__")
                    if method is not None:
                        self._enter(method, spec, call, NO_PARTIAL, False, f"`{spec.qualname}`", lifted=True)
        # 2. transforms applied as decorators (all of them: `@jax.jit @jax.vmap def f`)
        for info in list(self.functions.values()):
            if not isinstance(info.node, cst.FunctionDef):
                continue
            custom = False
            for dec in info.node.decorators:
                found = resolver.transform_of_expr(dec.decorator)
                if found is not None:
                    spec, options = found
                    if spec.params is Params.ARGNUMS and custom:
                        continue
                    custom = custom or not spec.traces
                    self._enter(info, spec, options, NO_PARTIAL, True, f"`{spec.qualname}`")
        # 3. module methods: run under their caller's transform (`model.apply` under `jit`,
        #    `nnx.jit`, `eqx.filter_jit`), so what `jnp` computes there is traced; their
        #    parameters are unknown until a traced caller passes something
        for info in list(self.functions.values()):
            if info.cls is None or not isinstance(info.node, cst.FunctionDef):
                continue
            family = self.class_family(info.cls)
            if family is None:
                continue
            compact = any(self.names.qualname(d.decorator) == "flax.linen.compact" for d in info.node.decorators)
            if info.name == "__call__" or compact:
                info.staged = True  # modules are called under their user's jit
                params = {p.name.value: UNKNOWN for p in info.all_params() if p.name.value != info.self_name}
                self._mark(info, TRACED_STATE, params,
                           f"the `{family}` module method `{info.cls.name.value}.{info.name}`", None)

    def _transform_targets(self, fn: cst.BaseExpression, scope: ScopeNode, order: int):
        """The functions a transform's function argument reaches; a nested transform call
        (`jax.jit(jax.grad(f))`) reaches `f` under both."""
        if isinstance(fn, cst.Call) and self.names.qualname(fn.func) in TRANSFORMS:
            inner = TRANSFORMS[self.names.qualname(fn.func)]  # type: ignore[index]
            for arg in self.resolver.function_args(fn, inner):
                for c in self._transform_targets(arg, scope, order):
                    yield Callee(c.info, c.bound, c.transform or inner, c.options, c.decorated)
            return
        yield from self.resolver.callees(fn, scope, order)

    def _enter(self, info: FunctionInfo, spec: Transform, options: cst.Call | None, bound: Partial,
               decorated: bool, via: str, lifted: bool = False) -> None:
        passed = self._passed(info)
        if lifted and spec.family == "linen" and spec.control_flow:
            # `nn.scan(Block, ...)`: `__call__`'s parameters after `self` are the carry and inputs
            spec = replace(spec, flow=None)
        s = seed(info, spec, options, bound, decorated, self.names, passed)
        if lifted and spec.qualname in _LINEN_MAPS and options is not None:
            self._linen_broadcast(info, spec, options, s)
        for name in list(s.values):
            if s.values[name] >= CONTAINER and self._static_class_param(info, name):
                s.values[name] = STATIC  # an instance of a `register_static` class: hashed, not traced
        if spec.traces and spec.stages and not spec.control_flow and not spec.maps \
                and spec.params is not Params.FILTER:
            for name, value in s.values.items():
                if value == TRACED and self._passed_array(info, name):
                    s.values[name] = ARRAY
        if info.transform is None:
            info.transform = spec
        if spec.family == "jax" and spec.traces:
            info.trees.update(n for n, v in s.values.items() if v == TRACED)
        if spec.qualname in VMAPS:
            info.batched = True
        if spec.traces and spec.stages:
            info.staged = True
        self.from_callers[info].update(s.from_callers)
        self._mark(info, s.state, s.values, via, None, force=True)

    def _passed_array(self, info: FunctionInfo, name: str) -> bool:
        """Some call site passes `name` a number, a bool or an array (`step(state, True)`,
        `f(jnp.ones(3))`, `g(x, 0.5)`): under `jit` that argument is a traced array, not a
        pytree of them."""
        for call, scope, _order, callee in self.sites.get(info, ()):
            arg = bind_args(call, info.positional, callee).get(name)
            if arg is None:
                continue
            if isinstance(arg, cst.Name) and arg.value not in ("True", "False"):
                arg = self.assigned_value(arg.value, scope, call) or arg
            if _array_argument(arg, self.names):
                return True
        return False

    def _linen_broadcast(self, info: FunctionInfo, spec: Transform, options: cst.Call, s) -> None:
        """`nn.scan(Block, in_axes=(nn.broadcast,))` / `nn.vmap(Block, in_axes=(0, None))`: a
        broadcast argument reaches `__call__` as its caller passed it (a Python flag stays one).
        `nn.scan`'s `in_axes` cover the arguments after the carry."""
        axes = call_arg(options, None, "in_axes")
        if axes is None:
            return
        names = info.positional[1:] if spec.qualname == "flax.linen.scan" else info.positional

        def broadcast(e: cst.BaseExpression) -> bool:
            return (isinstance(e, cst.Name) and e.value == "None") or self.names.qualname(e) == "flax.linen.broadcast"

        if isinstance(axes, (cst.Tuple, cst.List)):
            if any(isinstance(el, cst.StarredElement) for el in axes.elements):
                return
            chosen = [n for n, el in zip(names, axes.elements) if broadcast(el.value)]
        else:
            chosen = list(names) if broadcast(axes) else []
        for name in chosen:
            s.values.pop(name, None)
            s.from_callers.add(name)

    def _static_class_param(self, info: FunctionInfo, name: str) -> bool:
        p = info.param(name)
        ann = annotation_expr(p) if p is not None else None
        cls = self.resolver.class_named(ann, info.scope, self.index.order.get(info.node, 1 << 30)) if ann is not None else None
        return cls is not None and any(
            self.names.qualname(d.decorator) in _STATIC_PYTREES for d in cls.decorators)

    def _passed(self, info: FunctionInfo) -> set[str]:
        """Parameters some call site in this file passes explicitly."""
        out: set[str] = set()
        positional = info.positional
        for call, _scope, _order, callee in self.sites.get(info, ()):
            skip = callee.bound.positional
            pos = [a for a in call.args if a.keyword is None and not a.star][callee.drop:]
            if any(a.star == "*" for a in call.args):
                out.update(positional[skip:])
            out.update(positional[skip: skip + len(pos)])
            out.update(a.keyword.value for a in call.args if a.keyword is not None)
        return out

    # ---------------------------------------------------------------- worklist
    def _mark(self, info: FunctionInfo, state: int, params: dict[str, int], via: str,
              captures: dict[str, int] | None, force: bool = False) -> None:
        grew = False
        if state > info.state:
            info.state = state
            info.via = via
            grew = True
        elif not info.via:
            info.via = via
        for name, value in params.items():
            if info.params.get(name, -1) < value:
                info.params[name] = value
                grew = True
        for name, value in (captures or {}).items():
            if info.captures.get(name, -1) < value:
                info.captures[name] = value
                grew = True
        if (grew or force) and info.state > NOT_TRACED:
            self._queue(info)

    def _queue(self, info: FunctionInfo) -> None:
        if info not in self._queued:
            self._queued.add(info)
            self._worklist.append(info)

    def _run(self) -> None:
        budget = 40 * max(1, len(self.functions))
        for _round in range(4):
            while self._worklist and budget > 0:
                budget -= 1
                info = self._worklist.pop()
                self._queued.discard(info)
                flow = Flow(info, self.names, self.record, self)
                flow.cap = ARRAY if info.state == TRACED_STATE else UNKNOWN
                flow.run()
                elements = flow.return_elements if isinstance(flow.return_elements, list) else None
                if join(info.returns, flow.returns) != info.returns or elements != info.return_elements:
                    info.returns = join(info.returns, flow.returns)
                    info.return_elements = elements
                    for caller in info.callers:
                        self._queue(caller)
            if not self._call_site_values():
                break

    def _call_site_values(self) -> bool:
        """Parameters a transform hands through take the join of what their call sites pass:
        flow values in analysed functions, evidence from the syntax elsewhere, unknown when
        the file never calls the function. True when something grew."""
        grew = False
        for info, names in self.from_callers.items():
            if info.state == NOT_TRACED or not names:
                continue
            positional = info.positional
            values = {n: STATIC for n in names} if self.sites.get(info) else {n: UNKNOWN for n in names}
            filtered = info.transform is not None and info.transform.params is Params.FILTER  # type: ignore[union-attr]
            for call, scope, _order, callee in self.sites.get(info, ()):
                analysed = self._analysed(scope)
                args = bind_args(call, positional, callee)
                for name in names:
                    arg = args.get(name)
                    if arg is None:
                        if any(a.star for a in call.args):
                            values[name] = may_join(values[name], UNKNOWN)
                        continue
                    if analysed:
                        v = self.record.get(arg, STATIC)
                    else:
                        v = self._syntactic(arg, scope, filtered)
                    values[name] = may_join(values[name], v)
            before = dict(info.params)
            self._mark(info, info.state, values, info.via, None)
            if info.params != before:
                grew = True
        return grew

    def _analysed(self, scope: ScopeNode) -> bool:
        fn = self.index.enclosing_function(scope)
        return fn is not None and fn.state > NOT_TRACED

    def _syntactic(self, arg: cst.BaseExpression, scope: ScopeNode, filtered: bool) -> int:
        """An argument at an untraced call site: a concrete value. Only `eqx.filter_*` turns
        an array argument into a tracer; a Python value stays static everywhere."""
        if not filtered:
            return STATIC
        if isinstance(arg, cst.Name):
            bound = self.assigned_value(arg.value, scope)
            if bound is None:
                return UNKNOWN
            arg = bound
        if isinstance(arg, cst.Call):
            q = self.names.qualname(arg.func)
            if q is not None and q.startswith(_ARRAY_PREFIXES):
                return TRACED
            return UNKNOWN
        if isinstance(arg, (cst.Dict, cst.List, cst.Tuple)) and arg.elements:
            # `step({"w": jnp.ones(2)}, ...)`: a pytree whose array leaves `filter_jit` traces
            values = [el.value for el in arg.elements if isinstance(el, (cst.DictElement, cst.Element))]
            parts = [self._syntactic(v, scope, filtered) for v in values]
            if len(parts) == len(arg.elements) and TRACED in parts:
                return TRACED
            if all(p == STATIC for p in parts) and len(parts) == len(arg.elements):
                return STATIC
            return UNKNOWN
        if isinstance(arg, (cst.Integer, cst.Float, cst.SimpleString, cst.Tuple)) or (
                isinstance(arg, cst.Name) and arg.value in ("True", "False", "None")):
            return STATIC
        return UNKNOWN

    # -------------------------------------------------------- flow callbacks
    def call(self, flow: Flow, call: cst.Call, func: int, args: list[tuple[cst.Arg, int]]) -> int | None:
        """A call inside an analysed function: pass values on to the functions of this file it
        reaches; answer with what they return (None when that is not known)."""
        caller = flow.info
        state = caller.state
        result: int | None = None
        for callee in self.callees_of.get(call, ()):
            info = callee.info
            spec = callee.transform
            info.callers.add(caller)
            if (caller.batched and not info.batched) or (caller.staged and not info.staged):
                info.batched = info.batched or caller.batched  # called under vmap: batched too
                info.staged = info.staged or caller.staged  # called under jit: staged too
                if info.state > NOT_TRACED:
                    self._queue(info)
            if spec is not None and spec.traces:
                # the transform decided the traced parameters; the others take these arguments
                handed = self.from_callers.get(info, set())
                params = {n: v for n, v in _arg_values(info, callee, args).items() if n in handed}
                self._mark(info, info.state, params, info.via, flow.captures_for(info))
                if spec.params in _RETURNS_THROUGH and info.state > NOT_TRACED:
                    result = join(result or STATIC, info.returns)
                continue
            params = _arg_values(info, callee, args)
            for name in list(params):
                p = info.param(name)
                if p is not None and never_traced(p):
                    del params[name]  # `mode: str`: the caller's value is a Python string
            self._mark(info, state, params, f"called from `{caller.name}`", flow.captures_for(info))
            if info.state > NOT_TRACED:
                result = join(result or STATIC, min(info.returns, flow.cap))
        q = self.names.qualname(call.func)
        if q not in TRANSFORMS and q not in HOST_CALLBACKS and any(holds_tracers(v) for _a, v in args):
            self._function_arguments(flow, call, q, args)
        return result

    def _function_arguments(self, flow: Flow, call: cst.Call, q: str | None,
                            args: list[tuple[cst.Arg, int]]) -> None:
        """Functions handed to a call together with traced values: `jax.tree.map(f, params)`
        calls `f` on each leaf (traced); another callee may call them with anything."""
        leaves = _tree_map_leaves(q, args)
        scope = flow.info.node
        order = self.index.order.get(call, 1 << 30)
        for i, (arg, _v) in enumerate(args):
            if not isinstance(arg.value, (cst.Lambda, cst.Name, cst.Call, cst.Attribute)):
                continue
            if isinstance(arg.value, cst.Call) and self.names.qualname(arg.value.func) not in PARTIALS:
                continue
            for callee in self.resolver.callees(arg.value, scope, order):
                info = callee.info
                if info.node is call.func:
                    continue
                positional = info.positional[callee.bound.positional:]
                if leaves is not None and i == 0:
                    params = {n: v for n, v in zip(positional, leaves)}
                    if q in PATH_MAPS and positional:
                        params[positional[0]] = STATIC  # the key path
                    state = flow.info.state
                    via = f"mapped over traced values in `{flow.info.name}`"
                    if (flow.info.staged and not info.staged) or (flow.info.batched and not info.batched):
                        info.staged = info.staged or flow.info.staged  # mapped inside the same trace
                        info.batched = info.batched or flow.info.batched
                        self._queue(info)
                else:
                    params = {n: UNKNOWN for n in positional}
                    state = MAYBE_STATE
                    via = f"passed with traced values in `{flow.info.name}`"
                for n in list(params):
                    if callee.bound.closed(info, n):
                        params[n] = STATIC
                info.callers.add(flow.info)
                self._mark(info, state, params, via, flow.captures_for(info))

    def scope_parent(self, node: cst.CSTNode) -> cst.CSTNode | None:
        return self.index.scope_of_node.get(node)

    def array_uses(self, info: FunctionInfo) -> tuple[set[str], set[str]]:
        found = self._uses.get(info)
        if found is None:
            body = info.node.body if isinstance(info.node, cst.FunctionDef) else info.node.body
            found = self._uses[info] = array_uses(body, self.names)
        return found

    def static_field(self, name: str) -> bool:
        return name in self.static_fields

    def return_elements(self, call: cst.Call) -> list[int] | None:
        """What each position of the tuple a call returns holds, when the call reaches one
        plain function of this file that always returns a tuple of one length."""
        callees = self.callees_of.get(call, ())
        if len(callees) != 1:
            return None
        callee = callees[0]
        info, spec = callee.info, callee.transform
        if info.state == NOT_TRACED:
            return None
        if spec is not None and spec.qualname.endswith("value_and_grad"):
            has_aux = callee.options is not None and any(
                a.keyword is not None and a.keyword.value == "has_aux" for a in callee.options.args)
            return [CONTAINER if has_aux else info.returns, TRACED]  # (value, gradients)
        if spec is not None and spec.traces and spec.params not in _RETURNS_THROUGH:
            return None
        return info.return_elements

    def module_instance(self, flow: Flow, e: cst.BaseExpression) -> bool:
        """`e` is an instance of an NNX / Linen / Equinox module class of this file (a pytree
        whose plain attributes are static), as far as the file shows."""
        cls = self.resolver.instance_class(e, flow.info.node, 1 << 30)
        return cls is not None and self.class_family(cls) is not None

    def field_value(self, flow: Flow, e: cst.Attribute, base: int) -> int | None:
        """`obj.attr` where `obj`'s class is of this file: what its field declaration says.
        Linen attributes are hyperparameters (static); an Equinox field annotated as an array
        is one, a scalar- or string-annotated one is static (Equinox keeps Python values out
        of the trace); any class's `field(static=True)` / `pytree_node=False` is static."""
        info = flow.info
        obj = e.value
        cls = None
        if isinstance(obj, cst.Name) and obj.value == info.self_name and info.cls is not None:
            cls = info.cls
        elif isinstance(obj, cst.Name):
            cls = self.resolver.instance_class(obj, info.node, 1 << 30)
        if cls is None:
            return None
        field = self._field(cls, e.attr.value)
        if field is None:
            return None
        if isinstance(field.value, cst.Call) and _static_field(field.value, self.names):
            return STATIC
        family = self.class_family(cls)
        if annotated_array(field):
            return ARRAY if flow.cap == ARRAY else UNKNOWN
        if family == "linen":
            return STATIC
        if family == "equinox" and (scalar_annotation(field) or never_traced(field)):
            return STATIC
        if never_traced(field):
            return STATIC
        return None

    def _field(self, cls: cst.ClassDef, name: str, seen: set | None = None) -> cst.AnnAssign | None:
        found = self.index.fields.get((cls, name))
        if found is not None:
            return found
        seen = seen or set()
        seen.add(cls)
        for base in cls.bases:
            parent = self.resolver.class_named(base.value, self.index.classes[cls], self.index.order.get(cls, 1 << 30))
            if parent is not None and parent not in seen:
                found = self._field(parent, name, seen)
                if found is not None:
                    return found
        return None

    def closure(self, flow: Flow, fn: FunctionNode) -> None:
        info = self.functions.get(fn)
        if info is None:
            return
        captured = flow.captures_for(info)
        if captured:
            self._mark(info, NOT_TRACED, {}, info.via, captured)


def _static_field(call: cst.Call, names) -> bool:
    """`flax.struct.field(pytree_node=False)`, `eqx.field(static=True)`, `eqx.static_field()`."""
    q = names.qualname(call.func)
    if q == "equinox.static_field":
        return True
    if q not in _FIELD_CALLS:
        return False
    for arg in call.args:
        if arg.keyword is None or not isinstance(arg.value, cst.Name):
            continue
        if (arg.keyword.value, arg.value.value) in (("pytree_node", "False"), ("static", "True")):
            return True
    return False


def _arg_values(info: FunctionInfo, callee: Callee, args: list[tuple[cst.Arg, int]]) -> dict[str, int]:
    """Parameter name → value of the argument a call passes for it."""
    bound = callee.bound
    names = info.positional[bound.positional:]
    skip = callee.drop
    params: dict[str, int] = {}
    explicit = {a.keyword.value for a, _v in args if a.keyword is not None}
    index = 0
    for i, (arg, value) in enumerate(args):
        if arg.star == "*":
            # `f(*args)`: how many it fills is unknown; a required parameter must be among them.
            # Positional arguments after it (`f(*inputs, shapes, sparsity)`) fill the last
            # parameters when no default makes the split ambiguous.
            trailing = [(a, v) for a, v in args[i + 1:] if a.keyword is None and not a.star]
            rest = names[index:]
            exact = info.node.params.star_arg is None and all(
                (p := info.param(n)) is not None and p.default is None for n in rest)
            if trailing and not exact:
                for n in rest:
                    params.setdefault(n, UNKNOWN)
                return _drop_closed(params, bound, info, explicit)
            middle = rest[:len(rest) - len(trailing)] if trailing else rest
            for n in middle:
                p = info.param(n)
                v = (TRACED if holds_tracers(value) else value) if p is not None and p.default is None else UNKNOWN
                params[n] = may_join(params.get(n, STATIC), v)
            for n, (_a, v) in zip(rest[len(middle):], trailing):
                params[n] = may_join(params.get(n, STATIC), v)
            for a, v in args[i + 1:]:
                if a.keyword is not None:
                    params[a.keyword.value] = may_join(params.get(a.keyword.value, STATIC), v)
            return _drop_closed(params, bound, info, explicit)
        if arg.star == "**":
            continue
        if arg.keyword is not None:
            params[arg.keyword.value] = may_join(params.get(arg.keyword.value, STATIC), value)
            continue
        if skip:
            skip -= 1
            continue
        if index < len(names):
            params[names[index]] = may_join(params.get(names[index], STATIC), value)
        elif info.node.params.star_arg is not None and isinstance(info.node.params.star_arg, cst.Param):
            star = info.node.params.star_arg.name.value
            params[star] = may_join(params.get(star, STATIC), CONTAINER if holds_tracers(value) else value)
        index += 1
    return _drop_closed(params, bound, info, explicit)


def _drop_closed(params: dict[str, int], bound, info: FunctionInfo, explicit: set[str]) -> dict[str, int]:
    for name in list(params):
        if bound.closed(info, name) and name not in explicit:
            del params[name]  # bound by `partial(f, name=...)` and not overridden here
    return params


_TREE_REDUCES = frozenset({"jax.tree.reduce", "jax.tree_util.tree_reduce", "functools.reduce"})


def _tree_map_leaves(q: str | None, args: list[tuple[cst.Arg, int]]) -> list[int] | None:
    """For `jax.tree.map(f, *trees)`: the values `f` receives, position by position (a key
    path first for `*_with_path`); None for other calls."""
    if q in _TREE_REDUCES and args and args[0][0].keyword is None and len(args) >= 2 \
            and args[1][0].keyword is None and not args[1][0].star:
        # `jax.tree.reduce(f, tree)`: `f(accumulated, leaf)`, both leaves of the tree
        leaf = TRACED if holds_tracers(args[1][1]) else args[1][1]
        return [leaf, leaf]
    if q not in TREE_MAPS or not args or args[0][0].keyword is not None:
        return None
    trees = args[1:]
    if any(a.star for a, _v in trees):
        return None
    values = [TRACED if holds_tracers(v) else v for a, v in trees if a.keyword is None]
    return [STATIC] + values if q in PATH_MAPS else values


__all__ = ["SemanticModel", "FunctionInfo", "Partial", "Callee", "MODULE_BASES"]


def _array_argument(arg: cst.BaseExpression, names: ImportTable) -> bool:
    """`arg` is a Python number or bool, or builds an array (`jnp.ones(3)`, `np.zeros(2)`,
    `jnp.float32(2.0)`, `jax.random.normal(...)`): passed to `jit` it becomes a traced array."""
    if isinstance(arg, cst.UnaryOperation) and isinstance(arg.operator, (cst.Minus, cst.Plus)):
        arg = arg.expression
    if isinstance(arg, (cst.Integer, cst.Float)):
        return True
    if isinstance(arg, cst.Comparison):
        return any(_array_argument(x, names) and isinstance(x, cst.Call)
                   for x in (arg.left, *(c.comparator for c in arg.comparisons)))
    if isinstance(arg, cst.BinaryOperation):
        return any(_array_argument(x, names) and isinstance(x, cst.Call) for x in (arg.left, arg.right))
    if isinstance(arg, cst.Name):
        return arg.value in ("True", "False")
    if isinstance(arg, cst.Call):
        q = names.qualname(arg.func)
        if q is None or q in STATIC_CALLS:
            return False
        last = q.rsplit(".", 1)[1]
        if not last[:1].islower():
            return False  # a class: `np.ndarray`, `jnp.dtype`
        if q.startswith(("jax.numpy.", "numpy.")):
            rest = q.split(".", 2)[-1] if q.startswith("jax.") else q.split(".", 1)[1]
            return "." not in rest or rest.startswith("random.")
        return q.startswith("jax.random.") and last not in ("split", "key", "PRNGKey", "fold_in", "key_data")
    return False
