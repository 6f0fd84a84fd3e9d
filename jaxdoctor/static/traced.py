"""Which functions JAX traces, and which values inside them are tracers (DESIGN §3).

Built once per file, before the rules walk, and shared by every rule:

1. An index walk records imports, every function, class, and call, by scope.
2. *Entries*: functions decorated by or passed to a transform (`transforms.TRANSFORMS`), and
   `__call__` of an NNX / Linen / Equinox module. Each transform decides which parameters are
   tracers: `static_argnums`, `in_axes=None`, `argnums`, `eqx.filter_*` semantics.
3. A flow pass over each traced function, statement by statement: a name assigned from a traced
   value is traced; re-assigned from a static one, it is not. `.shape`, `.ndim`, `.dtype`,
   `len()`, `is None`, `isinstance()` are static. Calls to functions of the same file pass
   tracedness on to the callee's parameters (a worklist runs to a fixed point), and nested
   functions see the traced names they close over.

Values have a *kind*: 0 static, 1 traced but maybe a pytree (a parameter, `state.field`),
2 certainly an array (arithmetic, comparisons, `jnp.*` results). Rules that flag truth-testing
ask for kind 2: `if params:` on a dict of tracers is fine, `if x > 0:` is not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable, Iterator

import libcst as cst

from jaxdoctor.static.names import ImportTable
from jaxdoctor.static.transforms import (
    HOST_CALLBACKS,
    MODULE_BASES,
    PARTIALS,
    TRANSFORMS,
    Params,
    Transform,
)
from jaxdoctor.static.walker import walk

STATIC, TRACED, ARRAY = 0, 1, 2

Scope = cst.Module | cst.FunctionDef | cst.Lambda | cst.ClassDef
FunctionNode = cst.FunctionDef | cst.Lambda

_STATIC_ATTRS = frozenset(
    {"shape", "ndim", "dtype", "size", "itemsize", "nbytes", "aval", "sharding", "weak_type",
     "devices", "device", "is_fully_replicated", "committed"}
)
_ARRAY_ATTRS = frozenset({"T", "mT", "real", "imag", "at", "flat", "value"})
#: Parameter names whose attributes are configuration, never array leaves.
_STATIC_ROOTS = frozenset(
    {"config", "cfg", "conf", "configs", "args", "hparams", "hp", "opts", "options", "settings",
     "flags", "FLAGS", "model_config"}
)
#: Attribute names that are hyperparameters on any object (a model's `.num_layers`, `.dim`,
#: `.use_bias`): Python data in NNX graphdefs, Equinox static fields and frozen configs alike.
_HYPERPARAMETER = re.compile(
    r"^(num|n|use|is|has)_|_(dim|dims|size|layers|heads|features|rate)$"
    r"|^(dim|features|depth|width|hidden_size|embed_dim|vocab_size|training|deterministic)$"
)
_ARRAY_METHODS = frozenset(
    {
        "sum", "mean", "max", "min", "any", "all", "astype", "reshape", "dot", "squeeze",
        "argmax", "argmin", "transpose", "ravel", "flatten", "clip", "round", "std", "var",
        "prod", "cumsum", "cumprod", "sort", "argsort", "take", "conj", "swapaxes", "repeat",
        "nonzero", "set", "add", "multiply", "divide", "power", "get", "apply", "min", "ptp",
        "trace", "diagonal", "view", "block_until_ready", "__getitem__", "__array__",
    }
)
#: Calls whose result is static whatever their arguments (they look at shapes or types).
_STATIC_CALLS = frozenset(
    {
        "builtins.len", "builtins.isinstance", "builtins.issubclass", "builtins.type",
        "builtins.id", "builtins.hasattr", "builtins.callable", "builtins.repr", "builtins.str",
        "builtins.print", "builtins.format", "builtins.float", "builtins.int", "builtins.bool",
        "builtins.complex", "jax.numpy.shape", "jax.numpy.ndim", "jax.numpy.size",
        "jax.numpy.result_type", "jax.numpy.issubdtype", "jax.numpy.dtype", "jax.numpy.iscomplexobj",
        "numpy.shape", "numpy.ndim", "numpy.size", "numpy.issubdtype", "numpy.result_type",
        "jax.eval_shape", "flax.nnx.eval_shape", "equinox.filter_eval_shape",
        "jax.tree_util.tree_structure", "jax.tree.structure", "jax.ShapeDtypeStruct",
        "jax.typeof", "jax.core.get_aval", "equinox.is_array", "equinox.is_inexact_array",
        "jax.dtypes.issubdtype", "jax.debug.print", "jax.debug.callback", "jax.debug.breakpoint",
    }
)
#: methods whose result is Python data even on a pytree of tracers: a dict's keys, and the
#: ahead-of-time chain (`f.lower(x).compile().cost_analysis()`)
_STATIC_METHODS = frozenset({"keys", "lower", "compile", "cost_analysis", "memory_analysis", "as_text"})
_ARRAY_MODULES = ("jax.numpy", "jax.lax", "jax.nn", "jax.random", "jax.scipy", "jax.image",
                  "jax.ops")
_ARRAY_ANNOTATIONS = ("Array", "ArrayLike", "ndarray", "Float", "Int", "Bool", "Shaped",
                      "Num", "Real", "Inexact", "Integer", "Complex", "UInt", "Key", "PRNGKeyArray")
_STATIC_ANNOTATIONS = frozenset(
    {"bool", "int", "str", "float", "Callable", "type", "Literal", "Sequence", "tuple", "Tuple",
     "Hashable", "Shape", "bytes", "None", "Optional"}
)
#: `jax.*` calls whose result is not an array (for call-site evidence)
_NOT_ARRAY_CALLS = frozenset(
    {"jax.jit", "jax.vmap", "jax.grad", "jax.devices", "jax.device_count", "jax.tree.map",
     "jax.tree_util.tree_map", "jax.numpy.shape", "jax.numpy.ndim", "jax.numpy.size",
     "jax.numpy.dtype", "jax.default_backend", "jax.process_index"}
)
#: Parameter names that, in a module's `__call__`, are Python flags by convention.
_FLAG_NAMES = frozenset(
    {"train", "training", "is_training", "deterministic", "inference", "eval_mode", "decode",
     "use_running_average", "return_all", "return_attention", "return_state", "mode", "init",
     "init_cache", "use_cache", "output_attentions", "output_hidden_states", "return_dict"}
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


def is_literal(expr: cst.BaseExpression | None) -> bool:
    """A Python literal usable as a static flag default: True/False/None, numbers, strings."""
    if expr is None:
        return False
    if isinstance(expr, cst.Name):
        return expr.value in ("True", "False", "None")
    if isinstance(expr, (cst.Integer, cst.Float, cst.Imaginary, cst.SimpleString,
                         cst.ConcatenatedString)):
        return True
    if isinstance(expr, cst.UnaryOperation) and isinstance(expr.operator, cst.Minus):
        return is_literal(expr.expression)
    if isinstance(expr, (cst.Tuple, cst.List)):
        return all(is_literal(e.value) for e in expr.elements)
    return False


def _literal_ints(expr: cst.BaseExpression | None) -> set[int] | None:
    """`1` → {1}; `(0, 2)` → {0, 2}; anything not literal → None."""
    if expr is None:
        return set()
    if isinstance(expr, cst.Integer):
        return {int(expr.value, 0)}
    if isinstance(expr, (cst.Tuple, cst.List)):
        out: set[int] = set()
        for el in expr.elements:
            if not isinstance(el.value, cst.Integer):
                return None
            out.add(int(el.value.value, 0))
        return out
    return None


def _literal_strs(expr: cst.BaseExpression | None) -> set[str]:
    if expr is None:
        return set()
    if isinstance(expr, cst.SimpleString):
        return {expr.evaluated_value} if isinstance(expr.evaluated_value, str) else set()
    if isinstance(expr, (cst.Tuple, cst.List)):
        return {s for el in expr.elements for s in _literal_strs(el.value)}
    return set()


def _annotation_names(param: cst.Param) -> set[str]:
    if param.annotation is None:
        return set()
    names: set[str] = set()
    stack: list[cst.CSTNode] = [param.annotation.annotation]
    while stack:
        node = stack.pop()
        if isinstance(node, cst.Name):
            names.add(node.value)
        elif isinstance(node, cst.Attribute):
            names.add(node.attr.value)
            stack.append(node.value)
        elif isinstance(node, cst.Subscript):
            stack.append(node.value)
            stack.extend(e.slice.value for e in node.slice if isinstance(e.slice, cst.Index))
        elif isinstance(node, cst.BinaryOperation):
            stack.extend((node.left, node.right))
        elif isinstance(node, (cst.SimpleString, cst.ConcatenatedString)):
            return {"?"}  # string annotations: don't guess
    return names


def _annotated_array(param: cst.Param) -> bool:
    return any(n in _ARRAY_ANNOTATIONS for n in _annotation_names(param))


def _annotated_static(param: cst.Param) -> bool:
    names = _annotation_names(param)
    return bool(names) and names <= _STATIC_ANNOTATIONS and not _annotated_array(param)


_FIELD_CALLS = frozenset({"flax.struct.field", "equinox.field", "dataclasses.field"})
#: annotations a tracer never satisfies (unlike `int`/`float`, often written for traced scalars)
_NEVER_TRACED_ANNOTATIONS = frozenset({"str", "bytes", "Literal", "Callable", "type", "None", "Optional"})


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


def _never_traced(param: cst.Param) -> bool:
    names = _annotation_names(param)
    return bool(names) and names <= _NEVER_TRACED_ANNOTATIONS


def _args(call: cst.Call) -> tuple[list[cst.Arg], dict[str, cst.Arg]]:
    positional = [a for a in call.args if a.keyword is None and not a.star]
    keywords = {a.keyword.value: a for a in call.args if a.keyword is not None}
    return positional, keywords


def call_arg(call: cst.Call, position: int | None, keyword: str) -> cst.BaseExpression | None:
    """The argument given at `position` or as `keyword=`, if any."""
    positional, keywords = _args(call)
    if keyword in keywords:
        return keywords[keyword].value
    if position is not None and position < len(positional):
        return positional[position].value
    return None


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
        return _Evaluator(self, None, self._lookup_recorded).kind(expr)

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

    def _lookup_def(self, name: str, scope: Scope | None) -> FunctionNode | None:
        while scope is not None:
            if not isinstance(scope, cst.ClassDef) or scope is None:
                found = self.defs.get(scope, {}).get(name)
                if found is not None:
                    return found
            if isinstance(scope, cst.Module):
                return None
            scope = self.scope_of_node.get(scope)
        return None

    def _lookup_class(self, name: str, scope: Scope | None) -> cst.ClassDef | None:
        while scope is not None:
            found = self.class_names.get(scope, {}).get(name)
            if found is not None:
                return found
            if isinstance(scope, cst.Module):
                return None
            scope = self.scope_of_node.get(scope)
        return None

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
        while scope is not None:
            values = self.assigned.get(scope, {}).get(name) if not isinstance(scope, cst.ClassDef) else None
            if values:
                return values[0] if len(values) == 1 else None
            if isinstance(scope, cst.Module):
                return None
            scope = self.scope_of_node.get(scope)
        return None

    def _resolve_fn(self, expr: cst.BaseExpression, scope: Scope,
                    depth: int = 0) -> list[tuple[FunctionInfo, int]]:
        """(function, number of positional args already bound by `partial`) pairs."""
        if depth > 4:
            return []
        if isinstance(expr, cst.Lambda):
            return [(self.functions[expr], 0)]
        if isinstance(expr, cst.Name):
            node = self._lookup_def(expr.value, scope)
            if node is not None:
                return [(self.functions[node], 0)]
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
                        return [(self.functions[node], 0)]
            return []
        if isinstance(expr, cst.Call):
            q = self.names.qualname(expr.func)
            if q in PARTIALS and expr.args and expr.args[0].keyword is None:
                bound = sum(1 for a in expr.args[1:] if a.keyword is None and not a.star)
                return [(f, n + bound) for f, n in self._resolve_fn(expr.args[0].value, scope, depth + 1)]
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
            positional, keywords = _args(call)
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
                    self._enter(info, spec, call, 0, f"`{spec.qualname}`", decorated=True)
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
                    if p is None or p.default is not None or _annotated_static(p) or name in _FLAG_NAMES:
                        continue
                    params[name] = ARRAY if _annotated_array(p) else TRACED
                for p in info.node.params.kwonly_params:
                    if p.default is None and not _annotated_static(p) and p.name.value not in _FLAG_NAMES:
                        params[p.name.value] = ARRAY if _annotated_array(p) else TRACED
                self._mark(info, params, f"the `{family}` module method `{info.cls.name.value}.{info.name}`", None)
        # 4. flow, to a fixed point
        budget = 20 * max(1, len(self.functions))
        while self._worklist and budget > 0:
            budget -= 1
            info = self._worklist.pop()
            _Flow(self, info).run()

    def _apply(self, spec: Transform, call: cst.Call, expr: cst.BaseExpression, scope: Scope) -> None:
        # nested transforms: jax.jit(jax.grad(f)) traces f under both
        if isinstance(expr, cst.Call):
            inner = self.names.qualname(expr.func)
            if inner in TRANSFORMS:
                inner_spec = TRANSFORMS[inner]
                positional, keywords = _args(expr)
                for i in inner_spec.fn_positions:
                    if i < len(positional):
                        self._apply(spec, call, positional[i].value, scope)
                return
        for info, bound in self._resolve_fn(expr, scope):
            self._enter(info, spec, call, bound, f"`{spec.qualname}`", decorated=False)

    def _enter(self, info: FunctionInfo, spec: Transform, call: cst.Call | None, bound: int,
               via: str, decorated: bool) -> None:
        """Mark `info` traced by `spec`, applied with the arguments of `call` (if any)."""
        positional = info.positional[bound:]
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
            static_nums = _literal_ints(opt(None, "static_argnums")) or set()
            static_names = _literal_strs(opt(None, "static_argnames"))
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
            static_nums = _literal_ints(opt(None, "static_broadcasted_argnums")) or set()
            mapped = _mapped_positions(axes, len(positional))
            for i, name in enumerate(positional):
                if mapped[i] and i not in static_nums:
                    traced.add(name)
        elif spec.params is Params.ARGNUMS:
            nums = _literal_ints(opt(spec.axes_position if not decorated else None, "argnums"))
            if nums is None:
                nums = set(range(len(positional)))
            elif not nums:
                nums = {0}
            traced.update(name for i, name in enumerate(positional) if i in nums)
        elif spec.params is Params.FIRST:
            traced.update(positional[:1])
        else:  # FILTER, OPERANDS
            arrays = self._arrays_passed_at_call_sites(info) if spec.params is Params.FILTER else set()
            for name in positional + (kwonly if spec.params is Params.FILTER else []):
                p = info.param(name)
                if p is None or p.default is not None:
                    continue
                if spec.params is Params.FILTER and (
                    _annotated_static(p)
                    or (name in _FLAG_NAMES and not _annotated_array(p) and name not in arrays)
                ):
                    continue  # eqx.filter_* keep Python bools/ints static: a flag stays a flag
                traced.add(name)
            if spec.qualname in ("jax.lax.scan", "flax.nnx.scan") and call is not None and not decorated:
                xs = call_arg(call, 2, "xs")
                if (xs is None or (isinstance(xs, cst.Name) and xs.value == "None")) and len(positional) > 1:
                    traced.discard(positional[1])
        params = {}
        for name in traced:
            p = info.param(name)
            params[name] = ARRAY if p is not None and _annotated_array(p) else TRACED
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
            pos, kw = _args(call)
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
        return [(self.functions[method], 0)] if method is not None else []

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
            pos, kw = _args(call)
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
    def _on_call(self, flow: "_Flow", call: cst.Call, arg_kinds: list[tuple[cst.Arg, int]]) -> None:
        """A call inside a traced function: pass tracedness on to functions of this file."""
        scope = flow.info.node
        q = self.names.qualname(call.func)
        if q in HOST_CALLBACKS or q in TRANSFORMS:
            return
        callees = self._resolve_fn(call.func, scope)
        if not callees and isinstance(call.func, cst.Name):
            callees = self._instance_call(call.func.value, scope)
        for info, bound in callees:
            positional = info.positional[bound:]
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
                if p is not None and _never_traced(p):
                    del params[name]  # `mode: str`: the caller's value is a Python string
            captures = flow.captures_for(info)
            if params or captures or not info.traced:
                self._mark(info, params, f"called from `{flow.info.name}`", captures)
        # A function value passed along with traced arguments (jax.tree.map(lambda p: ..., params))
        if any(kind for _arg, kind in arg_kinds):
            for arg, _kind in arg_kinds:
                if isinstance(arg.value, (cst.Lambda, cst.Name)):
                    for info, _bound in self._resolve_fn(arg.value, scope):
                        if info.node is call.func:
                            continue
                        params = {n: TRACED for n in info.positional
                                  if (p := info.param(n)) is not None and p.default is None}
                        if q is not None and q.endswith("_with_path") and info.positional:
                            params.pop(info.positional[0], None)  # the key path: static
                        self._mark(info, params, f"called with traced values in `{flow.info.name}`",
                                   flow.captures_for(info))


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


class _Evaluator:
    """Kind of an expression, given a lookup for names. Shared by the flow pass (which
    records what it sees) and by rules' queries (which read those records)."""

    def __init__(self, model: SemanticModel, flow: "_Flow | None", lookup) -> None:
        self.model = model
        self.flow = flow
        self.lookup = lookup
        self.names = model.names

    def kind(self, e: cst.BaseExpression) -> int:
        method = getattr(self, "_" + type(e).__name__, None)
        if method is None:
            return STATIC
        return method(e)

    def _Name(self, e: cst.Name) -> int:
        return self.lookup(e)

    def _Attribute(self, e: cst.Attribute) -> int:
        base = self.kind(e.value)
        if base == STATIC or e.attr.value in _STATIC_ATTRS or e.attr.value in self.model.static_fields:
            return STATIC
        if e.attr.value not in _ARRAY_ATTRS and (
            (isinstance(e.value, cst.Name) and e.value.value in _STATIC_ROOTS)
            or _HYPERPARAMETER.search(e.attr.value)
        ):
            return STATIC  # `config.dropout`, `model.num_layers`: Python attributes, not leaves
        if e.attr.value in _ARRAY_ATTRS or base == ARRAY:
            return ARRAY
        return TRACED

    def _Subscript(self, e: cst.Subscript) -> int:
        base = self.kind(e.value)
        index = STATIC
        for el in e.slice:
            if isinstance(el.slice, cst.Index):
                index = max(index, self.kind(el.slice.value))
            else:
                for part in (el.slice.lower, el.slice.upper, el.slice.step):
                    if part is not None:
                        index = max(index, self.kind(part))
        if base == ARRAY or (index and base == STATIC and not self._is_self_attr(e.value)):
            return ARRAY if (base or index) else STATIC
        return base

    @staticmethod
    def _is_self_attr(e: cst.BaseExpression) -> bool:
        return isinstance(e, cst.Attribute) and isinstance(e.value, cst.Name) and e.value.value == "self"

    def _Call(self, e: cst.Call) -> int:
        # calling a traced value (a module or pytree of functions passed in) gives a traced value
        func_kind = self.kind(e.func)
        arg_kinds = [(a, self.kind(a.value)) for a in e.args]
        if self.flow is not None:
            self.model._on_call(self.flow, e, arg_kinds)
        q = self.names.qualname(e.func)
        if q in _STATIC_CALLS:
            return STATIC
        any_arg = max((k for _a, k in arg_kinds), default=STATIC)
        if isinstance(e.func, cst.Attribute) and q is None:
            method = e.func.attr.value
            base = self.kind(e.func.value)
            if method in ("item", "tolist", "__bool__", "__int__", "__float__", "__index__"):
                return STATIC
            if method in _STATIC_METHODS and base:
                return STATIC
            if base:
                return ARRAY if method in _ARRAY_METHODS or base == ARRAY else TRACED
            return TRACED if any_arg else STATIC
        if q is not None and any(q.startswith(m + ".") for m in _ARRAY_MODULES):
            return ARRAY if any_arg else STATIC
        return TRACED if (any_arg or func_kind) else STATIC

    def _BinaryOperation(self, e: cst.BinaryOperation) -> int:
        return ARRAY if max(self.kind(e.left), self.kind(e.right)) else STATIC

    def _Comparison(self, e: cst.Comparison) -> int:
        kinds = [self.kind(e.left)] + [self.kind(c.comparator) for c in e.comparisons]
        if all(isinstance(c.operator, (cst.Is, cst.IsNot)) for c in e.comparisons):
            return STATIC
        if any(isinstance(c.operator, (cst.In, cst.NotIn)) for c in e.comparisons):
            # `"key" in batch` on a dict of tracers is a static membership test
            return ARRAY if kinds[0] == ARRAY else STATIC
        return ARRAY if max(kinds) else STATIC

    def _UnaryOperation(self, e: cst.UnaryOperation) -> int:
        k = self.kind(e.expression)
        if isinstance(e.operator, cst.Not):
            return STATIC
        return ARRAY if k else STATIC

    def _BooleanOperation(self, e: cst.BooleanOperation) -> int:
        return max(self.kind(e.left), self.kind(e.right))

    def _IfExp(self, e: cst.IfExp) -> int:
        self.kind(e.test)
        return max(self.kind(e.body), self.kind(e.orelse))

    def _NamedExpr(self, e: cst.NamedExpr) -> int:
        k = self.kind(e.value)
        if self.flow is not None:
            self.flow.bind(e.target, k)
        return k

    def _container(self, elements: Iterable[cst.CSTNode]) -> int:
        k = STATIC
        for el in elements:
            value = getattr(el, "value", None)
            if isinstance(el, (cst.DictElement,)):
                k = max(k, self.kind(el.key), self.kind(el.value))
            elif value is not None:
                k = max(k, self.kind(value))
        return TRACED if k else STATIC

    def _Tuple(self, e: cst.Tuple) -> int:
        return self._container(e.elements)

    _List = _Tuple
    _Set = _Tuple

    def _Dict(self, e: cst.Dict) -> int:
        return self._container(e.elements)

    def _Starred(self, e) -> int:
        return self.kind(e.value)

    def _StarredElement(self, e) -> int:
        return self.kind(e.value)

    def _FormattedString(self, e: cst.FormattedString) -> int:
        for part in e.parts:
            if isinstance(part, cst.FormattedStringExpression):
                self.kind(part.expression)
        return STATIC

    def _Await(self, e: cst.Await) -> int:
        return self.kind(e.expression)

    def _Lambda(self, e: cst.Lambda) -> int:
        if self.flow is not None:
            self.flow.closure(e)
        return STATIC

    def _comprehension(self, e, elts: list[cst.BaseExpression]) -> int:
        flow = self.flow
        saved = dict(flow.env) if flow is not None else None
        comp = e.for_in
        while comp is not None:
            it = self.kind(comp.iter)
            if flow is not None:
                flow.bind_iter(comp.target, comp.iter, it)
            for cond in comp.ifs:
                self.kind(cond.test)
            comp = comp.inner_for_in
        k = max((self.kind(x) for x in elts), default=STATIC)
        if flow is not None and saved is not None:
            flow.env = saved
        return TRACED if k else STATIC

    def _ListComp(self, e) -> int:
        return self._comprehension(e, [e.elt])

    _SetComp = _ListComp
    _GeneratorExp = _ListComp

    def _DictComp(self, e) -> int:
        return self._comprehension(e, [e.key, e.value])


class _Flow:
    """Statement-by-statement tracedness of names inside one traced function."""

    def __init__(self, model: SemanticModel, info: FunctionInfo) -> None:
        self.model = model
        self.info = info
        self.env: dict[str, int] = dict(info.captures)
        # parameters shadow captures
        for p in info.all_params():
            self.env.pop(p.name.value, None)
        self.env.update(info.traced_params)
        self.eval = _Evaluator(model, self, self._lookup)

    def _lookup(self, name: cst.Name) -> int:
        k = self.env.get(name.value, STATIC)
        self.model.name_kinds[name] = k
        return k

    def captures_for(self, callee: FunctionInfo) -> dict[str, int]:
        """Traced names of this function visible to a function nested in it."""
        node = callee.scope
        while node is not None and not isinstance(node, cst.Module):
            if node is self.info.node:
                return {k: v for k, v in self.env.items() if v}
            node = self.model.scope_of_node.get(node)
        return {}

    def closure(self, fn: FunctionNode) -> None:
        """A nested function is defined here: it sees the current traced names."""
        info = self.model.functions.get(fn)
        if info is None:
            return
        captured = {k: v for k, v in self.env.items() if v}
        if not captured:
            return
        before = dict(info.captures)
        for k, v in captured.items():
            if info.captures.get(k, -1) < v:
                info.captures[k] = v
        if info.traced and info.captures != before and info not in self.model._worklist:
            self.model._worklist.append(info)

    def run(self) -> None:
        node = self.info.node
        if isinstance(node, cst.Lambda):
            self.eval.kind(node.body)
            return
        for p in self.info.all_params():
            if p.default is not None:
                pass  # defaults are evaluated in the enclosing scope
        self.block(node.body)

    # ------------------------------------------------------------ statements
    def bind(self, target: cst.BaseExpression, kind: int) -> None:
        if isinstance(target, cst.Name):
            if kind:
                self.env[target.value] = kind
            else:
                self.env.pop(target.value, None)
        elif isinstance(target, (cst.Tuple, cst.List)):
            for el in target.elements:
                self.bind(el.value, TRACED if kind else STATIC)
        elif isinstance(target, cst.StarredElement):
            self.bind(target.value, TRACED if kind else STATIC)
        else:  # attribute / subscript targets: evaluate their parts
            self.eval.kind(target)

    def bind_iter(self, target: cst.BaseExpression, it: cst.BaseExpression, kind: int) -> None:
        """The target of `for target in it`: in `for k, v in d.items()` the key is a dict key
        (a string or tuple), static even when `d` holds tracers."""
        if (kind and isinstance(it, cst.Call) and isinstance(it.func, cst.Attribute)
                and it.func.attr.value == "items" and not it.args
                and isinstance(target, (cst.Tuple, cst.List)) and len(target.elements) == 2):
            self.bind(target.elements[0].value, STATIC)
            self.bind(target.elements[1].value, TRACED)
            return
        self.bind(target, TRACED if kind else STATIC)

    def block(self, body) -> None:
        if isinstance(body, cst.SimpleStatementSuite):
            for small in body.body:
                self.small(small)
            return
        stmts = body.body if isinstance(body, cst.IndentedBlock) else body
        for stmt in stmts:
            self.stmt(stmt)

    def branch(self, bodies: list) -> None:
        """Run alternative bodies from the same state; join by taking the larger kind."""
        start = dict(self.env)
        results = []
        for body in bodies:
            self.env = dict(start)
            if body is not None:
                self.block(body)
            results.append(self.env)
        merged: dict[str, int] = {}
        for env in results:
            for k, v in env.items():
                merged[k] = max(merged.get(k, 0), v)
        self.env = merged

    def stmt(self, s: cst.CSTNode) -> None:
        ev = self.eval.kind
        if isinstance(s, cst.SimpleStatementLine):
            for small in s.body:
                self.small(small)
        elif isinstance(s, cst.If):
            ev(s.test)
            orelse = s.orelse
            if isinstance(orelse, cst.If):
                self.branch([s.body, [orelse]])
            else:
                self.branch([s.body, orelse.body if orelse is not None else None])
        elif isinstance(s, cst.For):
            it = ev(s.iter)
            for _ in range(2):  # twice: names assigned late in the body reach its start
                self.bind_iter(s.target, s.iter, it)
                self.branch([s.body, None])
            if s.orelse is not None:
                self.block(s.orelse.body)
        elif isinstance(s, cst.While):
            for _ in range(2):
                ev(s.test)
                self.branch([s.body, None])
            if s.orelse is not None:
                self.block(s.orelse.body)
        elif isinstance(s, cst.With):
            for item in s.items:
                k = ev(item.item)
                if item.asname is not None:
                    self.bind(item.asname.name, k)
            self.block(s.body)
        elif isinstance(s, (cst.Try, cst.TryStar)):
            bodies = [s.body] + [h.body for h in s.handlers]
            if s.orelse is not None:
                bodies.append(s.orelse.body)
            self.branch(bodies)
            if s.finalbody is not None:
                self.block(s.finalbody.body)
        elif isinstance(s, cst.FunctionDef):
            self.closure(s)
            for dec in s.decorators:
                ev(dec.decorator)
            self.env.pop(s.name.value, None)
        elif isinstance(s, cst.ClassDef):
            self.env.pop(s.name.value, None)
        elif isinstance(s, cst.Match):
            ev(s.subject)
            self.branch([c.body for c in s.cases])

    def small(self, s: cst.CSTNode) -> None:
        ev = self.eval.kind
        if isinstance(s, cst.Assign):
            k = ev(s.value)
            for t in s.targets:
                self.bind(t.target, k)
        elif isinstance(s, cst.AnnAssign):
            if s.value is not None:
                self.bind(s.target, ev(s.value))
        elif isinstance(s, cst.AugAssign):
            k = max(ev(s.value), ev(s.target))
            self.bind(s.target, ARRAY if k else STATIC)
        elif isinstance(s, cst.Expr):
            ev(s.value)
        elif isinstance(s, cst.Return):
            if s.value is not None:
                ev(s.value)
        elif isinstance(s, cst.Assert):
            ev(s.test)
            if s.msg is not None:
                ev(s.msg)
        elif isinstance(s, cst.Raise):
            if s.exc is not None:
                ev(s.exc)
        elif isinstance(s, cst.Del):
            pass
        elif isinstance(s, (cst.Import, cst.ImportFrom)):
            if isinstance(s, cst.Import) or not isinstance(s.names, cst.ImportStar):
                for alias in s.names:
                    name = alias.asname.name if alias.asname is not None else alias.name
                    if isinstance(name, cst.Name):
                        self.env.pop(name.value, None)
