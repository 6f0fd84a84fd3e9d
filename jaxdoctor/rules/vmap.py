"""Rules about what `vmap` maps: axis 0 of a value that has no axis (failure mode C)."""

from __future__ import annotations

import re

import libcst as cst

from jaxdoctor.findings import Severity
from jaxdoctor.rules._syntax import arg, is_none, transform_name
from jaxdoctor.static.rule import LintRule
from jaxdoctor.static.syntax import annotation_names
from jaxdoctor.static.index import FunctionInfo

#: `equinox.filter_vmap` maps only arrays by default, so it is not listed.
_VMAPS = frozenset({"jax.vmap", "flax.nnx.vmap"})
_SHAPE_NAME = re.compile(r"(?i)(^|_)shapes?$")
_NON_ARRAY_ANNOTATIONS = frozenset({"tuple", "Tuple", "Shape", "str", "Rngs"})


def axes_for(axes: cst.BaseExpression | None, n: int) -> list[str]:
    """Per positional argument: "mapped" (an int axis), "none" (broadcast) or "?" (unknown)."""
    if axes is None:
        return ["mapped"] * n
    if is_none(axes):
        return ["none"] * n
    if isinstance(axes, cst.Integer):
        return ["mapped"] * n
    if isinstance(axes, (cst.Tuple, cst.List)):
        out = []
        for el in axes.elements:
            v = el.value
            out.append("none" if is_none(v) else "mapped" if isinstance(v, cst.Integer) else "?")
        return out + ["?"] * max(0, n - len(out))
    return ["?"] * n


def non_array(names, e: cst.BaseExpression) -> str | None:
    """What a call-site argument is, when it is certainly not an array: a shape tuple, a
    Python number, a string, `x.shape`, `len(x)`, `nnx.Rngs(...)`."""
    if isinstance(e, (cst.Integer, cst.Float)):
        return "a Python number"
    if isinstance(e, (cst.SimpleString, cst.ConcatenatedString, cst.FormattedString)):
        return "a string"
    if isinstance(e, cst.Name) and e.value in ("True", "False"):
        return "a Python bool"
    if isinstance(e, (cst.Tuple, cst.List)) and e.elements and all(
        isinstance(el.value, (cst.Integer, cst.Float)) for el in e.elements
    ):
        return "a tuple of Python numbers (a shape?)"
    if isinstance(e, cst.Attribute) and e.attr.value == "shape":
        return "a shape tuple"
    if isinstance(e, cst.Call):
        q = names.qualname(e.func)
        if q == "builtins.len":
            return "a Python int"
        if q == "flax.nnx.Rngs":
            return "an `nnx.Rngs` holding unsplit keys"
    return None


def _all_positional(info: FunctionInfo) -> list[cst.Param]:
    p = info.node.params
    return [*p.posonly_params, *p.params]


class VmapAxisOnNonArray(LintRule):
    code = "JD108"
    name = "vmap-axis-on-non-array"
    severity = Severity.ERROR
    summary = "`vmap` maps axis 0 of a shape tuple, Python scalar, string or `nnx.Rngs`"
    fix_title = (
        "Broadcast the argument with `None` in `in_axes` (e.g. `in_axes=(0, None)`), close over "
        "it, or mark it static"
    )
    trace_fix_title = "Use `in_axes=None` for arguments that are not batched arrays, e.g. `in_axes=(0, None)`"

    def _options(self, expr: cst.BaseExpression) -> tuple[str | None, cst.BaseExpression | None, bool]:
        """(vmap qualname, in_axes, whether options could be read) of a decorator expression."""
        q, opts = transform_name(self.ctx.names, expr)
        if q not in _VMAPS:
            return None, None, False
        if opts is None:
            return q, None, True
        if any(a.star for a in opts.args):
            return q, None, False
        is_partial = self.ctx.names.qualname(opts.func) != q
        axes = arg(opts, None if is_partial else 1, "in_axes")
        return q, axes, True

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        info = self.ctx.semantic.function(node)
        if info is None:
            return
        for dec in node.decorators:
            q, axes, ok = self._options(dec.decorator)
            if q is not None and ok:
                self._check_params(dec, q, info, axes, bound=0)

    def visit_Call(self, node: cst.Call) -> None:
        names = self.ctx.names
        q = names.qualname(node.func)
        scope = self.ctx.scope()
        if q in _VMAPS and not any(a.star for a in node.args):
            axes = arg(node, 1, "in_axes")
            fn = arg(node, 0, "f") or arg(node, 0, "fun")
            if fn is not None:
                # `vmap(partial(f, shape, n=3))`, `g = partial(...); vmap(vmap(g))`: the arguments
                # bound by the partial are closed over, not mapped; vmap's axes apply to the
                # parameters after them
                order = self.ctx.index.order.get(node, 1 << 30)
                for callee in self.ctx.semantic.resolver.callees(fn, scope, order):
                    info = callee.info
                    if callee.bound.star_kwargs or isinstance(fn, cst.Attribute) or info.is_method:
                        continue
                    if callee.transform is not None and callee.transform.qualname not in _VMAPS:
                        continue  # `vmap(jit(f))`: the inner transform's call decides
                    self._check_params(node, q, info, axes, bound=callee.bound.positional,
                                       bound_names=callee.bound.keywords)
            return
        # call sites: `jax.vmap(f, ...)(args)`, or a call of a vmap-decorated function
        target = None
        if isinstance(node.func, cst.Call):
            inner = names.qualname(node.func.func)
            if inner in _VMAPS and not any(a.star for a in node.func.args):
                target = (inner, arg(node.func, 1, "in_axes"), 0)
        elif q is None:
            for info in self.ctx.resolve_functions(node.func):
                if not isinstance(info.node, cst.FunctionDef):
                    continue
                if any(transform_name(names, d.decorator)[0] == "flax.nnx.split_rngs"
                       for d in info.node.decorators):
                    return  # the `Rngs` argument is split: JD210 checks the rest
                for dec in info.node.decorators:
                    vq, axes, ok = self._options(dec.decorator)
                    if vq is not None and ok:
                        # a decorated method called as `self.m(...)`: `self` is argument 0
                        skip = 1 if info.is_method and not info.is_staticmethod else 0
                        target = (vq, axes, skip)
                        break
        if target is None:
            return
        vq, axes, skip = target
        positional = [a for a in node.args if a.keyword is None]
        if any(a.star for a in node.args):
            return
        kinds = axes_for(axes, skip + len(positional))
        for i, a in enumerate(positional):
            what = non_array(names, a.value)
            if what is not None and kinds[skip + i] == "mapped":
                self.report(
                    a.value,
                    f"`{vq.replace('flax.nnx.', 'nnx.')}` maps axis 0 of argument {i} "
                    f"`{self.ctx.code(a.value)}`, which is {what}: raises \"vmap was requested to "
                    "map its argument along axis 0 ... rank ... is only 0\"",
                )
        for a in node.args:
            if a.keyword is not None and axes is not None and not is_none(axes):
                what = non_array(names, a.value)
                if what is not None:
                    self.report(
                        a.value,
                        f"`{vq.replace('flax.nnx.', 'nnx.')}` maps axis 0 of keyword argument "
                        f"`{a.keyword.value}={self.ctx.code(a.value)}`, which is {what}",
                    )

    def _check_params(self, where: cst.CSTNode, q: str, info: FunctionInfo,
                      axes: cst.BaseExpression | None, bound: int,
                      bound_names: frozenset[str] = frozenset()) -> None:
        """A vmapped function whose mapped parameter is, by name or annotation, a shape/string.
        The name alone counts only under the default `in_axes`: an explicit `in_axes=(0, 0)`
        maps a parameter named `shape` on purpose (a batch of per-example shapes)."""
        if isinstance(info.node.params.star_arg, cst.Param):
            return
        params = [p for p in _all_positional(info)[bound:] if p.name.value not in bound_names]
        explicit = axes is not None and not (isinstance(axes, cst.Integer) and axes.value == "0")
        if info.is_staticmethod or not info.is_method:
            pass
        elif q == "jax.vmap":
            return  # jax.vmap on an unbound method: `self` is not an array; leave it
        kinds = axes_for(axes, len(params))
        for i, p in enumerate(params):
            if kinds[i] != "mapped" or p.default is not None:
                continue
            ann = annotation_names(p)
            if (_SHAPE_NAME.search(p.name.value) and not explicit) or (ann and ann & _NON_ARRAY_ANNOTATIONS and "?" not in ann
                                                     and not ann & {"Array", "ndarray", "ArrayLike"}):
                if "Rngs" in ann:
                    continue  # JD210's business
                self.report(
                    where,
                    f"`{q.replace('flax.nnx.', 'nnx.')}` maps axis 0 of parameter `{p.name.value}` of "
                    f"`{info.name}`, which looks like a shape or other non-array: add `None` for it "
                    "in `in_axes`",
                )
                return
