"""What a transform makes of the parameters of the function it is given (DESIGN §3).

`jax.jit` traces every parameter not in `static_argnums`/`static_argnames`; `vmap` maps the
parameters whose `in_axes` entry is not None and hands the others through as the caller passed
them; `grad` differentiates its `argnums`; `eqx.filter_*` traces arrays and keeps Python values
static; loop bodies and `cond` branches receive traced operands. A parameter a transform hands
through keeps what its callers pass (`from_callers`). Options that are not literals
(`static_argnums=nums`) leave every parameter unknown: no evidence, no error.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import libcst as cst

from jaxdoctor.static.index import MAYBE_STATE, TRACED_STATE, FunctionInfo
from jaxdoctor.static.names import ImportTable
from jaxdoctor.static.resolve import Partial
from jaxdoctor.static.syntax import (
    annotated_array,
    annotated_container,
    call_arg,
    is_literal,
    literal_ints,
    literal_strs,
    never_traced,
    scalar_annotation,
)
from jaxdoctor.static.transforms import PARTIALS, Params, Transform
from jaxdoctor.static.values import ARRAY, CONTAINER, STATIC, TRACED, UNKNOWN


@dataclass
class Seed:
    #: parameter → value the transform gives it
    values: dict[str, int] = field(default_factory=dict)
    #: parameters that keep what the callers pass (static, unmapped, not differentiated)
    from_callers: set[str] = field(default_factory=set)
    state: int = TRACED_STATE


_MISSING = object()  # the option is not given
_OPAQUE = object()  # it may be given through `**kwargs`


def _ints(v) -> set[int] | None:
    if v is _MISSING:
        return set()
    if v is _OPAQUE:
        return None
    return literal_ints(v)


def _strs(v) -> set[str] | None:
    if v is _MISSING:
        return set()
    if v is _OPAQUE or not _is_str_literal(v):
        return None
    return literal_strs(v)


def seed(info: FunctionInfo, spec: Transform, options: cst.Call | None, bound: Partial,
         decorated: bool, names: ImportTable, passed: set[str]) -> Seed:
    """The parameter values `spec` gives `info` when applied with the options of `options` (the
    transform call, or a decorator factory call), after `partial` bound `bound`. `passed`: the
    parameters some call site of the transformed function passes explicitly."""
    positional = info.positional[bound.positional:]
    if spec.family == "linen" and spec.control_flow and positional:
        positional = positional[1:]  # Linen lifted control flow: the module comes first
    kwonly = [p.name.value for p in info.node.params.kwonly_params]
    out = Seed(state=TRACED_STATE if spec.traces else MAYBE_STATE)

    def opt(position: int | None, keyword: str):
        """The option given at `position` / `keyword=`; `_MISSING` when absent, `_OPAQUE`
        when `**kwargs` may hold it."""
        if options is None:
            return _MISSING
        if decorated and names.qualname(options.func) in PARTIALS:
            # partial(jax.jit, static_argnums=...): keywords only; position shifted by one
            found = call_arg(options, None if position is None else position + 1, keyword)
        elif not decorated:
            found = call_arg(options, position, keyword)
        else:
            found = call_arg(options, None, keyword)
        if found is None:
            return _OPAQUE if any(a.star == "**" for a in options.args) else _MISSING
        return found

    def traced(name: str) -> int:
        p = info.param(name)
        if p is None:
            return TRACED
        if never_traced(p):
            return STATIC  # `mode: str`: JAX cannot trace a string, it must be static
        if annotated_array(p) or scalar_annotation(p):
            return ARRAY  # `x: jax.Array`, `n: int` traced: a traced array
        if p.star or annotated_container(p):  # *args / **kwargs, `tuple[Array, Array]`
            return CONTAINER
        return TRACED

    def star_params() -> list[str]:
        p = info.node.params
        extra = []
        if isinstance(p.star_arg, cst.Param):
            extra.append(p.star_arg.name.value)
        if p.star_kwarg is not None:
            extra.append(p.star_kwarg.name.value)
        return extra

    everything = positional + kwonly + star_params()
    params = spec.params
    if params is Params.JIT:
        nums, strs = _ints(opt(None, "static_argnums")), _strs(opt(None, "static_argnames"))
        if spec.qualname.endswith("shard_map"):
            specs = opt(None, "in_specs")
            _shard_map(info, positional, None if specs is _OPAQUE else specs, out, traced)
            return out
        if nums is None or strs is None:
            out.values = {n: UNKNOWN for n in everything}  # options we cannot read
            return out
        # a decorated method's `static_argnums` count `self` (jit sees the plain function), and
        # so do Linen's lifted `nn.jit`/`nn.remat` applied to a Module class (`nn.remat(Block,
        # static_argnums=(2,))` makes `__call__(self, x, deterministic)`'s flag static)
        offset = 1 if (decorated or spec.family == "linen") and info.is_method and not info.is_staticmethod else 0
        for i, name in enumerate(positional):
            if i + offset in nums or name in strs:
                out.from_callers.add(name)
            else:
                out.values[name] = _defaulted(info, name, passed, traced)
        for name in kwonly:
            if name in strs:
                out.from_callers.add(name)
            else:
                out.values[name] = _defaulted(info, name, passed, traced)
        for name in star_params():
            out.values[name] = CONTAINER
    elif params is Params.IN_AXES:
        axes = opt(spec.axes_position if not decorated else None, "in_axes")
        static_nums = _ints(opt(None, "static_broadcasted_argnums"))
        mapped = None if axes is _OPAQUE else _mapped_positions(None if axes is _MISSING else axes, len(positional))
        if mapped is None or static_nums is None:
            out.values = {n: UNKNOWN for n in everything}
            return out
        for i, name in enumerate(positional):
            if mapped[i] and i not in static_nums:
                out.values[name] = _defaulted(info, name, passed, traced)
            else:
                out.from_callers.add(name)
        out.from_callers.update(kwonly)  # vmap maps positional arguments only
        for name in star_params():
            out.values[name] = CONTAINER
    elif params is Params.ARGNUMS:
        argnums = opt(spec.axes_position if not decorated else None, "argnums")
        nums = {0} if argnums is _MISSING else _ints(argnums)
        if nums is None:
            out.values = {n: UNKNOWN for n in everything}
            return out
        for i, name in enumerate(positional):
            if i in nums:
                out.values[name] = traced(name) if traced(name) != STATIC else STATIC
            else:
                out.from_callers.add(name)
        out.from_callers.update(kwonly)
    elif params is Params.FIRST:
        for i, name in enumerate(positional):
            if i == 0:
                out.values[name] = TRACED
            else:
                out.from_callers.add(name)
        out.from_callers.update(kwonly)
    elif params is Params.FILTER:
        # eqx.filter_*: arrays are traced, Python values stay static — what the callers pass
        for name in positional + kwonly:
            p = info.param(name)
            if p is not None and annotated_array(p):
                out.values[name] = ARRAY
            elif p is not None and (never_traced(p) or scalar_annotation(p)):
                out.values[name] = STATIC
            else:
                out.from_callers.add(name)
        for name in star_params():
            out.from_callers.add(name)
    else:  # OPERANDS: loop bodies, branches, custom rules
        static_nums: set[int] = set()
        if spec.static_keyword:  # custom_vjp's `nondiff_argnums`
            static_nums = _ints(opt(None, spec.static_keyword)) or set()
        for i, name in enumerate(positional):
            p = info.param(name)
            if p is not None and p.default is not None:
                out.values[name] = STATIC  # `lambda x, e=e: ...`: the default is used
            elif i in static_nums:
                out.values[name] = STATIC
            elif not spec.traces:
                out.from_callers.add(name)
            else:
                out.values[name] = traced(name)
        for name in kwonly:
            p = info.param(name)
            out.values[name] = STATIC if p is not None and p.default is not None else UNKNOWN
        for name in star_params():
            out.values[name] = CONTAINER if spec.traces else UNKNOWN
        if spec.qualname in ("jax.lax.fori_loop", "flax.nnx.fori_loop") and positional:
            if out.values.get(positional[0]) == TRACED:
                out.values[positional[0]] = ARRAY  # the loop index: a traced int
        if spec.qualname in ("jax.lax.scan", "flax.nnx.scan", "equinox.internal.scan") \
                and options is not None and not decorated:
            xs = call_arg(options, 2, "xs")
            if (xs is None or (isinstance(xs, cst.Name) and xs.value == "None")) and len(positional) > 1:
                out.values[positional[1]] = STATIC  # scan over nothing: `x` is None
    # `partial(f, block_k=128)`: a Python value closed over, not an argument of the transform
    for name in list(out.values):
        if bound.closed(info, name):
            out.values[name] = STATIC
    for name in list(out.from_callers):
        if bound.closed(info, name):
            out.from_callers.discard(name)
            out.values[name] = STATIC
    return out


def _is_str_literal(expr) -> bool:
    if isinstance(expr, (cst.SimpleString, cst.ConcatenatedString)):
        return True
    if isinstance(expr, (cst.Tuple, cst.List)):
        return all(isinstance(el.value, (cst.SimpleString, cst.ConcatenatedString)) for el in expr.elements)
    return False


def _defaulted(info: FunctionInfo, name: str, passed: set[str], traced) -> int:
    """A traced parameter with a literal default (`training=False`) is traced only when a call
    passes it; otherwise the function sees the default, a Python value — or, if callers we
    cannot see pass it, a tracer: unknown."""
    p = info.param(name)
    if p is not None and p.default is not None and is_literal(p.default) and name not in passed:
        return UNKNOWN
    return traced(name)


def _mapped_positions(axes: cst.BaseExpression | None, n: int) -> list[bool] | None:
    """For each positional parameter, whether `in_axes` maps it (None means broadcast); None
    when `in_axes` is not a literal."""
    if axes is None:
        return [True] * n
    if isinstance(axes, cst.Name) and axes.value == "None":
        return [False] * n
    if isinstance(axes, (cst.Integer, cst.UnaryOperation)):
        return [True] * n
    if isinstance(axes, (cst.Tuple, cst.List)):
        out = []
        for el in axes.elements:
            if isinstance(el, cst.StarredElement):
                return None
            v = el.value
            out.append(not (isinstance(v, cst.Name) and v.value == "None"))
        return (out + [True] * n)[:n]
    if isinstance(axes, (cst.Dict, cst.Call, cst.Attribute)):
        return [True] * n  # a pytree of axes / nnx.StateAxes: the argument is mapped
    return None


def _shard_map(info: FunctionInfo, positional: list[str], specs, out: Seed, traced) -> None:
    """`shard_map`: arguments with a `None` in `in_specs` are closed over as Python values;
    `in_specs` we cannot read leave every argument unknown."""
    if specs is _MISSING or isinstance(specs, cst.Call):
        entries: list | None = [_MISSING] * len(positional)  # inferred, or one spec for all
    elif isinstance(specs, (cst.Tuple, cst.List)) and not any(
            isinstance(el, cst.StarredElement) for el in specs.elements):
        entries = [el.value for el in specs.elements]
    else:
        entries = None
    for i, name in enumerate(positional):
        if entries is None or i >= len(entries):
            out.values[name] = UNKNOWN
        elif isinstance(entries[i], cst.Name) and entries[i].value == "None":
            out.from_callers.add(name)
        else:
            out.values[name] = traced(name)


__all__ = ["Seed", "seed", "MAYBE_STATE", "TRACED_STATE"]
