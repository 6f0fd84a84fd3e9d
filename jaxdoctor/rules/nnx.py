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
from jaxdoctor.static.syntax import annotation_names
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
