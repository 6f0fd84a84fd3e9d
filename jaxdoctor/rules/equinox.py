"""Equinox rules: Python-flag modules called with traced flags, and raw JAX transforms over
modules that hold non-array fields."""

from __future__ import annotations

import libcst as cst

from jaxdoctor.findings import Severity
from jaxdoctor.rules._modules import body_nodes, class_fields, find_class, methods
from jaxdoctor.static.values import TRACED
from jaxdoctor.static.index import ASSIGN, PARAM
from jaxdoctor.static.resolve import bind_args
from jaxdoctor.static.rule import LintRule
from jaxdoctor.static.syntax import call_arg
from jaxdoctor.static.index import FunctionInfo
from jaxdoctor.static.transforms import PARTIALS
from jaxdoctor.static.walker import iter_tree

#: Equinox layers whose `__call__` branches in Python on a flag argument
_FLAG_LAYERS = {"equinox.nn.Dropout": ("inference", "deterministic"), "equinox.nn.BatchNorm": ("inference",),
                "equinox.nn.MultiheadAttention": ("inference", "deterministic")}
#: flag parameter names users give their own modules
_USER_FLAGS = frozenset({"inference", "deterministic", "train", "training", "is_training", "eval_mode",
                         "dropout", "use_dropout", "enable_dropout"})

#: Equinox layers with leaves that are not arrays (measured with `jax.tree.leaves`)
_NON_ARRAY_LAYERS = {
    "equinox.nn.MLP": {"callable"},
    "equinox.nn.Lambda": {"callable"},
    "equinox.nn.Dropout": {"bool", "float"},
    "equinox.nn.MultiheadAttention": {"bool", "float"},
    "equinox.nn.BatchNorm": {"bool", "str"},
    **{f"equinox.nn.{k}{d}": {"callable", "int"} for k in ("MaxPool", "AvgPool", "AdaptiveMaxPool",
                                                           "AdaptiveAvgPool") for d in ("1d", "2d", "3d")},
}
_ANNOTATION_KINDS = {"Callable": "callable", "bool": "bool", "str": "str", "int": "int", "float": "float"}
#: which non-array leaves break which transform
_BREAKS = {
    "jax.jit": {"callable", "bool", "str"},
    "jax.grad": {"callable", "bool", "str", "int"},
    "jax.value_and_grad": {"callable", "bool", "str", "int"},
    "jax.vmap": {"callable", "bool", "str", "int", "float"},
}
_FILTERED = {"jax.jit": "eqx.filter_jit", "jax.grad": "eqx.filter_grad",
             "jax.value_and_grad": "eqx.filter_value_and_grad", "jax.vmap": "eqx.filter_vmap"}
_KIND_TEXT = {"callable": "functions", "bool": "Python bools", "str": "strings", "int": "Python ints",
              "float": "Python floats"}


def _flag_params(fn: cst.FunctionDef) -> set[str]:
    """Parameters of a module's `__call__` that it branches on in Python, or hands on as an
    `inference=`/`deterministic=` flag."""
    names = {p.name.value for p in (*fn.params.params, *fn.params.kwonly_params)}
    out: set[str] = set()
    for node in body_nodes(fn):
        tests: list[cst.CSTNode] = []
        if isinstance(node, (cst.If, cst.IfExp, cst.While)):
            tests.append(node.test)
        elif isinstance(node, cst.Call):
            tests.extend(a.value for a in node.args
                         if a.keyword is not None and a.keyword.value in ("inference", "deterministic"))
        for test in tests:
            for n in iter_tree(test):
                if isinstance(n, cst.Name) and n.value in names:
                    out.add(n.value)
    return out


class PythonFlagUnderScan(LintRule):
    code = "JD301"
    name = "python-flag-under-scan"
    severity = Severity.ERROR
    summary = "Equinox module with a Python-`if` flag (e.g. `Dropout(inference=...)`) called with a traced flag"
    fix_title = (
        "Keep the flag a Python bool: switch modes outside the loop with `eqx.nn.inference_mode(model)` "
        "or `eqx.tree_at`, and run one `scan` per mode (or select with `jax.lax.cond` on the traced flag)"
    )
    trace_fix_title = (
        "Keep the flag a Python bool (decide it outside `scan`/`jit`, e.g. with "
        "`eqx.nn.inference_mode`)"
    )
    requires = ("equinox",)

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        self._user_flags: dict[str, str] | None = None

    def _flags_of_user_modules(self) -> dict[str, str]:
        """flag name → class name, for the Equinox modules of this file that branch on it."""
        if self._user_flags is None:
            self._user_flags = {}
            for cls in self.ctx.semantic.classes:
                if self.ctx.semantic.class_family(cls) != "equinox":
                    continue
                call = methods(cls).get("__call__")
                if call is not None:
                    for flag in _flag_params(call) & _USER_FLAGS:
                        self._user_flags.setdefault(flag, cls.name.value)
        return self._user_flags

    def visit_Call(self, node: cst.Call) -> None:
        info = self.ctx.traced_function()
        if info is None:
            return
        semantic = self.ctx.semantic
        q = self.ctx.qualname(node.func)
        if q is not None:
            self._check_library_call(node, q, info)
            return
        if isinstance(node.func, cst.Call):
            inner = self.ctx.qualname(node.func.func)
            if inner not in _FLAG_LAYERS:
                return
            layer_flags: tuple[str, ...] = _FLAG_LAYERS[inner]
        else:
            layer_flags = ()
        scope = self.ctx.enclosing(cst.FunctionDef, cst.Lambda)
        if not isinstance(node.func, cst.Call) and self.ctx.resolve_functions(node.func):
            return  # a plain function of this file: JD101 follows the flag into it
        user = self._flags_of_user_modules()
        for arg in node.args:
            if arg.keyword is None:
                continue
            flag = arg.keyword.value
            owner = None
            if flag in layer_flags or flag == "inference":
                owner = "Equinox layers such as `Dropout` test"
            if flag in user:
                owner = f"`{user[flag]}` tests" if owner is None else f"{owner[:-5]} and `{user[flag]}` test"
            if owner is None or semantic.value(arg.value) < TRACED:
                continue
            self.report(
                node,
                f"`{self.ctx.code(node.func)}` gets the traced flag `{flag}={self.ctx.code(arg.value)}`"
                f"{_where(info)}, but {owner} it with a Python `if`: raises "
                f"`TracerBoolConversionError` inside the module, not at this line",
            )
            return
        # a flag passed positionally to a module class of this file: `layer(h, key, training)`
        cls = self._callee_class(node.func, scope)
        call = methods(cls).get("__call__") if cls is not None else None
        if call is None:
            return
        names = [p.name.value for p in (*call.params.posonly_params, *call.params.params)][1:]
        flags = {n for n in _flag_params(call) if n in _USER_FLAGS or _bool_annotated(call, n)}
        for i, arg in enumerate(a for a in node.args if a.keyword is None):
            if arg.star:
                return
            if i < len(names) and names[i] in flags and semantic.value(arg.value) >= TRACED:
                self.report(
                    node,
                    f"`{self.ctx.code(node.func)}` gets the traced value `{self.ctx.code(arg.value)}` as its "
                    f"flag `{names[i]}`{_where(info)}, but `{cls.name.value}` tests it with a Python `if`: "
                    f"raises `TracerBoolConversionError` inside the module, not at this line",
                )
                return

    def _callee_class(self, func: cst.BaseExpression, scope) -> cst.ClassDef | None:
        """The Equinox class of this file that `func` (a parameter annotated with it, a name
        assigned `Cls(...)`, or `self.field` annotated with it) is an instance of."""
        semantic = self.ctx.semantic
        ann = None
        if isinstance(func, cst.Name):
            for fn in reversed(self.ctx.ancestors):
                info = semantic.function(fn) if isinstance(fn, (cst.FunctionDef, cst.Lambda)) else None
                p = info.param(func.value) if info is not None else None
                if p is not None:
                    ann = p.annotation.annotation if p.annotation is not None else None
                    break
            else:
                value = semantic.assigned_value(func.value, scope or self.ctx.module, self.ctx.statement())
                ann = value.func if isinstance(value, cst.Call) else None
        elif isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name) and func.value.value == "self":
            owner = semantic.enclosing_class(scope) if scope is not None else None
            for field in class_fields(owner) if owner is not None else ():
                if field.target.value == func.attr.value:
                    ann = field.annotation.annotation
        if not isinstance(ann, cst.Name):
            return None
        cls = find_class(self.ctx, ann.value)
        return cls if cls is not None and semantic.class_family(cls) == "equinox" else None

    def _check_library_call(self, node: cst.Call, q: str, info: FunctionInfo) -> None:
        semantic = self.ctx.semantic
        value = None
        what = ""
        if q in _FLAG_LAYERS:  # eqx.nn.Dropout(p, inference=flag) built with a traced flag
            for flag in _FLAG_LAYERS[q]:
                value = call_arg(node, None, flag)
                if value is not None:
                    what = f"`{q.replace('equinox.', 'eqx.')}({flag}=...)`"
                    break
        elif q == "equinox.nn.inference_mode":
            value = call_arg(node, 1, "value")
            what = "`eqx.nn.inference_mode(..., value=...)`"
        elif q == "equinox.tree_at":
            where = call_arg(node, 0, "where")
            if where is not None and any(
                isinstance(n, cst.Attribute) and n.attr.value in ("inference", "deterministic")
                for n in iter_tree(where)
            ):
                value = call_arg(node, 2, "replace")
                what = "`eqx.tree_at` setting the `inference` field"
        if value is None or semantic.value(value) < TRACED:
            return
        self.report(
            node,
            f"{what} stores the traced value `{self.ctx.code(value)}` as the module's Python flag"
            f"{_where(info)}: calling the module raises `TracerBoolConversionError` inside Equinox",
        )


def _bool_annotated(fn: cst.FunctionDef, name: str) -> bool:
    for p in (*fn.params.params, *fn.params.kwonly_params):
        if p.name.value == name and p.annotation is not None:
            ann = p.annotation.annotation
            return isinstance(ann, cst.Name) and ann.value == "bool"
    return False


def _where(info: FunctionInfo) -> str:
    t = info.transform
    name = "a lambda" if info.name == "<lambda>" else f"`{info.name}`"
    if t is not None:
        return f" in {name}, traced by `{t.qualname}`"
    return f" in {name} ({info.via})" if info.via else ""


class RawTransformOnEqxModule(LintRule):
    code = "JD302"
    name = "raw-transform-on-eqx-module"
    severity = Severity.ERROR
    summary = "`jax.jit`/`grad`/`value_and_grad`/`vmap` over an Equinox module that has non-array fields"
    fix_title = (
        "Use `eqx.filter_jit`/`eqx.filter_grad`/`eqx.filter_value_and_grad`/`eqx.filter_vmap`, or "
        "`eqx.partition(model, eqx.is_array)` and transform only the array part"
    )
    trace_fix_title = (
        "Use `eqx.filter_jit`/`eqx.filter_grad`/`eqx.filter_vmap`, or `eqx.partition` the module "
        "into arrays and static parts around the JAX transform"
    )
    requires = ("equinox",)

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        #: (node to report, transform qualname, transform call or None, function or None,
        #: positional arguments `partial` bound before the transform)
        self._applications: list[tuple] = []
        self._class_kinds: dict[cst.ClassDef, set[str]] = {}

    # ------------------------------------------------------------ collection
    def visit_Call(self, node: cst.Call) -> None:
        q = self.ctx.qualname(node.func)
        if q in _BREAKS:
            fn = call_arg(node, 0, "fun")
            found = self.ctx.semantic.resolver.callees(fn, self.ctx.scope(), self.ctx.index.order.get(node, 1 << 30)) \
                if fn is not None else []
            if len(found) == 1:
                self._applications.append((node, q, node, found[0].info, found[0].bound.positional))
            else:
                self._applications.append((node, q, node, None, 0))

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        info = self.ctx.semantic.function(node)
        for dec in node.decorators:
            expr = dec.decorator
            call = expr if isinstance(expr, cst.Call) else None
            q = self.ctx.qualname(call.func if call is not None else expr)
            if q in PARTIALS and call is not None and call.args:
                q = self.ctx.qualname(call.args[0].value)
                call = None if not any(a.keyword for a in call.args) else call
            if q in _BREAKS:
                self._applications.append((dec, q, call, info, 0))
                return

    # ------------------------------------------------------------ decision
    def leave_Module(self, node: cst.Module) -> None:
        for report_node, q, call, info, bound in self._applications:
            positions = self._exposed_positions(q, call, info, decorated=report_node is not call)
            if positions is None:
                continue
            # the transform's arguments fill the parameters after those `partial` bound
            positions = {i + bound for i in positions}
            found = self._annotated(info, positions, q) or self._passed(report_node, call, info, positions, q)
            if found is None:
                continue
            arg, cls_name, kinds = found
            fn = f"`{info.name}`" if info is not None and info.name != "<lambda>" else "the function"
            kinds_text = ", ".join(_KIND_TEXT[k] for k in sorted(kinds))
            self.report(
                report_node,
                f"`{q}` over {fn} receives `{arg}`, an Equinox `{cls_name}` whose leaves include "
                f"{kinds_text}: JAX can't trace them (`TypeError: ... not a valid JAX type`, or "
                f"`TracerBoolConversionError` inside the module)",
                fix_title=f"Use `{_FILTERED[q]}` (it traces only the arrays), or split the module with "
                f"`eqx.partition(model, eqx.is_array)` and pass only the array part",
            )

    def _exposed_positions(self, q: str, call: cst.Call | None, info: FunctionInfo | None,
                           decorated: bool) -> set[int] | None:
        """Positional parameters that the transform turns into tracers (None: can't tell)."""
        def opt(position, keyword):
            if call is None:
                return None
            return call_arg(call, None if decorated else position, keyword)

        names = info.positional if info is not None else []
        if q == "jax.jit":
            static = opt(None, "static_argnums")
            static_names = opt(None, "static_argnames")
            if (static is not None and not _ints(static)) or static_names is not None and not names:
                return None
            out = set(range(max(len(names), 8))) - (_ints(static) or set())
            if static_names is not None:
                strs = {s.evaluated_value for s in iter_tree(static_names) if isinstance(s, cst.SimpleString)}
                out -= {i for i, n in enumerate(names) if n in strs}
            return out
        if q in ("jax.grad", "jax.value_and_grad"):
            argnums = opt(1, "argnums")
            if argnums is None:
                return {0}
            return _ints(argnums)
        axes = opt(1, "in_axes")
        if axes is None:
            return set(range(max(len(names), 8)))
        if isinstance(axes, cst.Integer):
            return set(range(max(len(names), 8)))
        if isinstance(axes, (cst.Tuple, cst.List)):
            return {i for i, el in enumerate(axes.elements)
                    if not (isinstance(el.value, cst.Name) and el.value.value == "None")}
        return None

    def _annotated(self, info, positions, q):
        if info is None:
            return None
        for i, name in enumerate(info.positional):
            p = info.param(name)
            if i not in positions or p is None or p.annotation is None:
                continue
            found = self._kinds_of_type(p.annotation.annotation)
            if found and found[1] & _BREAKS[q]:
                return name, found[0], found[1] & _BREAKS[q]
        return None

    def _passed(self, report_node, call, info, positions, q):
        """A call of the transformed function passing an Equinox module with non-array leaves
        at a traced position."""
        if info is None:
            return None
        names = info.positional
        for site, scope, order, callee in self.ctx.semantic.sites.get(info, ()):
            if callee.transform is None or callee.transform.qualname != q:
                continue
            if report_node is call and callee.options is not call:
                continue  # a call through another application of the transform
            args = bind_args(site, names, callee)
            for i, name in enumerate(names):
                if i not in positions or name not in args:
                    continue
                found = self._kinds_of_value(args[name], scope, order)
                if found and found[1] & _BREAKS[q]:
                    return self.ctx.code(args[name]), found[0], found[1] & _BREAKS[q]
        return None

    # ------------------------------------------------------------ module kinds
    def _kinds_of_value(self, expr, scope, order: int, depth: int = 0) -> tuple[str, set[str]] | None:
        """The Equinox class `expr` is an instance of and its non-array leaf kinds: through the
        binding that reaches it, a parameter's annotation, or what every caller passes."""
        if depth > 4:
            return None
        semantic = self.ctx.semantic
        if isinstance(expr, cst.Name):
            b = self.ctx.index.lookup(expr.value, scope, order)
            if b is None:
                return None
            if b.how == ASSIGN and b.path is None and b.value is not None:
                return self._kinds_of_value(b.value, b.scope, b.order, depth + 1)
            if b.how == PARAM:
                p = b.node
                if p.annotation is not None:
                    return self._kinds_of_type(p.annotation.annotation)
                fn = semantic.function(b.scope)
                if fn is None:
                    return None
                for site, s_scope, s_order, callee in semantic.sites.get(fn, ()):
                    arg = bind_args(site, fn.positional, callee).get(expr.value)
                    if arg is not None:
                        found = self._kinds_of_value(arg, s_scope, s_order, depth + 1)
                        if found:
                            return found
            return None
        if isinstance(expr, cst.Call):
            q = self.ctx.qualname(expr.func)
            if q == "equinox.nn.Sequential":
                for n in iter_tree(expr):
                    if n is not expr and isinstance(n, cst.Call):
                        found = self._kinds_of_value(n, scope, order, depth + 1)
                        if found:
                            return "eqx.nn.Sequential", found[1]
                return None
            return self._kinds_of_type(expr.func)
        return None

    def _kinds_of_type(self, expr) -> tuple[str, set[str]] | None:
        q = self.ctx.qualname(expr)
        if q in _NON_ARRAY_LAYERS:
            return q.replace("equinox.", "eqx."), _NON_ARRAY_LAYERS[q]
        if isinstance(expr, cst.Name):
            cls = find_class(self.ctx, expr.value)
            if cls is not None and self.ctx.semantic.class_family(cls) == "equinox":
                kinds = self._class_non_arrays(cls)
                if kinds:
                    return cls.name.value, kinds
        return None

    def _class_non_arrays(self, cls: cst.ClassDef) -> set[str]:
        if cls in self._class_kinds:
            return self._class_kinds[cls]
        self._class_kinds[cls] = set()
        kinds: set[str] = set()
        for base in cls.bases:
            found = self._kinds_of_type(base.value)
            if found:
                kinds |= found[1]
        for field in class_fields(cls):
            if field.value is not None and self._static_field(field.value):
                continue
            ann = field.annotation.annotation
            top = ann.value if isinstance(ann, cst.Subscript) else ann
            top_name = top.attr.value if isinstance(top, cst.Attribute) else getattr(top, "value", None)
            if top_name in _ANNOTATION_KINDS:
                kinds.add(_ANNOTATION_KINDS[top_name])
                continue
            found = self._kinds_of_type(ann)
            if found:
                kinds |= found[1]
        self._class_kinds[cls] = kinds
        return kinds

    def _static_field(self, value: cst.BaseExpression) -> bool:
        if not isinstance(value, cst.Call) or self.ctx.qualname(value.func) not in (
            "equinox.field", "equinox.static_field", "dataclasses.field"
        ):
            return False
        static = call_arg(value, None, "static")
        return self.ctx.qualname(value.func) == "equinox.static_field" or (
            isinstance(static, cst.Name) and static.value == "True"
        )


def _ints(expr) -> set[int]:
    if isinstance(expr, cst.Integer):
        return {int(expr.value, 0)}
    if isinstance(expr, (cst.Tuple, cst.List)):
        return {int(el.value.value, 0) for el in expr.elements if isinstance(el.value, cst.Integer)}
    return set()


# --------------------------------------------------------------------------------- JD303

_EQX_WHILE = frozenset({"equinox.internal.while_loop", "equinox.internal._loop.loop.while_loop"})


class TracedMaxSteps(LintRule):
    code = "JD303"
    name = "traced-max-steps"
    severity = Severity.ERROR
    summary = "`eqx.internal.while_loop(..., max_steps=...)` given a traced value"
    fix_title = ("Keep `max_steps` a Python int: mark it static (`static_argnames=('max_steps',)`), "
                 "close over it, or pass it as a Python int to `eqx.filter_jit`")
    requires = ("equinox",)

    def visit_Call(self, node: cst.Call) -> None:
        info = self.ctx.traced_function()
        if info is None or self.ctx.qualname(node.func) not in _EQX_WHILE:
            return
        value = call_arg(node, None, "max_steps")
        if value is None or self.ctx.semantic.value(value) < TRACED:
            return
        self.report(
            node,
            f"`eqx.internal.while_loop` gets the traced `max_steps={self.ctx.code(value)}`{_where(info)}: "
            f"every `kind` needs a Python int to size its loop (a `ValueError` for `lax`/`bounded`, "
            f"`TracerBoolConversionError` inside Equinox for `checkpointed`)",
        )
