"""Which functions JAX traces, and which values inside them are tracers (DESIGN §3).

Built once per file, before the rules walk, and shared by every rule:

1. An index walk records imports, every function, class, and call, by scope.
2. *Entries*: functions decorated by or passed to a transform (`transforms.TRANSFORMS`), and
   `__call__` of an NNX / Linen / Equinox module. Each transform decides which parameters are
   tracers: `static_argnums`, `in_axes=None`, `argnums`, `eqx.filter_*` semantics.
3. A flow pass (`flow.py`) over each traced function, statement by statement: a name assigned from a traced
   value is traced; re-assigned from a static one, it is not. `.shape`, `.ndim`, `.dtype`,
   `len()`, `is None`, `isinstance()` are static. Calls to functions of the same file pass
   tracedness on to the callee's parameters (a worklist runs to a fixed point), and nested
   functions see the traced names they close over.

Values have a *kind* (`kinds.py`): 0 static, 1 traced but maybe a pytree (a parameter,
`state.field`), 2 certainly an array (arithmetic, comparisons, `jnp.*` results). Rules that flag
truth-testing ask for kind 2: `if params:` on a dict of tracers is fine, `if x > 0:` is not.
Syntax-only helpers (literals, annotations, call arguments) live in `syntax.py`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

import libcst as cst

from jaxdoctor.static.flow import Flow
from jaxdoctor.static.kinds import ARRAY, STATIC, TRACED, KindEvaluator
from jaxdoctor.static.names import ImportTable
from jaxdoctor.static.syntax import (
    annotated_array,
    annotated_static,
    call_arg,
    call_args,
    is_literal,
    literal_ints,
    literal_strs,
    never_traced,
)
from jaxdoctor.static.transforms import (
    HOST_CALLBACKS,
    MODULE_BASES,
    PARTIALS,
    TRANSFORMS,
    TREE_MAPS,
    Params,
    Transform,
)
from jaxdoctor.static.walker import walk

Scope = cst.Module | cst.FunctionDef | cst.Lambda | cst.ClassDef
FunctionNode = cst.FunctionDef | cst.Lambda

#: Parameter names that, in a module's `__call__`, are Python flags by convention.
_FLAG_NAMES = frozenset(
    {"train", "training", "is_training", "deterministic", "inference", "eval_mode", "decode",
     "use_running_average", "return_all", "return_attention", "return_state", "mode", "init",
     "init_cache", "use_cache", "output_attentions", "output_hidden_states", "return_dict"}
)
#: `jax.*` calls whose result is not an array (for call-site evidence)
_NOT_ARRAY_CALLS = frozenset(
    {"jax.jit", "jax.vmap", "jax.grad", "jax.devices", "jax.device_count", "jax.tree.map",
     "jax.tree_util.tree_map", "jax.numpy.shape", "jax.numpy.ndim", "jax.numpy.size",
     "jax.numpy.dtype", "jax.default_backend", "jax.process_index"}
)


@dataclass(eq=False)
class FunctionInfo:
    node: FunctionNode
    name: str
    scope: Scope  # the scope the function is defined in
    cls: cst.ClassDef | None  # the class, for methods
    #: name → kind, for the parameters that receive tracers
    traced_params: dict[str, int] = field(default_factory=dict)
    #: names closed over from enclosing traced functions, with their kinds
    captures: dict[str, int] = field(default_factory=dict)
    traced: bool = False
    #: what makes it traced, for messages: "`jax.jit`", "`jax.lax.scan`", "called from `step`"
    via: str = ""
    transform: Transform | None = None  # the transform it was given to or decorated with

    @property
    def positional(self) -> list[str]:
        if isinstance(self.node, cst.Lambda):
            params = self.node.params
        else:
            params = self.node.params
        names = [p.name.value for p in (*params.posonly_params, *params.params)]
        if self.is_method and names and not self.is_staticmethod:
            names = names[1:]
        return names

    @property
    def is_method(self) -> bool:
        return self.cls is not None and isinstance(self.node, cst.FunctionDef)

    @property
    def is_staticmethod(self) -> bool:
        if not isinstance(self.node, cst.FunctionDef):
            return False
        return any(
            isinstance(d.decorator, cst.Name) and d.decorator.value == "staticmethod"
            for d in self.node.decorators
        )

    def all_params(self) -> Iterator[cst.Param]:
        p = self.node.params
        yield from p.posonly_params
        yield from p.params
        if isinstance(p.star_arg, cst.Param):
            yield p.star_arg
        yield from p.kwonly_params
        if p.star_kwarg is not None:
            yield p.star_kwarg

    def param(self, name: str) -> cst.Param | None:
        for p in self.all_params():
            if p.name.value == name:
                return p
        return None


@dataclass(frozen=True, slots=True)
class Binding:
    """What `functools.partial` has already bound: its positional arguments fill the first
    parameters, its keywords close over the parameters they name (Python values, not the
    transform's arguments). With `**kwargs` bound, any parameter with a default or any
    keyword-only one may be among them: those count as closed over."""

    positional: int = 0
    keywords: frozenset[str] = frozenset()
    star_kwargs: bool = False

    def closed(self, info: "FunctionInfo", name: str) -> bool:
        if name in self.keywords:
            return True
        if not self.star_kwargs:
            return False
        p = info.param(name)
        kwonly = any(k.name.value == name for k in info.node.params.kwonly_params)
        return p is not None and (p.default is not None or kwonly)

    def then(self, outer: cst.Call) -> "Binding":
        """This binding, wrapped in one more `partial(..., *args, **kw)`."""
        return Binding(
            self.positional + sum(1 for a in outer.args[1:] if a.keyword is None and not a.star),
            self.keywords | {a.keyword.value for a in outer.args[1:] if a.keyword is not None},
            self.star_kwargs or any(a.star == "**" for a in outer.args[1:]),
        )


NO_BINDING = Binding()

_FIELD_CALLS = frozenset({"flax.struct.field", "equinox.field", "dataclasses.field"})


def _static_field(call: cst.Call, names: ImportTable) -> bool:
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


class SemanticModel:
    """Per-file facts shared by all rules: names, functions, classes, tracedness."""

    def __init__(self, module: cst.Module) -> None:
        self.module = module
        self.names = ImportTable()
        self.functions: dict[FunctionNode, FunctionInfo] = {}
        self.defs: dict[Scope, dict[str, FunctionNode]] = {}
        self.classes: dict[cst.ClassDef, Scope] = {}
        self.class_names: dict[Scope, dict[str, cst.ClassDef]] = {}
        self.calls: list[tuple[cst.Call, Scope]] = []
        #: scope → name → values assigned to it there (`branches = [f, g]`, `loss = lambda p: ...`)
        self.assigned: dict[Scope, dict[str, list[cst.BaseExpression]]] = {}
        self.scope_of_node: dict[cst.CSTNode, Scope] = {}
        #: kind of each `Name` load inside a traced function, as the flow pass saw it
        self.name_kinds: dict[cst.Name, int] = {}
        #: call → transform, for every call of a known transform
        self.transform_calls: dict[cst.Call, Transform] = {}
        self._class_family: dict[cst.ClassDef, str | None] = {}
        #: names of dataclass fields declared static in a class of this file
        #: (`flax.struct.field(pytree_node=False)`, `eqx.field(static=True)`): not traced
        self.static_fields: set[str] = set()
        self._index()
        self._resolve()

    # ------------------------------------------------------------------ index
    def _index(self) -> None:
        ancestors: list[cst.CSTNode] = []
        scopes: list[Scope] = [self.module]
        names = self.names

        def scope_enter(node):
            parent = scopes[-1]
            self.scope_of_node[node] = parent
            if isinstance(node, cst.ClassDef):
                self.classes[node] = parent
                self.class_names.setdefault(parent, {})[node.name.value] = node
                if parent is self.module:
                    names.shadowed.add(node.name.value)
            else:
                name = node.name.value if isinstance(node, cst.FunctionDef) else "<lambda>"
                cls = parent if isinstance(parent, cst.ClassDef) else None
                self.functions[node] = FunctionInfo(node, name, parent, cls)
                if isinstance(node, cst.FunctionDef):
                    self.defs.setdefault(parent, {})[name] = node
                    if parent is self.module:
                        names.shadowed.add(name)
            scopes.append(node)

        def scope_leave(node):
            scopes.pop()

        def on_call(node):
            self.calls.append((node, scopes[-1]))

        fields: list[cst.AnnAssign] = []

        def on_annassign(node):
            if isinstance(scopes[-1], cst.ClassDef) and isinstance(node.target, cst.Name) \
                    and isinstance(node.value, cst.Call):
                fields.append(node)

        def on_assign(node):
            for t in node.targets:
                if isinstance(t.target, cst.Name):
                    self.assigned.setdefault(scopes[-1], {}).setdefault(t.target.value, []).append(node.value)
                    if scopes[-1] is self.module:
                        names.shadowed.add(t.target.value)

        enter = {
            cst.Import: [names.add],
            cst.ImportFrom: [names.add],
            cst.FunctionDef: [scope_enter],
            cst.Lambda: [scope_enter],
            cst.ClassDef: [scope_enter],
            cst.Call: [on_call],
            cst.Assign: [on_assign],
            cst.AnnAssign: [on_annassign],
        }
        leave = {cst.FunctionDef: [scope_leave], cst.Lambda: [scope_leave], cst.ClassDef: [scope_leave]}
        walk(self.module, enter, leave, ancestors)
        for node in fields:
            if _static_field(node.value, names):  # type: ignore[arg-type]
                self.static_fields.add(node.target.value)  # type: ignore[union-attr]

    # ---------------------------------------------------------------- queries
    def function(self, node: cst.CSTNode) -> FunctionInfo | None:
        return self.functions.get(node)  # type: ignore[arg-type]

    def class_family(self, cls: cst.ClassDef) -> str | None:
        """"nnx", "linen" or "equinox" when `cls` derives (here or via this file) from a Module."""
        if cls in self._class_family:
            return self._class_family[cls]
        self._class_family[cls] = None  # cycles
        family = None
        for base in cls.bases:
            q = self.names.qualname(base.value)
            if q in MODULE_BASES:
                family = MODULE_BASES[q]
            elif q is not None and q.startswith("flax.nnx.") and q[9:10].isupper():
                family = "nnx"  # nnx.Linear, nnx.Sequential, ... subclasses
            elif q is not None and q.startswith("flax.linen.") and q[11:12].isupper():
                family = "linen"
            elif q is not None and q.startswith("equinox.nn."):
                family = "equinox"
            elif isinstance(base.value, cst.Name):
                local = self._lookup_class(base.value.value, self.classes[cls])
                if local is not None:
                    family = self.class_family(local)
            if family:
                break
        self._class_family[cls] = family
        return family

    def enclosing_class(self, node: cst.CSTNode) -> cst.ClassDef | None:
        scope = self.scope_of_node.get(node)
        while scope is not None and not isinstance(scope, cst.Module):
            if isinstance(scope, cst.ClassDef):
                return scope
            scope = self.scope_of_node.get(scope)
        return None

    def kind(self, expr: cst.BaseExpression) -> int:
        """0 static, 1 traced (maybe a pytree), 2 a traced array: as seen at that point."""
        return KindEvaluator(self, None, self._lookup_recorded).kind(expr)

    def is_traced(self, expr: cst.BaseExpression) -> bool:
        return self.kind(expr) > STATIC

    def is_array(self, expr: cst.BaseExpression) -> bool:
        return self.kind(expr) == ARRAY

    def transform_of(self, call: cst.Call) -> Transform | None:
        return self.transform_calls.get(call)

    def resolve_functions(self, expr: cst.BaseExpression, scope: Scope) -> list[FunctionInfo]:
        """The functions of this file that `expr` (a name, `self.method`, lambda, partial) denotes."""
        return [info for info, _ in self._resolve_fn(expr, scope)]

    def _lookup_recorded(self, name: cst.Name) -> int:
        return self.name_kinds.get(name, STATIC)

    def _scope_lookup(self, table: dict, name: str, scope: Scope | None, *, skip_classes: bool):
        """`table[scope][name]` in the nearest enclosing scope that has it (Python's rule:
        function scopes don't see their class's names, so `skip_classes` for functions)."""
        while scope is not None:
            if not (skip_classes and isinstance(scope, cst.ClassDef)):
                found = table.get(scope, {}).get(name)
                if found:
                    return found
            if isinstance(scope, cst.Module):
                return None
            scope = self.scope_of_node.get(scope)
        return None

    def _lookup_def(self, name: str, scope: Scope | None) -> FunctionNode | None:
        return self._scope_lookup(self.defs, name, scope, skip_classes=True)

    def _lookup_class(self, name: str, scope: Scope | None) -> cst.ClassDef | None:
        return self._scope_lookup(self.class_names, name, scope, skip_classes=False)

    def _method(self, cls: cst.ClassDef, name: str, seen: set | None = None) -> FunctionNode | None:
        found = self.defs.get(cls, {}).get(name)
        if found is not None:
            return found
        seen = seen or set()
        seen.add(cls)
        for base in cls.bases:
            if isinstance(base.value, cst.Name):
                parent = self._lookup_class(base.value.value, self.classes.get(cls))
                if parent is not None and parent not in seen:
                    found = self._method(parent, name, seen)
                    if found is not None:
                        return found
        return None

    def _lookup_assigned(self, name: str, scope: Scope | None) -> cst.BaseExpression | None:
        """The value of the one assignment to `name` in the nearest scope that assigns it."""
        values = self._scope_lookup(self.assigned, name, scope, skip_classes=True)
        return values[0] if values and len(values) == 1 else None

    def _resolve_fn(self, expr: cst.BaseExpression, scope: Scope,
                    depth: int = 0) -> list[tuple[FunctionInfo, Binding]]:
        """(function, what `partial` has already bound) pairs."""
        if depth > 4:
            return []
        if isinstance(expr, cst.Lambda):
            return [(self.functions[expr], NO_BINDING)]
        if isinstance(expr, cst.Name):
            node = self._lookup_def(expr.value, scope)
            if node is not None:
                return [(self.functions[node], NO_BINDING)]
            # `loss = lambda p: ...`, `branches = [f, g]`, `fns = [lambda x, e=e: e(x) for e in ...]`
            value = self._lookup_assigned(expr.value, scope)
            if isinstance(value, (cst.Lambda, cst.List, cst.Tuple, cst.ListComp, cst.GeneratorExp, cst.Call)):
                return self._resolve_fn(value, scope, depth + 1)
            return []
        if isinstance(expr, (cst.ListComp, cst.GeneratorExp)):
            return self._resolve_fn(expr.elt, scope, depth + 1)
        if isinstance(expr, cst.Attribute) and isinstance(expr.value, cst.Name):
            if expr.value.value in ("self", "cls"):
                cls = scope if isinstance(scope, cst.ClassDef) else self.enclosing_class(scope)
                if cls is not None:
                    node = self._method(cls, expr.attr.value)
                    if node is not None:
                        return [(self.functions[node], NO_BINDING)]
                return []
            # `m = Model(); jax.grad(m.loss)`: a bound method of an instance of a class of this file
            value = self._lookup_assigned(expr.value.value, scope)
            if isinstance(value, cst.Call) and isinstance(value.func, cst.Name):
                cls = self._lookup_class(value.func.value, scope)
                node = self._method(cls, expr.attr.value) if cls is not None else None
                if node is not None and not isinstance(node, cst.Lambda):
                    return [(self.functions[node], NO_BINDING)]
            return []
        if isinstance(expr, cst.Call):
            q = self.names.qualname(expr.func)
            if q in PARTIALS and expr.args and expr.args[0].keyword is None:
                return [(f, b.then(expr)) for f, b in self._resolve_fn(expr.args[0].value, scope, depth + 1)]
            return []
        if isinstance(expr, (cst.List, cst.Tuple)):
            out = []
            for el in expr.elements:
                out.extend(self._resolve_fn(el.value, scope, depth + 1))
            return out
        return []

    # ---------------------------------------------------------------- entries
    def _transform_of_expr(self, expr: cst.BaseExpression) -> tuple[Transform, cst.Call | None] | None:
        """`jax.jit`, `jax.jit(...)` as a decorator factory, or `partial(jax.jit, ...)`."""
        q = self.names.qualname(expr)
        if q in TRANSFORMS:
            return TRANSFORMS[q], None
        if isinstance(expr, cst.Call):
            q = self.names.qualname(expr.func)
            if q in TRANSFORMS:
                return TRANSFORMS[q], expr
            if q in PARTIALS and expr.args:
                inner = self.names.qualname(expr.args[0].value)
                if inner in TRANSFORMS:
                    return TRANSFORMS[inner], expr
        return None

    def _resolve(self) -> None:
        self._worklist: list[FunctionInfo] = []
        # 1. transforms applied by call: jax.jit(f), lax.scan(body, ...), nnx.vmap(f, in_axes=...)
        for call, scope in self.calls:
            q = self.names.qualname(call.func)
            spec = TRANSFORMS.get(q) if q else None
            if spec is None:
                continue
            self.transform_calls[call] = spec
            positional, keywords = call_args(call)
            fn_exprs = [positional[i].value for i in spec.fn_positions if i < len(positional)]
            fn_exprs += [keywords[k].value for k in spec.fn_keywords if k in keywords]
            for expr in fn_exprs:
                self._apply(spec, call, expr, scope)
        # 2. transforms applied as decorators
        for info in list(self.functions.values()):
            if not isinstance(info.node, cst.FunctionDef):
                continue
            for dec in info.node.decorators:
                found = self._transform_of_expr(dec.decorator)
                if found is not None:
                    spec, call = found
                    self._enter(info, spec, call, NO_BINDING, f"`{spec.qualname}`", decorated=True)
        # 3. module methods: `__call__` (and Linen `@nn.compact` methods) run under the
        #    transforms of whoever calls the model; their array parameters are tracers.
        for info in list(self.functions.values()):
            if info.cls is None or not isinstance(info.node, cst.FunctionDef):
                continue
            family = self.class_family(info.cls)
            if family is None:
                continue
            compact = any(
                self.names.qualname(d.decorator) == "flax.linen.compact" for d in info.node.decorators
            )
            if info.name == "__call__" or compact:
                params = {}
                for name in info.positional:
                    p = info.param(name)
                    if p is None or p.default is not None or annotated_static(p) or name in _FLAG_NAMES:
                        continue
                    params[name] = ARRAY if annotated_array(p) else TRACED
                for p in info.node.params.kwonly_params:
                    if p.default is None and not annotated_static(p) and p.name.value not in _FLAG_NAMES:
                        params[p.name.value] = ARRAY if annotated_array(p) else TRACED
                self._mark(info, params, f"the `{family}` module method `{info.cls.name.value}.{info.name}`", None)
        # 4. flow, to a fixed point
        budget = 20 * max(1, len(self.functions))
        while self._worklist and budget > 0:
            budget -= 1
            info = self._worklist.pop()
            Flow(self, info).run()

    def _apply(self, spec: Transform, call: cst.Call, expr: cst.BaseExpression, scope: Scope) -> None:
        # nested transforms: jax.jit(jax.grad(f)) traces f under both
        if isinstance(expr, cst.Call):
            inner = self.names.qualname(expr.func)
            if inner in TRANSFORMS:
                inner_spec = TRANSFORMS[inner]
                positional, keywords = call_args(expr)
                for i in inner_spec.fn_positions:
                    if i < len(positional):
                        self._apply(spec, call, positional[i].value, scope)
                return
        for info, bound in self._resolve_fn(expr, scope):
            self._enter(info, spec, call, bound, f"`{spec.qualname}`", decorated=False)

    def _enter(self, info: FunctionInfo, spec: Transform, call: cst.Call | None, bound: Binding,
               via: str, decorated: bool) -> None:
        """Mark `info` traced by `spec`, applied with the arguments of `call` (if any)."""
        positional = info.positional[bound.positional:]
        if spec.family == "linen" and spec.control_flow and positional:
            positional = positional[1:]  # Linen lifted control flow: the module comes first
        kwonly = [p.name.value for p in info.node.params.kwonly_params]
        opts = call if call is not None else None

        def opt(position: int | None, keyword: str) -> cst.BaseExpression | None:
            if opts is None:
                return None
            if decorated and call is not None and self.names.qualname(call.func) in PARTIALS:
                # partial(jax.jit, static_argnums=...): keywords only; position is shifted by one
                return call_arg(call, None if position is None else position + 1, keyword)
            if not decorated:
                return call_arg(call, position, keyword)
            return call_arg(call, None, keyword)

        traced: set[str] = set()
        if spec.params is Params.JIT:
            static_nums = literal_ints(opt(None, "static_argnums")) or set()
            static_names = literal_strs(opt(None, "static_argnames"))
            passed = self._names_passed_at_call_sites(info)
            # a decorated method's `static_argnums` count `self` (jit sees the plain function)
            offset = 1 if decorated and info.is_method and not info.is_staticmethod else 0
            for i, name in enumerate(positional):
                if i + offset in static_nums or name in static_names:
                    continue
                p = info.param(name)
                if p is not None and is_literal(p.default) and name not in passed:
                    continue
                traced.add(name)
            for name in kwonly:
                p = info.param(name)
                if name in static_names or (p is not None and is_literal(p.default) and name not in passed):
                    continue
                traced.add(name)
        elif spec.params is Params.IN_AXES:
            axes = opt(spec.axes_position if not decorated else None, "in_axes")
            static_nums = literal_ints(opt(None, "static_broadcasted_argnums")) or set()
            mapped = _mapped_positions(axes, len(positional))
            passed = self._names_passed_at_call_sites(info)
            for i, name in enumerate(positional):
                p = info.param(name)
                if p is not None and is_literal(p.default) and name not in passed:
                    continue  # `mode='bar'` never passed: the default, a Python value, is used
                if mapped[i] and i not in static_nums:
                    traced.add(name)
        elif spec.params is Params.ARGNUMS:
            nums = literal_ints(opt(spec.axes_position if not decorated else None, "argnums"))
            if nums is None:
                nums = set(range(len(positional)))
            elif not nums:
                nums = {0}
            traced.update(name for i, name in enumerate(positional) if i in nums)
        elif spec.params is Params.FIRST:
            traced.update(positional[:1])
        else:  # FILTER, OPERANDS
            arrays = self._arrays_passed_at_call_sites(info) if spec.params is Params.FILTER else set()
            static_nums: set[int] = set()
            if spec.static_keyword:  # custom_vjp's `nondiff_argnums`
                static_nums = literal_ints(opt(None, spec.static_keyword)) or set()
            for i, name in enumerate(positional + (kwonly if spec.params is Params.FILTER else [])):
                p = info.param(name)
                if p is None or p.default is not None or i in static_nums:
                    continue
                if spec.params is Params.FILTER and (
                    annotated_static(p)
                    or (name in _FLAG_NAMES and not annotated_array(p) and name not in arrays)
                ):
                    continue  # eqx.filter_* keep Python bools/ints static: a flag stays a flag
                traced.add(name)
            if spec.qualname in ("jax.lax.scan", "flax.nnx.scan") and call is not None and not decorated:
                xs = call_arg(call, 2, "xs")
                if (xs is None or (isinstance(xs, cst.Name) and xs.value == "None")) and len(positional) > 1:
                    traced.discard(positional[1])
        params = {}
        for name in traced:
            if bound.closed(info, name):
                continue  # `partial(f, block_k=128)`: a Python value closed over, not an argument
            p = info.param(name)
            params[name] = ARRAY if p is not None and annotated_array(p) else TRACED
        if info.transform is None:
            info.transform = spec
        self._mark(info, params, via, None, force=True)

    def _names_passed_at_call_sites(self, info: FunctionInfo) -> set[str]:
        """Parameter names some call in this file passes explicitly to `info`'s function."""
        if not isinstance(info.node, cst.FunctionDef):
            return set()
        passed: set[str] = set()
        positional = info.positional
        for call, _scope in self.calls:
            func = call.func
            name = func.attr.value if isinstance(func, cst.Attribute) else (
                func.value if isinstance(func, cst.Name) else None)
            if name != info.name:
                continue
            pos, kw = call_args(call)
            passed.update(positional[: len(pos)])
            passed.update(kw)
        return passed

    def _instance_call(self, name: str, scope: Scope) -> list[tuple[FunctionInfo, int]]:
        """`m(x, flag)` where `m` holds an instance of a module class of this file: its
        `__call__`. `m` is assigned `Cls(...)`, or is a parameter that every
        call of its function in this file passes `Cls(...)` (or a name assigned it) for."""
        s: Scope | None = scope
        values: list[tuple[cst.BaseExpression, Scope]] = []
        while s is not None:
            info = self.functions.get(s) if isinstance(s, (cst.FunctionDef, cst.Lambda)) else None
            if info is not None and info.param(name) is not None:
                values = self._passed_for(info, name)
                break
            if not isinstance(s, cst.ClassDef) and name in self.assigned.get(s, {}):
                value = self._lookup_assigned(name, s)
                values = [(value, s)] if value is not None else []
                break
            if isinstance(s, cst.Module):
                break
            s = self.scope_of_node.get(s)
        classes = set()
        for value, where in values:
            if isinstance(value, cst.Name):
                value = self._lookup_assigned(value.value, where)
            cls = self._lookup_class(value.func.value, where) if (
                isinstance(value, cst.Call) and isinstance(value.func, cst.Name)) else None
            if cls is None or self.class_family(cls) is None:
                return []
            classes.add(cls)
        if len(classes) != 1:
            return []
        method = self._method(classes.pop(), "__call__")
        return [(self.functions[method], NO_BINDING)] if method is not None else []

    def _passed_for(self, info: FunctionInfo, name: str) -> list[tuple[cst.BaseExpression, Scope]]:
        """The expressions this file's calls of `info`'s function pass for parameter `name`."""
        if not isinstance(info.node, cst.FunctionDef) or info.is_method:
            return []
        index = info.positional.index(name) if name in info.positional else None
        out = []
        for call, where in self.calls:
            if not (isinstance(call.func, cst.Name) and call.func.value == info.name):
                continue
            if any(a.star for a in call.args):
                return []
            value = call_arg(call, index, name)
            if value is not None:
                out.append((value, where))
        return out

    def _arrays_passed_at_call_sites(self, info: FunctionInfo) -> set[str]:
        """Parameter names some call in this file passes a JAX array to (`jnp.array(True)`,
        `jax.random.bernoulli(...)`, `x > 0` on one): `eqx.filter_jit` traces those, flag
        names included."""
        if not isinstance(info.node, cst.FunctionDef):
            return set()
        out: set[str] = set()
        for call, _scope in self.calls:
            func = call.func
            name = func.attr.value if isinstance(func, cst.Attribute) else (
                func.value if isinstance(func, cst.Name) else None)
            if name != info.name or any(a.star for a in call.args):
                continue
            pos, kw = call_args(call)
            for param, a in [*zip(info.positional, pos), *kw.items()]:
                if self._array_evidence(a.value):
                    out.add(param)
        return out

    def _array_evidence(self, e: cst.BaseExpression, depth: int = 0) -> bool:
        """`e` visibly evaluates to a JAX array: a `jax.*` call, or a comparison, arithmetic or
        negation with such an operand."""
        if depth > 4:
            return False
        if isinstance(e, cst.Call):
            q = self.names.qualname(e.func)
            return q is not None and q.startswith("jax.") and q not in _NOT_ARRAY_CALLS
        if isinstance(e, cst.Comparison):
            return self._array_evidence(e.left, depth + 1) or any(
                self._array_evidence(c.comparator, depth + 1) for c in e.comparisons)
        if isinstance(e, cst.BinaryOperation):
            return self._array_evidence(e.left, depth + 1) or self._array_evidence(e.right, depth + 1)
        if isinstance(e, cst.UnaryOperation):
            return self._array_evidence(e.expression, depth + 1)
        return False

    def _mark(self, info: FunctionInfo, params: dict[str, int], via: str,
              captures: dict[str, int] | None, force: bool = False) -> None:
        grew = False
        if not info.traced:
            info.traced = True
            info.via = via
            grew = True
        for name, kind in params.items():
            if info.traced_params.get(name, -1) < kind:
                info.traced_params[name] = kind
                grew = True
        for name, kind in (captures or {}).items():
            if info.captures.get(name, -1) < kind:
                info.captures[name] = kind
                grew = True
        if (grew or force) and info not in self._worklist:
            self._worklist.append(info)

    # ------------------------------------------------------- flow callbacks
    def _on_call(self, flow: "Flow", call: cst.Call, arg_kinds: list[tuple[cst.Arg, int]]) -> None:
        """A call inside a traced function: pass tracedness on to functions of this file."""
        scope = flow.info.node
        q = self.names.qualname(call.func)
        if q in HOST_CALLBACKS or q in TRANSFORMS or q in PARTIALS:
            return  # `partial(f, x)` calls nothing: what receives it decides (see below)
        callees = self._resolve_fn(call.func, scope)
        if not callees and isinstance(call.func, cst.Name):
            callees = self._instance_call(call.func.value, scope)
        for info, bound in callees:
            positional = info.positional[bound.positional:]
            explicit = {a.keyword.value for a, _k in arg_kinds if a.keyword is not None}
            params: dict[str, int] = {}
            index = 0
            for arg, kind in arg_kinds:
                if arg.star == "*":
                    if kind:
                        params.update({n: TRACED for n in positional[index:]})
                    continue
                if arg.star == "**":
                    continue
                if arg.keyword is not None:
                    if kind:
                        params[arg.keyword.value] = kind
                    continue
                if index < len(positional) and kind:
                    params[positional[index]] = kind
                index += 1
            for name in list(params):
                p = info.param(name)
                if p is not None and never_traced(p):
                    del params[name]  # `mode: str`: the caller's value is a Python string
                elif bound.closed(info, name) and name not in explicit:
                    del params[name]  # bound by `partial(f, name=...)` and not overridden here
            captures = flow.captures_for(info)
            if params or captures or not info.traced:
                self._mark(info, params, f"called from `{flow.info.name}`", captures)
        # A function value passed along with traced arguments (jax.tree.map(lambda p: ..., params))
        if any(kind for _arg, kind in arg_kinds):
            leaves = self._tree_map_leaves(q, arg_kinds)
            for arg, _kind in arg_kinds:
                if isinstance(arg.value, (cst.Lambda, cst.Name)) or (
                    isinstance(arg.value, cst.Call) and self.names.qualname(arg.value.func) in PARTIALS
                ):
                    for info, bound in self._resolve_fn(arg.value, scope):
                        if info.node is call.func:
                            continue
                        positional = info.positional[bound.positional:]
                        if leaves is not None and arg is arg_kinds[0][0]:
                            # `tree_map(f, t1, t2)` calls `f(leaf1, leaf2)`: param i gets tree i's leaves
                            params = {n: TRACED for n, k in zip(positional, leaves) if k}
                        else:
                            params = {n: TRACED for n in positional
                                      if (p := info.param(n)) is not None and p.default is None}
                        if q is not None and q.endswith("_with_path") and positional:
                            params.pop(positional[0], None)  # the key path: static
                        for n in list(params):
                            if bound.closed(info, n):
                                del params[n]
                        self._mark(info, params, f"called with traced values in `{flow.info.name}`",
                                   flow.captures_for(info))

    def _tree_map_leaves(self, q: str | None, arg_kinds: list[tuple[cst.Arg, int]]) -> list[int] | None:
        """For `jax.tree.map(f, *trees, is_leaf=...)`: the kinds of the arguments `f` receives,
        position by position (a key path first for `*_with_path`); None for other calls."""
        if q not in TREE_MAPS or not arg_kinds or arg_kinds[0][0].keyword is not None:
            return None
        trees = arg_kinds[1:]
        if any(a.star for a, _k in trees):
            return None
        kinds = [k for a, k in trees if a.keyword is None]
        return [STATIC] + kinds if q.endswith("_with_path") else kinds


def _mapped_positions(axes: cst.BaseExpression | None, n: int) -> list[bool]:
    """For each positional parameter, whether `in_axes` maps it (None means broadcast)."""
    if axes is None:
        return [True] * n
    if isinstance(axes, cst.Name) and axes.value == "None":
        return [False] * n
    if isinstance(axes, (cst.Integer, cst.UnaryOperation)):
        return [True] * n
    if isinstance(axes, (cst.Tuple, cst.List)):
        out = []
        for el in axes.elements:
            v = el.value
            out.append(not (isinstance(v, cst.Name) and v.value == "None"))
        return (out + [True] * n)[:n]
    return [True] * n
