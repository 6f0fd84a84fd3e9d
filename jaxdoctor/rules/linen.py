"""Flax Linen rules: raw JAX transforms around module state, and misused lifted `nn.cond`."""

from __future__ import annotations

import libcst as cst

from jaxdoctor.findings import Severity
from jaxdoctor.rules.layer_flags import flag_params
from jaxdoctor.rules._modules import (
    body_nodes,
    class_fields,
    find_class,
    first_param,
    is_linen_ctor,
    methods,
    param_names,
)
from jaxdoctor.static.index import ASSIGN
from jaxdoctor.static.resolve import Callee, bind_args
from jaxdoctor.static.rule import FileContext, LintRule
from jaxdoctor.static.values import ARRAY, CONTAINER, TRACED, UNKNOWN
from jaxdoctor.static.syntax import call_arg, literal_ints, literal_strs, self_attr
from jaxdoctor.static.transforms import PARTIALS, TRANSFORMS
from jaxdoctor.static.walker import children, iter_tree

#: raw JAX transform → the Linen lifted version that threads module state through it
_LIFTED = {
    "jax.lax.cond": "nn.cond",
    "jax.lax.switch": "nn.switch",
    "jax.lax.scan": "nn.scan",
    "jax.lax.fori_loop": "nn.scan",
    "jax.lax.while_loop": "nn.while_loop",
    "jax.lax.map": "nn.scan",
    "jax.vmap": "nn.vmap",
    "jax.jit": "nn.jit",
    "jax.checkpoint": "nn.remat",
    "jax.remat": "nn.remat",
    "jax.grad": "nn.grad",
    "jax.value_and_grad": "nn.value_and_grad",
}
#: `self.<name>(...)` calls that read or write Linen variables
_STATE_METHODS = frozenset({"param", "variable", "sow", "put_variable", "perturb"})


def _linen_method(ctx: FileContext) -> tuple[cst.ClassDef, cst.FunctionDef] | None:
    """The Linen module class and its method that (lexically) hold the current node."""
    cls_index = None
    for i in range(len(ctx.ancestors) - 1, -1, -1):
        if isinstance(ctx.ancestors[i], cst.ClassDef):
            cls_index = i
            break
    if cls_index is None:
        return None
    cls = ctx.ancestors[cls_index]
    if ctx.semantic.class_family(cls) != "linen":
        return None
    for node in ctx.ancestors[cls_index + 1:]:
        if isinstance(node, cst.FunctionDef):
            return cls, node
    return None


class _ModuleUse:
    """Which calls in a Linen class touch module state (submodules, params, variables)."""

    def __init__(self, ctx: FileContext, cls: cst.ClassDef, method: cst.FunctionDef) -> None:
        self.ctx = ctx
        self.cls = cls
        self.methods = methods(cls)
        self.submodules = self._submodules()
        self.local_modules = self._local_modules(method)
        self.local_modules |= self._iterated_modules(method)
        self._memo: dict[cst.CSTNode, cst.CSTNode | None] = {}

    def _submodules(self) -> set[str]:
        out: set[str] = set()
        for field in class_fields(self.cls):
            for node in iter_tree(field.annotation.annotation):
                if isinstance(node, (cst.Name, cst.Attribute)):
                    q = self.ctx.qualname(node)
                    local = find_class(self.ctx, node.value) if isinstance(node, cst.Name) else None
                    if (q is not None and q.startswith("flax.linen.") and q.rsplit(".", 1)[1][:1].isupper()) or (
                        local is not None and self.ctx.semantic.class_family(local) == "linen"
                    ):
                        out.add(field.target.value)
        setup = self.methods.get("setup")
        if setup is not None:
            for node in body_nodes(setup):
                if isinstance(node, cst.Assign) and self._builds_module(node.value):
                    for target in node.targets:
                        for t in iter_tree(target.target):
                            name = self_attr(t) if isinstance(t, cst.Attribute) else None
                            if name:
                                out.add(name)
        return out

    def _builds_module(self, value: cst.BaseExpression) -> bool:
        return any(isinstance(n, cst.Call) and is_linen_ctor(self.ctx, n) for n in iter_tree(value))

    def _local_modules(self, method: cst.FunctionDef) -> set[str]:
        out: set[str] = set()
        for node in body_nodes(method):
            if isinstance(node, cst.Assign) and self._builds_module(node.value):
                for target in node.targets:
                    if isinstance(target.target, cst.Name):
                        out.add(target.target.value)
        return out

    def _iterated_modules(self, method: cst.FunctionDef) -> set[str]:
        """Names bound by `for e in self.experts` (a loop or a comprehension) over submodules."""
        out: set[str] = set()
        for node in body_nodes(method):
            if isinstance(node, (cst.For, cst.CompFor)):
                it = node.iter
                if self_attr(it) in self.submodules or isinstance(it, cst.Name) and it.value in self.local_modules:
                    out.update(n.value for n in iter_tree(node.target) if isinstance(n, cst.Name))
        return out

    def _module_name(self, name: str, fn: cst.FunctionDef | cst.Lambda) -> bool:
        """`name` inside `fn` denotes a module of the enclosing method (a local, not a parameter,
        unless it is a `e=e` default that captures one)."""
        if name not in self.local_modules:
            return False
        for p in (*fn.params.posonly_params, *fn.params.params, *fn.params.kwonly_params):
            if p.name.value == name:
                return isinstance(p.default, cst.Name) and p.default.value in self.local_modules
        return not (isinstance(fn.params.star_arg, cst.Param) and fn.params.star_arg.name.value == name)

    def in_expr(self, expr: cst.BaseExpression, scope: cst.CSTNode) -> cst.CSTNode | None:
        """The module use inside the function `expr` denotes (or `expr` itself, a module)."""
        if self_attr(expr) in self.submodules:
            return expr
        if isinstance(expr, cst.Name) and expr.value in self.local_modules:
            return expr
        if isinstance(expr, cst.Call) and is_linen_ctor(self.ctx, expr):
            return expr
        if isinstance(expr, cst.Call) and self.ctx.qualname(expr.func) in PARTIALS and expr.args:
            found = self.in_expr(expr.args[0].value, scope)
            if found is not None:
                return found
        for info in self.ctx.resolve_functions(expr):
            found = self.in_function(info.node)
            if found is not None:
                return found
        return None

    def in_function(self, fn: cst.FunctionDef | cst.Lambda) -> cst.CSTNode | None:
        if fn in self._memo:
            return self._memo[fn]
        self._memo[fn] = None  # recursion guard
        params = param_names(fn)
        found = None
        for node in body_nodes(fn):
            if not isinstance(node, cst.Call):
                continue
            func = node.func
            if isinstance(func, cst.Call) and is_linen_ctor(self.ctx, func) or isinstance(func, cst.Name) and self._module_name(func.value, fn):
                found = node
            elif isinstance(func, cst.Subscript):
                base = func.value
                if self_attr(base) in self.submodules or (
                    isinstance(base, cst.Name) and base.value in self.local_modules
                ):
                    found = node
            elif "self" not in params or isinstance(fn, cst.FunctionDef) and fn in self.methods.values():
                name = self_attr(func)
                if name is None:
                    continue
                if name in _STATE_METHODS or name in self.submodules or name in self.methods and self.in_function(self.methods[name]) is not None:
                    found = node
            if found is not None:
                break
        self._memo[fn] = found
        return found


class RawTransformInLinenModule(LintRule):
    code = "JD201"
    name = "raw-transform-in-linen-module"
    severity = Severity.ERROR
    summary = "Raw `jax.lax.cond`/`scan`/... or `jax.vmap`/`jit`/`checkpoint` around submodule calls in a Linen method"
    fix_title = "Use Flax's lifted transform (`nn.cond`, `nn.scan`, `nn.vmap`, `nn.jit`, `nn.remat`, `nn.while_loop`)"
    trace_fix_title = (
        "Use Flax's lifted transforms (`nn.scan`, `nn.cond`, `nn.vmap`, `nn.jit`) inside Linen "
        "modules"
    )
    requires = ("flax",)

    def visit_Call(self, node: cst.Call) -> None:
        q = self.ctx.qualname(node.func)
        if q not in _LIFTED:
            return
        where = _linen_method(self.ctx)
        if where is None:
            return
        spec = TRANSFORMS[q]
        scope = self.ctx.enclosing(cst.FunctionDef, cst.Lambda)
        uses = _ModuleUse(self.ctx, *where)
        exprs = []
        positional = [a for a in node.args if a.keyword is None and not a.star]
        exprs += [positional[i].value for i in spec.fn_positions if i < len(positional)]
        exprs += [a.value for a in node.args if a.keyword is not None and a.keyword.value in spec.fn_keywords]
        for expr in exprs:
            found = uses.in_expr(expr, scope)
            if found is not None:
                self._report(node, q, found, where)
                return

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        where = None
        for dec in node.decorators:
            expr = dec.decorator
            q = self.ctx.qualname(expr.func if isinstance(expr, cst.Call) else expr)
            if q in PARTIALS and isinstance(expr, cst.Call) and expr.args:
                q = self.ctx.qualname(expr.args[0].value)
            if q not in _LIFTED:
                continue
            where = where or _linen_method(self.ctx)
            if where is None:
                return
            found = _ModuleUse(self.ctx, *where).in_function(node)
            if found is not None:
                self._report(dec, q, found, where)
                return

    def _report(self, node: cst.CSTNode, q: str, found: cst.CSTNode, where) -> None:
        cls, method = where
        short = q.replace("jax.lax.", "lax.") if q.startswith("jax.lax.") else q
        self.report(
            node,
            f"`{short}` inside Linen method `{cls.name.value}.{method.name.value}` wraps "
            f"`{self.ctx.code(found)}`, which uses module state: `init()` silently returns leaked "
            f"tracers as params and `apply()` fails with `UnexpectedTracerError`",
            fix_title=f"Use the lifted `{_LIFTED[q]}` (it threads params and RNGs through the "
            f"transform), or apply `{q}` outside the module (e.g. `{q}(model.apply)`)",
        )


class LinenCondMisuse(LintRule):
    code = "JD202"
    name = "linen-cond-misuse"
    severity = Severity.ERROR
    summary = "`nn.cond`/`nn.switch` whose branches don't take the module first or don't initialise the same variables"
    fix_title = (
        "Write each branch as `def branch(mdl, *operands)` using `mdl.<submodule>`, and make every "
        "branch call the same submodules (or call them all once while initialising)"
    )
    trace_fix_title = (
        "Pass the module as the first argument of both `nn.cond` branches and create the same "
        "variables in both"
    )
    requires = ("flax",)

    def visit_Call(self, node: cst.Call) -> None:
        q = self.ctx.qualname(node.func)
        if q not in ("flax.linen.cond", "flax.linen.switch"):
            return
        short = "nn.cond" if q.endswith("cond") else "nn.switch"
        positional = [a.value for a in node.args if a.keyword is None and not a.star]
        starred = any(a.star for a in node.args)
        if q.endswith("cond"):
            branch_exprs = [e for e in (call_arg(node, 1, "true_fun"), call_arg(node, 2, "false_fun")) if e is not None]
            mdl_index = 3
        else:
            branches = call_arg(node, 1, "branches")
            if isinstance(branches, cst.Name):  # `branches = [lambda mdl, x: ..., ...]`
                found = self.ctx.semantic.assigned_value(branches.value, self.ctx.scope(), self.ctx.statement())
                branches = found if isinstance(found, (cst.List, cst.Tuple)) else branches
            if not isinstance(branches, (cst.List, cst.Tuple)):
                return
            branch_exprs = [el.value for el in branches.elements]
            mdl_index = 2
        if len(branch_exprs) < 2:
            return
        if call_arg(node, mdl_index, "mdl") is None and not starred:
            self.report(node, f"`{short}` is called without the module: its signature is "
                        f"`{short}(..., mdl, *operands)` and each branch receives the module first")
            return
        n_operands = None if starred else max(0, len(positional) - mdl_index - 1)
        where = _linen_method(self.ctx)
        infos = []
        for expr in branch_exprs:
            found = self.ctx.resolve_functions(expr)
            if len(found) != 1:
                return  # a branch we can't see: don't guess
            infos.append(found[0])
        for expr, info in zip(branch_exprs, infos):
            problem = self._signature_problem(info, n_operands, short)
            if problem:
                self.report(node, f"`{short}` branch `{self.ctx.code(expr)}` {problem}")
                return
        if where is None:
            return
        cls, method = where
        local = _ModuleUse(self.ctx, cls, method)
        for expr, info in zip(branch_exprs, infos):
            closed = next((n for n in body_nodes(info.node) if isinstance(n, cst.Call)
                           and isinstance(n.func, cst.Name) and local._module_name(n.func.value, info.node)), None)
            if closed is not None and not self._initialised_elsewhere({closed.func.value}, method, node):
                self.report(
                    node,
                    f"`{short}` branch `{self.ctx.code(expr)}` calls `{closed.func.value}`, a submodule "
                    f"built outside the branch: it is bound to the outer scope, so `init()` creates its "
                    f"params under the branch's trace (leaked tracers) instead of through the module argument",
                )
                return
        uses = [self._init_uses(info, cls) for info in infos]
        if any(u is None for u in uses):
            return
        differing = set().union(*uses) - set.intersection(*uses)
        if not differing or self._initialised_elsewhere(differing, method, node):
            return
        shown = ", ".join(f"`{d}`" for d in sorted(differing))
        self.report(
            node,
            f"`{short}` branches initialise different variables ({shown} only in some branches): "
            f"`init()` fails with `cond branch outputs must have the same pytree structure`",
        )

    def _signature_problem(self, info, n_operands: int | None, short: str) -> str | None:
        fn = info.node
        p = fn.params
        # a method (`self.f1`) is unbound by Flax and called with the module as `self`
        params = [x.name.value for x in (*p.posonly_params, *p.params)] if (
            info.is_method and not info.is_staticmethod) else info.positional
        if "self" not in param_names(fn) and any(
            isinstance(n, cst.Call) and self_attr(n.func) is not None for n in body_nodes(fn)
        ) and not info.is_method:
            return ("closes over `self` instead of taking the module as its first parameter: "
                    f"`{short}` passes the module as the first argument and `self` is not usable inside")
        if n_operands is None or isinstance(p.star_arg, cst.Param):
            return None
        required = [n for n in params if (q := info.param(n)) is not None and q.default is None]
        if len(required) > 1 + n_operands or len(params) < 1 + n_operands:
            return (f"takes {len(params)} positional parameter(s), but `{short}` calls it with the "
                    f"module and {n_operands} operand(s)")
        return None

    def _init_uses(self, info, cls: cst.ClassDef) -> set[str] | None:
        """Submodules/variables a branch touches through its module parameter (None: unknown)."""
        fn = info.node
        mdl = info.self_name if info.is_method and not info.is_staticmethod else (
            info.positional[0] if info.positional else first_param(fn))
        if mdl is None:
            return None
        own = methods(cls)
        out: set[str] = set()
        seen: set[str] = set()

        def scan(body_fn, name: str) -> None:
            for n in body_nodes(body_fn):
                if not isinstance(n, cst.Call):
                    continue
                if isinstance(n.func, cst.Call) and is_linen_ctor(self.ctx, n.func):
                    out.add(self._ctor_key(n.func, out))
                    continue
                base = n.func.value if isinstance(n.func, cst.Subscript) else n.func
                attr = self_attr(base, name)
                if attr is None:
                    continue
                if attr in ("param", "variable") and n.args:
                    out.add(self._var_key(attr, n))
                elif attr in own and attr not in seen and attr != "__call__":
                    seen.add(attr)
                    scan(own[attr], "self")
                else:
                    out.add(attr)

        scan(fn, mdl)
        return out

    def _ctor_key(self, ctor: cst.Call, seen: set[str]) -> str:
        """`nn.Dense(name='small')`; unnamed inline modules by class, repeats counted (each one
        is another auto-named submodule)."""
        name = call_arg(ctor, None, "name")
        if isinstance(name, cst.SimpleString):
            return f"{self.ctx.code(ctor.func)}(name={name.value})"
        key = f"{self.ctx.code(ctor.func)}(...)"
        k = 1
        while (key if k == 1 else f"{key} x{k}") in seen:
            k += 1
        return key if k == 1 else f"{key} x{k}"

    def _var_key(self, attr: str, call: cst.Call) -> str:
        return (f"{attr}({self.ctx.code(call.args[0].value)}"
                + (f", {self.ctx.code(call.args[1].value)}" if attr == "variable" and len(call.args) > 1 else "")
                + ")")

    def _initialised_elsewhere(self, differing: set[str], method: cst.FunctionDef, cond: cst.Call) -> bool:
        """Every submodule only some branches use is also called outside the cond (e.g. under
        `if self.is_initializing():`), so it exists before the branches run."""
        called = set()
        stack: list[cst.CSTNode] = [method.body]
        while stack:
            n = stack.pop()
            if n is cond or isinstance(n, (cst.Lambda, cst.FunctionDef)):
                continue  # only calls the method itself makes, not those inside branches
            stack.extend(children(n))
            if isinstance(n, cst.Call):
                attr = self_attr(n.func)
                if attr == "is_initializing":
                    return True
                if attr in ("param", "variable") and n.args:
                    called.add(self._var_key(attr, n))  # declared before the branches run
                elif attr is not None:
                    called.add(attr)
                elif isinstance(n.func, cst.Name):
                    called.add(n.func.value)  # a local submodule called outside the branches
        return all(d in called for d in differing)


# --------------------------------------------------------------------------------- JD204

#: Linen's lifted transforms whose `static_argnums` index the method's arguments with `self` at 0
_LIFTED_STATIC = {"flax.linen.remat": "nn.remat", "flax.linen.checkpoint": "nn.checkpoint",
                  "flax.linen.jit": "nn.jit"}


class LiftedStaticArgnumsOffByOne(LintRule):
    code = "JD204"
    name = "lifted-static-argnums-off-by-one"
    severity = Severity.ERROR
    summary = ("`nn.remat`/`nn.checkpoint`/`nn.jit` over a Linen Module with `static_argnums` "
               "naming the array before the flag (they count `self` as 0)")
    fix_title = "Count `self` as argument 0: add one to the index (`static_argnums=(2,)` for `__call__(self, x, train)`)"
    requires = ("flax",)

    def visit_Call(self, node: cst.Call) -> None:
        q = self.ctx.qualname(node.func)
        if q not in _LIFTED_STATIC or not node.args or node.args[0].keyword is not None:
            return
        semantic = self.ctx.semantic
        order = self.ctx.index.order.get(self.ctx.statement(), 1 << 30)
        cls = semantic.resolver.class_named(node.args[0].value, self.ctx.scope(), order)
        if cls is None or semantic.class_family(cls) != "linen":
            return
        method = semantic.method(cls, "__call__")
        if method is not None:
            self._check(node, q, call_arg(node, None, "static_argnums"), method, f"`{cls.name.value}.__call__`")

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        info = self.ctx.semantic.function(node)
        if info is None or not info.is_method or self.ctx.semantic.class_family(info.cls) != "linen":
            return
        for dec in node.decorators:
            expr = dec.decorator
            if not isinstance(expr, cst.Call):
                continue
            q = self.ctx.qualname(expr.func)
            if q in PARTIALS and expr.args:
                q = self.ctx.qualname(expr.args[0].value)
            if q in _LIFTED_STATIC:
                self._check(dec, q, call_arg(expr, None, "static_argnums"), info,
                            f"`{info.cls.name.value}.{info.name}`")
                return

    def _check(self, where: cst.CSTNode, q: str, nums: cst.BaseExpression | None, info, what: str) -> None:
        indices = literal_ints(nums)
        if not indices:
            return
        p = info.node.params
        names = [x.name.value for x in (*p.posonly_params, *p.params)]  # `self` first
        arrays = self._array_params(info)
        flags = self._flag_params(info.node, set(names))
        layer_flags = self._flag_params(info.node, set(names), layers_only=True)
        for k in sorted(indices):
            if k < 1 or k + 1 >= len(names) or (k + 1) in indices:
                continue
            here, after = names[k], names[k + 1]
            if here in arrays and after in flags:
                short = _LIFTED_STATIC[q]
                effect = ("hashing that array fails (`Non-hashable static arguments`)" if q == "flax.linen.jit"
                          else f"`{after}` stays traced and its Python test raises `TracerBoolConversionError`")
                self.report(
                    where,
                    f"`{short}` over {what} counts `self` as argument 0, so `static_argnums` "
                    f"index {k} is `{here}` (used as an array), not the flag `{after}`: {effect}",
                    fix_title=f"Use index {k + 1} for `{after}` (`static_argnums=({k + 1},)`)",
                )
                return
            if after in layer_flags and here not in flags and info.params.get(after) in (TRACED, ARRAY):
                # the flag a Flax layer tests stays traced under the lifted transform (the value
                # model: no default, or callers pass it), whatever `here` is
                short = _LIFTED_STATIC[q]
                self.report(
                    where,
                    f"`{short}` over {what} counts `self` as argument 0, so `static_argnums` "
                    f"index {k} is `{here}`, not the flag `{after}`: `{after}` stays traced and the "
                    f"Flax layer it reaches raises `TracerBoolConversionError` on it",
                    fix_title=f"Use index {k + 1} for `{after}` (`static_argnums=({k + 1},)`)",
                )
                return

    def _array_params(self, info) -> set[str]:
        """Parameters the method uses as arrays: array-only attributes and methods, `jnp`
        operands, or the input of a Linen layer (`nn.Dense(3)(x)`)."""
        strong, weak = self.ctx.semantic.array_uses(info)
        out = set(strong) | set(weak)
        for n in body_nodes(info.node):
            if isinstance(n, cst.Call) and isinstance(n.func, cst.Call) and is_linen_ctor(self.ctx, n.func) \
                    and n.args and n.args[0].keyword is None and isinstance(n.args[0].value, cst.Name):
                out.add(n.args[0].value.value)
        return out

    def _flag_params(self, fn: cst.FunctionDef, names: set[str], layers_only: bool = False) -> set[str]:
        return flag_params(self.ctx.qualname, fn, names, layers_only)


# --------------------------------------------------------------------------------- JD205

#: raw jits: they trace every non-static argument and hash the function they are given
_RAW_JITS = frozenset({"jax.jit", "jax.pjit", "jax.experimental.pjit.pjit"})
#: raw transforms that trace a function closing over a bound module
_TRACING = frozenset({"jax.jit", "jax.grad", "jax.value_and_grad", "jax.vmap", "jax.checkpoint",
                      "jax.remat", "jax.lax.scan", "jax.lax.map"})


class LinenModuleThroughJit(LintRule):
    code = "JD205"
    name = "linen-module-through-jit"
    severity = Severity.ERROR
    summary = ("A Linen Module instance passed as a traced argument of a `jax.jit` function, or a "
               "bound Linen Module (`model.bind(variables)`) given to `jax.jit`")
    fix_title = ("Pass the module as a static argument (`static_argnames=('model',)`) or close over "
                 "it, and jit `model.apply` with the variables as an argument")
    requires = ("flax",)

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        #: jit boundary → (jitted function, transform, parameter, module class) it traces
        self._boundaries: dict[cst.CSTNode, tuple] = {}

    def visit_Call(self, node: cst.Call) -> None:
        semantic = self.ctx.semantic
        q = self.ctx.qualname(node.func)
        scope = self.ctx.scope()
        order = self.ctx.index.order.get(self.ctx.statement(), 1 << 30)
        if q in _TRACING and self._bound_mutation(node, q, scope, order):
            return
        if q in _RAW_JITS:
            fn = call_arg(node, 0, "fun")
            if fn is not None and self._bound(fn, scope, order):
                self.report(
                    node,
                    f"`{q}` is given `{self.ctx.code(fn)}`, a bound Linen module: jit hashes the "
                    f"function it compiles, and a module holding variables can't be hashed "
                    f"(`TypeError: Can't call __hash__ on modules that hold variables`)",
                    fix_title="Jit `model.apply` and pass the variables as an argument "
                    "(`jax.jit(model.apply)(variables, x)`)",
                )
            return
        for callee in semantic.callees(node):
            spec = callee.transform
            if spec is None or spec.qualname not in _RAW_JITS:
                continue
            info = callee.info
            static = semantic.from_callers.get(info, set())
            for name, arg in bind_args(node, info.positional, callee).items():
                if name in static or info.params.get(name, UNKNOWN) not in (TRACED, ARRAY, CONTAINER):
                    continue
                cls = self._linen_instance(arg, scope, order)
                if cls is None:
                    continue
                what = "a bound Linen module" if cls == "bound module" else f"a Linen `{cls}` instance"
                self.report(
                    node,
                    f"`{self.ctx.code(arg)}`, {what}, is passed for `{name}`, which "
                    f"`{spec.qualname}` traces in `{info.name}`: a Module is not a pytree of arrays "
                    f"(`TypeError: Error interpreting argument ... as an abstract array`)",
                    fix_title=f"Mark it static (`static_argnames=('{name}',)`; unbound Linen modules "
                    f"are hashable) or close over the module instead of passing it",
                )
                boundary = self._boundary(callee)
                if boundary is not None and cls != "bound module" and boundary is not node.func:
                    self._boundaries.setdefault(boundary, (info, spec.qualname, name, cls))
                return

    # ------------------------------------------------------------ bound + mutable
    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        info = self.ctx.semantic.function(node)
        if info is None:
            return
        for dec in node.decorators:
            expr = dec.decorator
            q = self.ctx.qualname(expr.func if isinstance(expr, cst.Call) else expr)
            if q in PARTIALS and isinstance(expr, cst.Call) and expr.args:
                q = self.ctx.qualname(expr.args[0].value)
            if q in _TRACING:
                order = self.ctx.index.order.get(self.ctx.statement(), 1 << 30)
                self._bound_mutation(dec, q, self.ctx.scope(), order, decorated=info)
                return

    def _bound_mutation(self, node, q: str, scope, order: int, decorated=None) -> bool:
        """`jax.jit(lambda x: bound(x))` (or grad/vmap/scan...) where `bound = model.bind(variables,
        mutable=[..."batch_stats"...])` and the call runs an `nn.BatchNorm` in train mode: the
        trace stores tracers in the bound module (measured on flax 0.12.8: a retrace or a read of
        `bound.variables` raises `UnexpectedTracerError`). Reported here; True when reported."""
        semantic = self.ctx.semantic
        spec = semantic.transform_of(node) if isinstance(node, cst.Call) else None
        if spec is None and decorated is None:
            return False
        exprs = semantic.resolver.function_args(node, spec) if decorated is None else [None]
        for expr in exprs:
            calls: list[tuple[cst.Call | None, cst.BaseExpression, str]] = []
            if isinstance(expr, cst.Attribute) and isinstance(expr.value, cst.Name):
                calls.append((None, expr.value, expr.attr.value))  # `jax.jit(bound.encode)`
            elif isinstance(expr, cst.Name) and self._bind_call(expr, scope, order) is not None:
                calls.append((None, expr, "__call__"))  # `jax.jit(bound)`: JD205's hash finding
            for info in ([decorated] if decorated is not None else self.ctx.resolve_functions(expr)):
                inner = {n for n in iter_tree(info.node) if isinstance(n, (cst.FunctionDef, cst.Lambda))}
                for c in iter_tree(info.node):
                    if not isinstance(c, cst.Call):
                        continue
                    f = c.func
                    target, method = (f, "__call__") if isinstance(f, cst.Name) else (
                        (f.value, f.attr.value) if isinstance(f, cst.Attribute) and isinstance(f.value, cst.Name)
                        else (None, None))
                    if target is None:
                        continue
                    b = self.ctx.index.lookup(target.value, self.ctx.index.scope_of_node.get(c, info.node), 1 << 30)
                    if b is not None and b.scope not in inner:
                        calls.append((c, target, method))
            for call, target, method in calls:
                found = self._writes_batch_stats(call, target, method, scope, order)
                if found is not None:
                    fn = f"`{decorated.name}`" if decorated is not None else (
                        "the lambda" if isinstance(expr, cst.Lambda) else f"`{self.ctx.code(expr)}`")
                    self.report(
                        node,
                        f"`{q}` traces {fn}, which runs `{self.ctx.code(target)}`, a Linen `{found}` bound "
                        f"with a mutable `batch_stats` collection, with its `nn.BatchNorm` in train mode: "
                        f"the trace writes tracers into the bound module's variables, and the next retrace "
                        f"(a new shape) or read of them raises `UnexpectedTracerError`",
                        fix_title="Jit `model.apply(variables, x, mutable=['batch_stats'])` and use the "
                        "returned statistics, or bind without `mutable` and run in eval mode",
                    )
                    return True
        return False

    def _bind_call(self, name: cst.Name, scope, order: int) -> cst.Call | None:
        b = self.ctx.index.lookup(name.value, scope, order)
        if b is None or b.how != ASSIGN or b.path is not None or not isinstance(b.value, cst.Call):
            return None
        v = b.value
        if isinstance(v.func, cst.Attribute) and v.func.attr.value == "bind" and self._bound(v, b.scope, b.order):
            return v
        return None

    def _writes_batch_stats(self, call, target: cst.Name, method: str, scope, order: int) -> str | None:
        bind = self._bind_call(target, scope, order)
        if bind is None:
            return None
        mutable = call_arg(bind, None, "mutable")
        if not (isinstance(mutable, cst.Name) and mutable.value == "True") and \
                "batch_stats" not in literal_strs(mutable):
            return None
        semantic = self.ctx.semantic
        receiver = bind.func.value
        b_scope = self.ctx.index.lookup(target.value, scope, order).scope
        cls = semantic.resolver.instance_class(receiver, b_scope, 1 << 30)
        if cls is None or semantic.class_family(cls) != "linen":
            return None
        info = semantic.method(cls, method)
        if info is None:
            return None
        passed = bind_args(call, info.positional, Callee(info)) if call is not None else {}
        for n in body_nodes(info.node):
            if not isinstance(n, cst.Call):
                continue
            if self.ctx.qualname(n.func) == "flax.linen.BatchNorm":
                ctor, use = n, None
            elif isinstance(n.func, cst.Call) and self.ctx.qualname(n.func.func) == "flax.linen.BatchNorm":
                ctor, use = n.func, n
            else:
                continue
            flag = (call_arg(use, None, "use_running_average") if use is not None else None) or \
                call_arg(ctor, 0, "use_running_average")
            if self._false(flag, info, passed):
                return cls.name.value
        return None

    def _false(self, expr, info, passed: dict) -> bool:
        """`expr` is False at this call: the literal, or `not p` / `p` with `p` a parameter the
        call leaves at a literal default (or passes a literal)."""
        if expr is None:
            return False
        neg = False
        while isinstance(expr, cst.UnaryOperation) and isinstance(expr.operator, cst.Not):
            neg, expr = not neg, expr.expression
        value = None
        if isinstance(expr, cst.Name) and expr.value in ("True", "False"):
            value = expr.value == "True"
        elif isinstance(expr, cst.Name):
            given = passed.get(expr.value)
            p = info.param(expr.value)
            if given is None and p is not None and p.default is not None:
                given = p.default
            if isinstance(given, cst.Name) and given.value in ("True", "False"):
                value = given.value == "True"
        if value is None:
            return False
        return (not value) if not neg else value

    def _boundary(self, callee) -> cst.CSTNode | None:
        """The decorator or `jax.jit(f, ...)` call that traces the function: where the fix goes."""
        if callee.decorated and isinstance(callee.info.node, cst.FunctionDef):
            for dec in callee.info.node.decorators:
                found = self.ctx.semantic.resolver.transform_of_expr(dec.decorator)
                if found is not None and found[0].qualname in _RAW_JITS:
                    return dec
            return None
        return callee.options

    def leave_Module(self, node: cst.Module) -> None:
        for bnode, (info, q, name, cls) in self._boundaries.items():
            self.report(
                bnode,
                f"`{q}` traces `{name}` of `{info.name}`, and its callers pass a Linen `{cls}` "
                f"instance for it: a Module is not a pytree of arrays, so the call raises "
                f"`TypeError: Error interpreting argument ... as an abstract array`",
                fix_title=f"Mark it static here (`static_argnames=('{name}',)`), or close over the module",
            )

    def _linen_instance(self, expr: cst.BaseExpression, scope, order: int, depth: int = 0) -> str | None:
        """The Linen class `expr` is an instance of, on evidence: `MLP(...)`, `nn.Dense(3)`, a
        name bound to one, a parameter annotated with a Linen class of this file, a bound module."""
        semantic = self.ctx.semantic
        if depth > 4:
            return None
        cls = semantic.resolver.instance_class(expr, scope, order)
        if cls is not None:
            return cls.name.value if semantic.class_family(cls) == "linen" else None
        if isinstance(expr, cst.Call):
            if is_linen_ctor(self.ctx, expr):
                return self.ctx.code(expr.func)
            if self._bound(expr, scope, order):
                return "bound module"
            return None
        if isinstance(expr, cst.Name):
            b = self.ctx.index.lookup(expr.value, scope, order)
            if b is not None and b.how == ASSIGN and b.path is None and b.value is not None:
                return self._linen_instance(b.value, b.scope, b.order, depth + 1)
        return None

    def _bound(self, expr: cst.BaseExpression, scope, order: int, depth: int = 0) -> bool:
        """`model.bind(variables)` on a Linen module (or a name bound to it)."""
        if depth > 4:
            return False
        if isinstance(expr, cst.Name):
            b = self.ctx.index.lookup(expr.value, scope, order)
            return (b is not None and b.how == ASSIGN and b.path is None and b.value is not None
                    and self._bound(b.value, b.scope, b.order, depth + 1))
        if not (isinstance(expr, cst.Call) and isinstance(expr.func, cst.Attribute)
                and expr.func.attr.value == "bind" and expr.args):
            return False
        receiver = expr.func.value
        if isinstance(receiver, cst.Call) and is_linen_ctor(self.ctx, receiver):
            return True
        cls = self.ctx.semantic.resolver.instance_class(receiver, scope, order)
        if cls is not None:
            return self.ctx.semantic.class_family(cls) == "linen"
        return self._linen_instance(receiver, scope, order, depth + 1) is not None
