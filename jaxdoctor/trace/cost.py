"""`--cost`: loop-aware FLOPs from the jaxpr, and memory from XLA's compiled program.

FLOPs are counted per equation (2·M·N·K for a matmul, one per output element for elementwise
math, one per input element for reductions, nothing for pure data movement), and a loop body is
multiplied by its trip count: a `scan`'s `length`, a `fori_loop`-shaped `while`'s bounds.
A `while` whose trip count is not static is counted once and reported in `unknown_trip_loops`.
A `cond` costs its most expensive branch. XLA's own `cost_analysis()` counts a loop body once,
which is why this count exists.

Memory is XLA's: argument, output and temp (scratch) bytes of the compiled program, from
`jax.jit(f).lower(*specs).compile().memory_analysis()`. Lowering and compiling allocate nothing
for the arguments: specs are `jax.ShapeDtypeStruct`s.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax

from jaxdoctor.trace import jax_internals as ji

#: primitives that only move, reshape or relabel data
_FREE = frozenset(
    {
        "broadcast_in_dim",
        "reshape",
        "squeeze",
        "expand_dims",
        "transpose",
        "slice",
        "dynamic_slice",
        "dynamic_update_slice",
        "gather",
        "concatenate",
        "pad",
        "rev",
        "convert_element_type",
        "bitcast_convert_type",
        "copy",
        "copy_p",
        "stop_gradient",
        "iota",
        "select_n",
        "sharding_constraint",
        "device_put",
        "random_wrap",
        "random_unwrap",
        "random_seed",
        "random_fold_in",
        "random_split",
        "optimization_barrier",
        "pjit",
        "jit",
        "name",
        "debug_callback",
        "debug_print",
        "pure_callback",
        "io_callback",
        "split",
    }
)
_REDUCTIONS = frozenset(
    {
        "reduce_sum",
        "reduce_max",
        "reduce_min",
        "reduce_prod",
        "reduce_and",
        "reduce_or",
        "reduce_xor",
        "argmax",
        "argmin",
        "cumsum",
        "cumprod",
        "cummax",
        "cummin",
        "cumlogsumexp",
        "reduce_precision",
    }
)


def _size(aval: Any) -> int:
    shape = ji.aval_shape(aval)
    return int(math.prod(shape)) if shape is not None else 0


def _eqn_flops(eqn: Any) -> int:
    name = ji.primitive_name(eqn)
    if name == "dot_general":
        (lc, _rc), _ = eqn.params["dimension_numbers"]
        lhs = ji.aval_shape(ji.aval_of(eqn.invars[0])) or ()
        k = math.prod(lhs[d] for d in lc) if lc else 1
        return 2 * _size(ji.aval_of(eqn.outvars[0])) * int(k)
    if name == "conv_general_dilated":
        rhs = ji.aval_shape(ji.aval_of(eqn.invars[1])) or ()
        dn = eqn.params.get("dimension_numbers")
        out_feat_dim = (
            dn.rhs_spec[0] if dn is not None and hasattr(dn, "rhs_spec") else 0
        )
        per_out = math.prod(rhs) // max(1, rhs[out_feat_dim]) if rhs else 0
        return 2 * _size(ji.aval_of(eqn.outvars[0])) * int(per_out)
    if name in _FREE:
        return 0
    if name in _REDUCTIONS or name.startswith("reduce_"):
        return sum(_size(ji.aval_of(v)) for v in eqn.invars if not ji.is_literal(v))
    return sum(_size(ji.aval_of(v)) for v in eqn.outvars)


def _jaxpr_flops(jaxpr: Any, stats: dict) -> int:
    total = 0
    for eqn in jaxpr.eqns:
        name = ji.primitive_name(eqn)
        subs = ji.sub_jaxprs(eqn)
        if name in ("scan", "while"):
            stats["loops"] += 1
        if name == "scan":
            _, _, length = ji.scan_layout(eqn)
            total += length * _jaxpr_flops(subs[0].jaxpr, stats)
        elif name == "while":
            trip = ji.while_trip_count(eqn)
            body = _jaxpr_flops(subs[1].jaxpr, stats) + _jaxpr_flops(
                subs[0].jaxpr, stats
            )
            if trip is None:
                stats["unknown_trip_loops"] += 1
                trip = 1
            total += trip * body
        elif name == "cond":
            total += max((_jaxpr_flops(s.jaxpr, stats) for s in subs), default=0)
        elif subs:
            total += sum(_jaxpr_flops(s.jaxpr, stats) for s in subs)
        else:
            total += _eqn_flops(eqn)
    return total


def jaxpr_flops(closed: Any) -> dict:
    """{"flops": loop-aware count, "loops": scan/while loops, "unknown_trip_loops": whiles counted once}."""
    stats = {"loops": 0, "unknown_trip_loops": 0}
    flops = _jaxpr_flops(closed.jaxpr, stats)
    return {"flops": int(flops), **stats}


def compiled_memory(fn: Callable, *args: Any, **kwargs: Any) -> dict:
    """Argument, output and temp bytes of `jax.jit(fn)` compiled for these (abstract) arguments."""
    compiled = jax.jit(fn).lower(*args, **kwargs).compile()
    ma = compiled.memory_analysis()
    out = {
        "argument_bytes": None,
        "output_bytes": None,
        "temp_bytes": None,
        "alias_bytes": None,
    }
    if ma is not None:
        out["argument_bytes"] = int(getattr(ma, "argument_size_in_bytes", 0))
        out["output_bytes"] = int(getattr(ma, "output_size_in_bytes", 0))
        out["temp_bytes"] = int(getattr(ma, "temp_size_in_bytes", 0))
        out["alias_bytes"] = int(getattr(ma, "alias_size_in_bytes", 0))
    try:
        ca = compiled.cost_analysis()
        if isinstance(ca, (list, tuple)):
            ca = ca[0] if ca else None
        out["xla_flops"] = int(ca.get("flops", 0)) if ca else None
    except Exception:  # noqa: BLE001 - some backends have no cost analysis
        out["xla_flops"] = None
    return out


def jaxpr_memory(closed: Any) -> dict:
    """`compiled_memory` of a closed jaxpr, compiled for its own input types."""
    specs = [
        jax.ShapeDtypeStruct(ji.aval_shape(ji.aval_of(v)), ji.aval_of(v).dtype)
        for v in closed.jaxpr.invars
    ]
    return compiled_memory(ji.jaxpr_as_fun(closed), *specs)


def cost_report(
    closed: Any,
    fn: Callable | None = None,
    args: tuple = (),
    kwargs: dict | None = None,
) -> dict:
    """FLOPs of `closed`, plus memory of `fn(*args, **kwargs)` (or of `closed` itself)."""
    report = jaxpr_flops(closed)
    try:
        mem = (
            compiled_memory(fn, *args, **(kwargs or {}))
            if fn is not None
            else jaxpr_memory(closed)
        )
    except Exception as e:  # noqa: BLE001 - a program that traces may still fail to compile
        mem = {"error": f"{type(e).__name__}: {e}"}
    report.update(mem)
    if report.get("argument_bytes") is not None:
        report["total_bytes"] = (
            report["argument_bytes"] + report["output_bytes"] + report["temp_bytes"]
        )
    return report
