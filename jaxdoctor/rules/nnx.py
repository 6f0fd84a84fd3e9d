"""Rules about Flax NNX modules under transforms: unsplit `Rngs` under `nnx.vmap` (failure mode
C) and raw `jax.*` transforms over functions that call or update an `nnx.Module`."""

from __future__ import annotations

import re

import libcst as cst

from jaxdoctor.findings import Severity
from jaxdoctor.rules._syntax import arg, own_nodes, returns, transform_name
from jaxdoctor.rules.vmap import axes_for
from jaxdoctor.static.rule import LintRule
from jaxdoctor.static.walker import iter_tree
from jaxdoctor.static.syntax import annotation_names, call_arg
from jaxdoctor.static.resolve import bind_args
from jaxdoctor.static.index import ASSIGN, FunctionInfo

_RNGS_NAME = re.compile(r"(?i)^(rngs?|rngs_|key_rngs|rng_streams)$")
_SPLITTERS = frozenset({"flax.nnx.split_rngs", "jax.random.split", "flax.nnx.StateAxes",
                        "flax.nnx.fork_rngs", "flax.nnx.with_rngs"})


def _is_split_call(names, node: cst.CSTNode) -> bool:
    if not isinstance(node, cst.Call):
        return False
    q = names.qualname(node.func)
    if q in _SPLITTERS:
        return True
    # rngs.fork(split=N), rngs.split(N)
    return isinstance(node.func, cst.Attribute) and node.func.attr.value in ("fork", "split") and (
        node.func.attr.value == "split" or any(a.keyword is not None and a.keyword.value == "split"
                                               for a in node.args))


def _mentions_split(names, fn) -> bool:
    return fn is not None and any(_is_split_call(names, n) for n in own_nodes(fn))


class NnxVmapUnsplitRngs(LintRule):
    code = "JD210"
    name = "nnx-vmap-unsplit-rngs"
    severity = Severity.ERROR
    summary = "`nnx.vmap` over code that creates modules or draws from `nnx.Rngs` without `nnx.split_rngs`"
    fix_title = (
        "Decorate with `@nnx.split_rngs(splits=N)` above `@nnx.vmap` (or pass "
        "`rngs.fork(split=N)` / split keys with `in_axes=0`)"
    )
    trace_fix_title = "Wrap the vmapped function in `nnx.split_rngs(splits=N)` and map the `Rngs` along axis 0"
    requires = ("flax.nnx",)

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        names = self.ctx.names
        decs = [transform_name(names, d.decorator) for d in node.decorators]
        if any(q in _SPLITTERS for q, _ in decs):
            return
        info = self.ctx.semantic.function(node)
        for dec, (q, opts) in zip(node.decorators, decs):
            if q == "flax.nnx.vmap" and info is not None:
                axes = axis_size = None
                if opts is not None:
                    is_partial = names.qualname(opts.func) != q
                    axes = arg(opts, None if is_partial else 1, "in_axes")
                    axis_size = arg(opts, None, "axis_size")
                self._check(dec, info, axes, axis_size, method=info.is_method)

    def visit_Call(self, node: cst.Call) -> None:
        names = self.ctx.names
        if names.qualname(node.func) != "flax.nnx.vmap" or any(a.star for a in node.args):
            return
        fn = arg(node, 0, "f")
        if fn is None:
            return
        # nnx.split_rngs(splits=N)(nnx.vmap(f)), or inside a function that splits
        for anc in reversed(self.ctx.ancestors):
            if isinstance(anc, cst.Call) and isinstance(anc.func, cst.Call) and \
                    names.qualname(anc.func.func) in _SPLITTERS:
                return
            if isinstance(anc, cst.With) and any(_is_split_call(names, i.item) for i in anc.items):
                return
        for info in self.ctx.resolve_functions(fn):
            if isinstance(info.node, cst.FunctionDef) and any(
                transform_name(names, d.decorator)[0] in _SPLITTERS for d in info.node.decorators
            ):
                continue
            self._check(node, info, arg(node, 1, "in_axes"), arg(node, None, "axis_size"),
                        method=isinstance(fn, cst.Attribute) and info.is_method)
            break

    def _check(self, where: cst.CSTNode, info: FunctionInfo, axes, axis_size, method: bool) -> None:
        p = info.node.params
        params = [*p.posonly_params, *p.params]
        if isinstance(p.star_arg, cst.Param):
            return
        kinds = axes_for(axes, len(params))
        for i, param in enumerate(params):
            ann = annotation_names(param)
            if not (_RNGS_NAME.match(param.name.value) or "Rngs" in ann) or param.default is not None:
                continue
            use = self._use(info, param.name.value)
            if use is None:
                continue
            if kinds[i] == "mapped":
                split, sites = self._call_sites(info)
                if split:
                    continue
                message = (
                    f"`nnx.vmap` maps axis 0 of `{param.name.value}` ({use} in `{info.name}`) but the "
                    "`Rngs` keys are not split: raises \"vmap was requested to map its argument "
                    "along axis 0 ... rank ... is only 0\""
                )
                self.report(where, message)
                for site in sites:  # where the error is raised
                    self.report(site, message)
                return
            if kinds[i] == "none" and axis_size is not None and use.startswith("creates"):
                self.report(
                    where,
                    f"`nnx.vmap(..., axis_size=...)` broadcasts `{param.name.value}` ({use} in "
                    f"`{info.name}`) without `nnx.split_rngs`: every member gets the same keys, so "
                    "the ensemble is made of identical copies",
                )
                return

    def _use(self, info: FunctionInfo, rngs: str) -> str | None:
        """How the function uses its `Rngs` parameter: builds modules with it, or draws keys."""
        names = self.ctx.names
        for node in own_nodes(info.node):
            if not isinstance(node, cst.Call):
                continue
            func = node.func
            for a in node.args:
                if isinstance(a.value, cst.Name) and a.value.value == rngs:
                    q = names.qualname(func)
                    if (q or "").startswith("flax.nnx.") and q.rsplit(".", 1)[1][:1].isupper() \
                            and q != "flax.nnx.Rngs":
                        return f"creates `{q.replace('flax.nnx.', 'nnx.')}`"
                    if isinstance(func, cst.Name) and self._nnx_class(func.value):
                        return f"creates `{func.value}`"
                    if _is_split_call(names, node):
                        return None
            if isinstance(func, cst.Name) and func.value == rngs:
                return "draws keys from it"
            if isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name) and \
                    func.value.value == rngs and func.attr.value not in ("fork", "split"):
                return "draws keys from it"
            if isinstance(func, cst.Attribute) and isinstance(func.value, cst.Attribute) and \
                    isinstance(func.value.value, cst.Name) and func.value.value.value == rngs:
                return "draws keys from it"  # rngs.params.key() / rngs.dropout()
        return None

    def _nnx_class(self, name: str) -> bool:
        semantic = self.ctx.semantic
        return any(c.name.value == name and semantic.class_family(c) == "nnx" for c in semantic.classes)

    def _call_sites(self, info: FunctionInfo) -> tuple[bool, list[cst.Call]]:
        """(whether some call of this function passes split keys — `rngs.fork(split=N)`,
        `random.split` — or sits in a function that splits, the calls that don't)."""
        sites: list[cst.Call] = []
        names = self.ctx.names
        semantic = self.ctx.semantic
        found = [(call, scope, order) for call, scope, order, _c in semantic.sites.get(info, ())]
        if info.name == "__init__" and info.cls is not None:
            found += [(call, scope, order) for call, scope, order in semantic.calls
                      if semantic.resolver.class_named(call.func, scope, order) is info.cls]
        for call, scope, order in found:
            if any(self._split_value(a.value, scope, order) for a in call.args):
                return True, []
            fn = self.ctx.index.enclosing_function(scope)
            if fn is not None and _mentions_split(names, fn.node):
                return True, []
            sites.append(call)
        return False, sites

    def _split_value(self, e: cst.BaseExpression, scope, order: int) -> bool:
        """`rngs.fork(split=N)`, `jax.random.split(...)`, or a name bound to one."""
        names = self.ctx.names
        if _is_split_call(names, e):
            return True
        if isinstance(e, cst.Name):
            b = self.ctx.index.lookup(e.value, scope, order)
            return b is not None and b.how == ASSIGN and b.path is None and _is_split_call(names, b.value)
        return False


# --------------------------------------------------------------------------------- JD211

_RAW = frozenset({"jax.jit", "jax.vmap", "jax.grad", "jax.value_and_grad", "jax.checkpoint",
                  "jax.remat", "jax.pmap", "jax.lax.scan", "jax.lax.fori_loop", "jax.lax.while_loop",
                  "jax.jacfwd", "jax.jacrev", "jax.hessian"})


#: NNX layers and variables whose state a call changes
_STATEFUL_LAYERS = frozenset({"BatchNorm", "Dropout", "Rngs", "RngStream", "BatchStat", "Cache",
                              "Intermediate", "Perturbation"})


class RawTransformOnNnxModule(LintRule):
    code = "JD211"
    name = "raw-transform-on-nnx-module"
    severity = Severity.WARNING
    summary = "`jax.jit`/`vmap`/`grad`/`lax.scan` over a function that calls or updates an `nnx.Module`"
    fix_title = (
        "Use the `nnx.*` transform (`nnx.jit`, `nnx.grad`, `nnx.vmap`, `nnx.scan`, ...), or pass "
        "`nnx.split(model)` state in and `nnx.merge` it inside"
    )
    trace_fix_title = (
        "Use `nnx.jit`/`nnx.vmap`/`nnx.grad`/`nnx.scan`, or `nnx.split`/`nnx.merge` around the JAX "
        "transform"
    )
    requires = ("flax.nnx",)

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        self._hijax: bool | None = None

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        info = self.ctx.semantic.function(node)
        if info is None:
            return
        for dec in node.decorators:
            q, _opts = transform_name(self.ctx.names, dec.decorator)
            if q in _RAW:
                self._check(dec, q, info, None)
                for site, _scope, _order, callee in self.ctx.semantic.sites.get(info, ()):
                    if callee.decorated and callee.transform is not None and callee.transform.qualname == q:
                        self._check(dec, q, info, site)  # `step(model, x)`: what the calls pass
                        break
                return

    def visit_Call(self, node: cst.Call) -> None:
        names = self.ctx.names
        q = names.qualname(node.func)
        if q not in _RAW:
            return
        spec = self.ctx.semantic.transform_of(node)
        if spec is None:
            return
        positional = [a for a in node.args if a.keyword is None]
        exprs = [positional[i].value for i in spec.fn_positions if i < len(positional)]
        exprs += [a.value for a in node.args if a.keyword is not None and a.keyword.value in spec.fn_keywords]
        parent = self.ctx.parent
        outer = parent if isinstance(parent, cst.Call) and parent.func is node else None
        for e in exprs:
            for info in self.ctx.resolve_functions(e):
                self._check(node, q, info, outer)
                if outer is None:  # `fast = jax.jit(step)` ... `fast(model, x)`
                    for site, _scope, _order, callee in self.ctx.semantic.sites.get(info, ()):
                        if callee.options is node:
                            self._check(node, q, info, site)
                            break

    def _check(self, where, q: str, info: FunctionInfo, outer: cst.Call | None) -> None:
        p = info.node.params
        params = [*p.posonly_params, *p.params]
        if info.is_method and not info.is_staticmethod and params:
            params = params[1:]
        for i, param in enumerate(params):
            cls = self._module_annotation(param)
            if cls is None and outer is not None and i < len(outer.args) and outer.args[i].keyword is None:
                cls = self._module_value(outer.args[i].value)
            if cls is None:
                continue
            use = self._update(info, param.name.value)
            if use is None or self._refs_carry_updates():
                continue
            if use == "calls" and not self._stateful(cls):
                continue  # a module without state a call changes loses nothing
            inner = next((t for t in (transform_name(self.ctx.names, d.decorator)[0]
                                      for d in getattr(info.node, "decorators", ()))
                          if t is not None and t.startswith("flax.nnx.")), None)
            also = f" (its own `@{inner.replace('flax.nnx.', 'nnx.')}` doesn't help: the outer `{q}` " \
                "sees a plain function of arrays)" if inner else ""
            self.report(
                where,
                f"`{q}` transforms `{info.name}`, which {use} its `nnx.Module` argument "
                f"`{param.name.value}` ({cls}): `jax` transforms don't carry NNX state updates out "
                f"(they are silently lost) and don't split/merge the module{also}",
            )
            return

    def _refs_carry_updates(self) -> bool:
        """The file makes NNX variables mutable refs (`nnx.var_defaults(hijax=True)`,
        `nnx.Variable(..., ref=True)`): then `jax` transforms do carry their updates out."""
        if self._hijax is None:
            self._hijax = False
            for call, _scope, _order in self.ctx.semantic.calls:
                q = self.ctx.qualname(call.func) or ""
                if not q.startswith("flax.nnx."):
                    continue
                if any(a.keyword is not None and a.keyword.value in ("hijax", "ref")
                       and isinstance(a.value, cst.Name) and a.value.value == "True" for a in call.args):
                    self._hijax = True
                    break
        return self._hijax

    def _stateful(self, cls: str) -> bool:
        """The module class (`CNN`, `nnx.BatchNorm`) holds state that calling it changes: batch
        statistics, dropout or other RNG streams, caches — built in its `__init__` when it is a
        class of this file."""
        name = cls.strip("`").replace("nnx.", "")
        if name in _STATEFUL_LAYERS:
            return True
        for c in self.ctx.semantic.classes:
            if c.name.value != name:
                continue
            for node in iter_tree(c):
                if isinstance(node, cst.Call):
                    q = self.ctx.qualname(node.func) or ""
                    if q.startswith("flax.nnx.") and q.rsplit(".", 1)[1] in _STATEFUL_LAYERS:
                        return True
                    if isinstance(node.func, cst.Name) and node.func.value != name and self._stateful(node.func.value):
                        return True
                    if isinstance(node.func, cst.Attribute) and node.func.attr.value == "sow":
                        return True
        return False

    def _module_annotation(self, param: cst.Param) -> str | None:
        if param.annotation is None:
            return None
        ann = param.annotation.annotation
        q = self.ctx.names.qualname(ann)
        if q in ("flax.nnx.Module", "flax.nnx.Optimizer") or (
            q is not None and q.startswith("flax.nnx.") and q.rsplit(".", 1)[1][:1].isupper()
            and q.rsplit(".", 1)[1] not in ("Rngs", "State", "GraphDef", "Variable", "Param",
                                            "RngKey", "RngStream", "Pytree", "Object")
        ):
            return f"`{q.replace('flax.nnx.', 'nnx.')}`"
        if isinstance(ann, cst.Name) and self._nnx_class(ann.value):
            return f"`{ann.value}`"
        return None

    def _module_value(self, e: cst.BaseExpression, depth: int = 0) -> str | None:
        if isinstance(e, cst.Name) and depth < 4:
            # a name bound to `Model(...)` / `nnx.BatchNorm(...)`, or an instance of an NNX
            # class of this file as far as the bindings show
            order = self.ctx.index.order.get(self.ctx.statement(), 1 << 30)
            b = self.ctx.index.lookup(e.value, self.ctx.scope(), order)
            if b is not None and b.how == ASSIGN and b.path is None and isinstance(b.value, cst.Call):
                return self._module_value(b.value, depth + 1)
            cls = self.ctx.semantic.resolver.instance_class(e, self.ctx.scope(), order)
            if cls is not None and self.ctx.semantic.class_family(cls) == "nnx":
                return f"`{cls.name.value}`"
            return None
        if isinstance(e, cst.Call):
            q = self.ctx.names.qualname(e.func)
            if q is not None and q.startswith("flax.nnx.") and q.rsplit(".", 1)[1][:1].isupper() and \
                    q.rsplit(".", 1)[1] not in ("Rngs", "State", "Variable", "Param"):
                return f"`{q.replace('flax.nnx.', 'nnx.')}`"
            if isinstance(e.func, cst.Name) and self._nnx_class(e.func.value):
                return f"`{e.func.value}`"
        return None

    def _nnx_class(self, name: str) -> bool:
        semantic = self.ctx.semantic
        return any(c.name.value == name and semantic.class_family(c) == "nnx" for c in semantic.classes)

    def _update(self, info: FunctionInfo, name: str) -> str | None:
        """"calls" / "updates" when the function calls the module or mutates it, and does not
        hand it back in its return value (returning it carries the updates out)."""
        for value in returns(info.node):
            elts = [el.value for el in value.elements] if isinstance(value, (cst.Tuple, cst.List)) else [value]
            if any(isinstance(e, cst.Name) and e.value == name for e in elts):
                return None
        found = None
        for node in own_nodes(info.node):
            if isinstance(node, cst.Call):
                f = node.func
                if isinstance(f, cst.Name) and f.value == name:
                    found = found or "calls"
                elif isinstance(f, cst.Attribute) and isinstance(f.value, cst.Name) and f.value.value == name:
                    found = "updates" if f.attr.value in ("update", "set_attributes", "train", "eval") \
                        else found or "calls"
                elif any(isinstance(a.value, cst.Name) and a.value.value == name for a in node.args):
                    q = self.ctx.names.qualname(f) or ""
                    if q in ("flax.nnx.split", "flax.nnx.state", "flax.nnx.graphdef", "flax.nnx.merge"):
                        return None  # the functional API: fine
            elif isinstance(node, (cst.Assign, cst.AugAssign)):
                targets = [t.target for t in node.targets] if isinstance(node, cst.Assign) else [node.target]
                for t in targets:
                    while isinstance(t, (cst.Attribute, cst.Subscript)):
                        t = t.value
                        if isinstance(t, cst.Name) and t.value == name:
                            found = "updates"
        return found


# --------------------------------------------------------------------------------- JD212

#: transforms that trace their function at a new trace level; measured on flax 0.12.8: a call
#: inside them that updates an NNX object created outside raises `TraceContextError: Cannot
#: mutate RngCount/BatchStat/<Variable> from a different trace level`
_RAW_TRACING = frozenset({"jax.jit", "jax.vmap", "jax.grad", "jax.value_and_grad", "jax.checkpoint",
                          "jax.remat", "jax.pmap", "jax.lax.scan", "jax.lax.fori_loop",
                          "jax.lax.while_loop", "jax.lax.cond", "jax.lax.map", "jax.jacfwd",
                          "jax.jacrev", "jax.hessian", "jax.eval_shape"})
_NNX_TRACING = frozenset({"flax.nnx.jit", "flax.nnx.vmap", "flax.nnx.grad", "flax.nnx.value_and_grad",
                          "flax.nnx.remat", "flax.nnx.scan"})
#: NNX Variable types whose `.value` a method may update in place
_VARIABLES = frozenset({"flax.nnx.Variable", "flax.nnx.BatchStat", "flax.nnx.Cache", "flax.nnx.Param",
                        "flax.nnx.Intermediate", "flax.nnx.VariableState"})
#: calls that switch a module's mode: after them we can't tell train from eval
_MODE_CALLS = frozenset({"eval", "train", "set_attributes", "set_mode"})


def _kw(call: cst.Call, name: str) -> cst.BaseExpression | None:
    for a in call.args:
        if a.keyword is not None and a.keyword.value == name:
            return a.value
    return None


def _is_lit(expr: cst.BaseExpression | None, value: str) -> bool:
    return isinstance(expr, cst.Name) and expr.value == value


def _zero_rate(expr: cst.BaseExpression | None) -> bool:
    return isinstance(expr, (cst.Integer, cst.Float)) and float(expr.value.replace("_", "")) == 0.0


class NnxOuterStateMutatedInTransform(LintRule):
    code = "JD212"
    name = "nnx-outer-state-mutated-in-transform"
    severity = Severity.ERROR
    summary = ("A JAX or NNX transform traces a function that calls an NNX module it closes over (not "
               "an argument) in a way that updates its state (Dropout RNG counts, BatchNorm statistics, "
               "Variables), or hands one to an `nnx.jit`/`nnx.grad` inside a raw `jax` transform")
    fix_title = ("Pass the module as an argument of an `nnx.*` transform (`nnx.jit(f)(model, x)`), switch "
                 "it to eval mode first (`model.eval()`), or `nnx.split` it and `nnx.merge` inside")
    requires = ("flax.nnx",)

    def visit_Call(self, node: cst.Call) -> None:
        q = self.ctx.qualname(node.func)
        if q not in _RAW_TRACING and q not in _NNX_TRACING:
            return
        spec = self.ctx.semantic.transform_of(node)
        if spec is None:
            return
        scope = self.ctx.scope()
        order = self.ctx.index.order.get(self.ctx.statement(), 1 << 30)
        for expr in self.ctx.semantic.resolver.function_args(node, spec):
            if self._check_expr(node, q, expr, scope, order):
                return

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        info = self.ctx.semantic.function(node)
        if info is None:
            return
        for dec in node.decorators:
            q, _opts = transform_name(self.ctx.names, dec.decorator)
            if q in _RAW_TRACING or q in _NNX_TRACING:
                found = self._in_function(info, frozenset(), 0, raw=q in _RAW_TRACING)
                if found is not None:
                    self._report(dec, q, info.name, found)
                return

    # ------------------------------------------------------------ what the transform is given
    def _check_expr(self, where: cst.Call, q: str, expr: cst.BaseExpression, scope, order: int) -> bool:
        semantic = self.ctx.semantic
        resolver = semantic.resolver
        raw = q in _RAW_TRACING
        # `jax.jit(model)` / `jax.vmap(model.render)`: a bound module, captured with its state
        receiver, method = (expr, "__call__") if isinstance(expr, cst.Name) else (
            (expr.value, expr.attr.value) if isinstance(expr, cst.Attribute) else (None, None))
        if receiver is not None and resolver.class_named(receiver, scope, order) is None:
            cls = self._nnx_instance(receiver, scope, order)
            if cls is not None and not self._mode_switched(receiver):
                info = semantic.method(cls, method)
                if info is not None:
                    if raw and self._nnx_transformed(info):
                        self._report(where, q, self.ctx.code(expr), (
                            f"`{self.ctx.code(receiver)}` (a `{cls.name.value}` built outside) goes into "
                            f"`{method}`'s own NNX transform, which updates the module in place", "Param"))
                        return True
                    found = self._mutation(cls, method, 0)
                    if found is not None:
                        what, err = found
                        self._report(where, q, self.ctx.code(expr), (
                            f"the bound `{self.ctx.code(receiver)}` (a `{cls.name.value}` built outside) "
                            f"{what}", err))
                        return True
                return False
        for callee in resolver.callees(expr, scope, order):
            if callee.transform is not None or callee.info.is_method:
                continue
            found = self._in_function(callee.info, frozenset(), 0, raw=raw)
            if found is not None:
                self._report(where, q, self.ctx.code(expr) if not isinstance(expr, cst.Lambda) else "the lambda",
                             found)
                return True
        return False

    def _report(self, where, q: str, fn: str, found: tuple[str, str]) -> None:
        what, err = found
        short = q.replace("flax.nnx.", "nnx.").replace("jax.lax.", "lax.")
        self.report(
            where,
            f"`{short}` traces {fn if fn.startswith('the ') else '`' + fn + '`'}, where {what}: NNX refuses "
            f"to update an object created outside the trace (`TraceContextError: Cannot mutate {err} from "
            f"{'' if err.startswith(chr(39)) else 'a '}different trace level`)",
        )

    # ------------------------------------------------------------ inside the traced function
    def _in_function(self, info: FunctionInfo, inside: frozenset, depth: int, raw: bool) -> tuple[str, str] | None:
        """A call in `info` (or a helper of this file it calls) that updates an NNX object the
        traced code closes over: (what happens, the Variable type in the error)."""
        if depth > 3:
            return None
        fn = info.node
        inside = inside | {n for n in iter_tree(fn) if isinstance(n, (cst.FunctionDef, cst.Lambda))} | {fn}
        semantic = self.ctx.semantic
        for node in iter_tree(fn.body):
            if isinstance(node, (cst.Assign, cst.AugAssign)):
                found = self._closed_attr_store(node, fn, inside)
                if found is not None:
                    return found
                continue
            if not isinstance(node, cst.Call):
                continue
            scope = self._scope_of(node, fn)
            func = node.func
            # `model(x)` / `model.method(x)` on a closed-over module
            target, method = (func, "__call__") if isinstance(func, cst.Name) else (
                (func.value, func.attr.value) if isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name)
                else (None, None))
            if target is not None and self._free(target, scope, inside):
                found = self._closed_module_call(node, target, method, scope)
                if found is not None:
                    return found
            # `helper(x)` / `helper(model, x)` / `score(model, x)` with `score` an nnx transform
            for callee in semantic.callees(node):
                for a in node.args:
                    v = a.value
                    if not (isinstance(v, cst.Name) and self._free(v, scope, inside)):
                        continue
                    cls = self._nnx_instance(v, scope, 1 << 30)
                    if cls is None or self._mode_switched(v):
                        continue
                    if raw and callee.transform is not None and callee.transform.family == "nnx":
                        return (f"`{v.value}` (a `{cls.name.value}` built outside) is passed to "
                                f"`{self.ctx.code(node.func)}`, an `{callee.transform.qualname.replace('flax.', '')}` "
                                f"function that updates the module in place", "Param")
                    if callee.transform is None and not callee.info.is_method:
                        param = next((p for p, e in bind_args(node, callee.info.positional, callee).items() if e is v), None)
                        if param is not None:
                            found = self._param_called(callee.info, param, cls)
                            if found is not None:
                                return (f"`{v.value}` (a `{cls.name.value}` built outside) is passed to "
                                        f"`{callee.info.name}`, which calls it: {found[0]}", found[1])
                if callee.transform is None and not callee.info.is_method and callee.info.node is not fn:
                    found = self._in_function(callee.info, inside, depth + 1, raw)
                    if found is not None:
                        return found
        return None

    def _closed_attr_store(self, node, fn, inside: frozenset) -> tuple[str, str] | None:
        """`obj.attr = ...` / `obj.attr += ...` on an NNX object the traced code closes over."""
        targets = [t.target for t in node.targets] if isinstance(node, cst.Assign) else [node.target]
        for t in targets:
            if not (isinstance(t, cst.Attribute) and isinstance(t.value, cst.Name)):
                continue
            scope = self._scope_of(node, fn)
            if not self._free(t.value, scope, inside):
                continue
            cls = self._nnx_instance(t.value, scope, 1 << 30)
            if cls is not None:
                return (f"`{self.ctx.code(t)}` is set on `{t.value.value}` (a `{cls.name.value}` built outside)",
                        f"'{cls.name.value}'")
        return None

    def _scope_of(self, node: cst.CSTNode, fn) -> cst.CSTNode:
        """The innermost function around `node` inside `fn` (the index's scope of the call)."""
        scope = self.ctx.index.scope_of_node.get(node)
        return scope if scope is not None else fn

    def _free(self, name: cst.Name, scope, inside: frozenset) -> bool:
        b = self.ctx.index.lookup(name.value, scope, 1 << 30)
        return b is not None and b.scope not in inside

    def _closed_module_call(self, call: cst.Call, target: cst.Name, method: str, scope) -> tuple[str, str] | None:
        b = self.ctx.index.lookup(target.value, scope, 1 << 30)
        if b is None or self._mode_switched(target):
            return None
        if b.how == ASSIGN and b.path is None and isinstance(b.value, cst.Call):
            layer = self._layer_mutation(b.value, call if method == "__call__" else None)
            if layer is not None:
                return f"`{target.value}` ({layer[0]}, built outside) is called", layer[1]
            q = self.ctx.qualname(b.value.func)
            if q == "flax.nnx.Rngs" and (method == "__call__" or method not in ("fork", "split")):
                return f"`{self.ctx.code(call.func)}()` draws a key from `{target.value}`, an `nnx.Rngs` built outside", "RngCount"
        cls = self._nnx_instance(target, scope, 1 << 30)
        if cls is None or self._passes_mode(call):
            return None
        found = self._mutation(cls, method, 0)
        if found is None:
            return None
        return f"`{self.ctx.code(call.func)}(...)` on `{target.value}` (a `{cls.name.value}` built outside) {found[0]}", found[1]

    def _param_called(self, info: FunctionInfo, param: str, cls: cst.ClassDef) -> tuple[str, str] | None:
        for node in own_nodes(info.node):
            if not isinstance(node, cst.Call):
                continue
            f = node.func
            method = "__call__" if isinstance(f, cst.Name) and f.value == param else (
                f.attr.value if isinstance(f, cst.Attribute) and isinstance(f.value, cst.Name) and f.value.value == param
                else None)
            if method is None or self._passes_mode(node):
                continue
            found = self._mutation(cls, method, 0)
            if found is not None:
                return found
        return None

    # ------------------------------------------------------------ what a call updates
    def _nnx_instance(self, expr: cst.BaseExpression, scope, order: int) -> cst.ClassDef | None:
        cls = self.ctx.semantic.resolver.instance_class(expr, scope, order)
        return cls if cls is not None and self.ctx.semantic.class_family(cls) == "nnx" else None

    def _nnx_transformed(self, info: FunctionInfo) -> bool:
        return isinstance(info.node, cst.FunctionDef) and any(
            (transform_name(self.ctx.names, d.decorator)[0] or "") in _NNX_TRACING for d in info.node.decorators)

    def _mode_switched(self, name: cst.BaseExpression) -> bool:
        """`model.eval()`, `model.train(...)`, `model.set_attributes(...)`, `nnx.set_mode(model,
        ...)` anywhere in the file: the mode at the traced call is not known."""
        text = self.ctx.code(name)
        for call, _scope, _order in self.ctx.semantic.calls:
            f = call.func
            if isinstance(f, cst.Attribute) and f.attr.value in _MODE_CALLS and self.ctx.code(f.value) == text:
                return True
            if (self.ctx.qualname(f) or "").startswith("flax.nnx.") and (self.ctx.qualname(f) or "").rsplit(".", 1)[1] in _MODE_CALLS \
                    and call.args and self.ctx.code(call.args[0].value) == text:
                return True
        return False

    @staticmethod
    def _passes_mode(call: cst.Call) -> bool:
        """The call hands the module a mode argument (`model(x, deterministic=True)`, `train=`):
        whether the layers update state depends on it."""
        return any(a.keyword is not None and a.keyword.value in (
            "deterministic", "use_running_average", "train", "training", "is_training", "mode") for a in call.args)

    def _layer_mutation(self, ctor: cst.Call, call: cst.Call | None) -> tuple[str, str] | None:
        """An `nnx.Dropout`/`nnx.BatchNorm` built by `ctor` that updates state when called (by
        `call`, if known): train mode, a non-zero rate, keys to draw from."""
        q = self.ctx.qualname(ctor.func)
        if q == "flax.nnx.Dropout":
            rate = call_arg(ctor, 0, "rate")
            det = _kw(ctor, "deterministic")
            if _zero_rate(rate) or (det is not None and not _is_lit(det, "False")):
                return None
            if call is not None:
                cdet = _kw(call, "deterministic")
                if cdet is not None and not _is_lit(cdet, "False"):
                    return None
            if _kw(ctor, "rngs") is None and (call is None or _kw(call, "rngs") is None):
                return None  # no keys: a different error (`no rngs argument was provided`)
            return "an `nnx.Dropout` in train mode, which draws from its `Rngs`", "RngCount"
        if q == "flax.nnx.BatchNorm":
            ura = _kw(ctor, "use_running_average")
            if ura is not None and not _is_lit(ura, "False"):
                return None
            if call is not None:
                c = _kw(call, "use_running_average")
                if c is not None and not _is_lit(c, "False"):
                    return None
            return "an `nnx.BatchNorm` in train mode, which updates its batch statistics", "BatchStat"
        return None

    def _attrs(self, cls: cst.ClassDef) -> dict[str, cst.BaseExpression]:
        """`self.<name> = <value>` in the class's `__init__` (one assignment each)."""
        init = self.ctx.semantic.method(cls, "__init__")
        out: dict[str, cst.BaseExpression] = {}
        seen: set[str] = set()
        if init is None:
            return out
        for node in own_nodes(init.node):
            if isinstance(node, cst.Assign) and len(node.targets) == 1:
                t = node.targets[0].target
                if isinstance(t, cst.Attribute) and isinstance(t.value, cst.Name) and t.value.value == init.self_name:
                    name = t.attr.value
                    if name in seen:
                        out.pop(name, None)
                    else:
                        out[name] = node.value
                    seen.add(name)
        return out

    def _mutation(self, cls: cst.ClassDef, method: str, depth: int) -> tuple[str, str] | None:
        """What calling `cls.method` updates, on evidence from this file: a Dropout/BatchNorm
        attribute in train mode, an attribute of a module class of this file that does, or an
        assignment to an NNX Variable attribute's value."""
        if depth > 4:
            return None
        semantic = self.ctx.semantic
        info = semantic.method(cls, method)
        if info is None or not isinstance(info.node, cst.FunctionDef):
            return None
        me = info.self_name
        attrs = self._attrs(cls)
        for node in own_nodes(info.node):
            if isinstance(node, (cst.Assign, cst.AugAssign)):
                targets = [t.target for t in node.targets] if isinstance(node, cst.Assign) else [node.target]
                for t in targets:
                    if isinstance(t, cst.Attribute) and isinstance(t.value, cst.Name) and t.value.value == me \
                            and isinstance(node, cst.Assign):
                        return (f"sets `{me}.{t.attr.value}` (in `{cls.name.value}.{method}`)", f"'{cls.name.value}'")
                    if isinstance(t, cst.Attribute) and t.attr.value == "value" and isinstance(t.value, cst.Attribute) \
                            and isinstance(t.value.value, cst.Name) and t.value.value.value == me:
                        value = attrs.get(t.value.attr.value)
                        if isinstance(value, cst.Call) and self._variable_type(value.func) is not None:
                            err = self._variable_type(value.func)
                            return f"assigns `{me}.{t.value.attr.value}.value` (in `{cls.name.value}.{method}`)", err
            if not isinstance(node, cst.Call):
                continue
            f = node.func
            if not (isinstance(f, cst.Attribute) and isinstance(f.value, cst.Name) and f.value.value == me):
                continue
            name = f.attr.value
            value = attrs.get(name)
            if isinstance(value, cst.Call):
                layer = self._layer_mutation(value, node)
                if layer is not None:
                    return f"calls `{me}.{name}`, {layer[0]}", layer[1]
                if self._passes_mode(node):
                    continue
                sub = semantic.resolver.class_named(value.func, info.node, 1 << 30)
                if sub is not None and semantic.class_family(sub) == "nnx" and sub is not cls:
                    found = self._mutation(sub, "__call__", depth + 1)
                    if found is not None:
                        return f"calls `{me}.{name}` (a `{sub.name.value}`), which {found[0]}", found[1]
                if self.ctx.qualname(value.func) == "flax.nnx.Rngs":
                    return f"draws a key from `{me}.{name}`, an `nnx.Rngs`", "RngCount"
            elif semantic.method(cls, name) is not None and name != method and not self._passes_mode(node):
                found = self._mutation(cls, name, depth + 1)
                if found is not None:
                    return found
        return None

    def _variable_type(self, func: cst.BaseExpression) -> str | None:
        q = self.ctx.qualname(func)
        if q in _VARIABLES:
            return q.rsplit(".", 1)[1]
        cls = self.ctx.semantic.resolver.class_named(func, self.ctx.index.module, 1 << 30)
        if cls is not None and any((self.ctx.qualname(b.value) or "") in _VARIABLES for b in cls.bases):
            return cls.name.value
        return None


# --------------------------------------------------------------------------------- JD213


class NnxScanInAxesArity(LintRule):
    code = "JD213"
    name = "nnx-scan-in-axes-arity"
    severity = Severity.ERROR
    summary = ("`nnx.scan` whose `in_axes` (default `(nnx.Carry, 0)`) has a different number of entries "
               "than the scanned function's positional parameters")
    fix_title = ("Give `in_axes` one entry per argument, e.g. `in_axes=(None, nnx.Carry, 0)` for "
                 "`f(module, carry, x)`, with a matching `out_axes`")
    requires = ("flax.nnx",)

    def visit_Call(self, node: cst.Call) -> None:
        if self.ctx.qualname(node.func) != "flax.nnx.scan" or any(a.star for a in node.args):
            return
        fn = arg(node, 0, "f")
        if fn is None:
            return
        for info in self.ctx.resolve_functions(fn):
            if info.is_method:
                return
            self._check(node, node, info, options_positional=True)
            return

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        info = self.ctx.semantic.function(node)
        if info is None or info.is_method:
            return
        for dec in node.decorators:
            q, opts = transform_name(self.ctx.names, dec.decorator)
            if q == "flax.nnx.scan":
                if dec is node.decorators[-1]:
                    self._check(dec, opts, info, options_positional=False)
                return

    def _check(self, where: cst.CSTNode, options: cst.Call | None, info: FunctionInfo, options_positional: bool) -> None:
        axes = call_arg(options, None, "in_axes") if options is not None else None
        if axes is None:
            n, shown = 2, "the default `(nnx.Carry, 0)`"
        elif isinstance(axes, cst.Tuple):
            n, shown = len(axes.elements), f"`{self.ctx.code(axes)}`"
        elif self.ctx.qualname(axes) == "flax.nnx.Carry":
            n, shown = 1, "`nnx.Carry`"
        else:
            return  # an int / None for every argument, or a value we can't read
        if options is not None and any(a.star for a in options.args):
            return
        p = info.node.params
        if isinstance(p.star_arg, cst.Param):
            return
        params = [*p.posonly_params, *p.params]
        required = [x for x in params if x.default is None]
        if len(required) <= n <= len(params):
            return
        names = ", ".join(x.name.value for x in params)
        what = "the lambda" if info.name == "<lambda>" else f"`{info.name}`"
        error = ("`ValueError: When in_axes=Carry, the function must take exactly one argument`"
                 if axes is not None and not isinstance(axes, cst.Tuple) else
                 "`ValueError: pytree structure error: different lengths of tuple`")
        self.report(
            where,
            f"`nnx.scan` maps {shown} ({n} entr{'y' if n == 1 else 'ies'}) onto {what}, which takes "
            f"{len(required) if len(required) > n else len(params)} positional argument"
            f"{'s' if max(len(required), len(params)) != 1 else ''} ({names}): {error}",
        )
