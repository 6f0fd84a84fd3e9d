"""Every use of JAX's private or unstable API in jaxdoctor lives in this file.

The contract: no other module imports `jax._src`, `jax.core`, `jax.interpreters` or
`jax.extend`, or reads private attributes of JAX's objects (a jaxpr equation's `source_info`,
a `DebugInfo`'s fields, a tracer's trace); it calls the functions here, or public `jax.*` API.
(Equinox's private call layout has its own file: `eqx_internals.py`.) A JAX upgrade that moves
`jax._src`, `source_info_util`, the jaxpr classes, the key-reuse checker, a batching rule or
the tracing entry points we hook touches this one file; `tests/test_layout.py` keeps it so.

The file has one section per owner; re-read it before editing.
"""

from __future__ import annotations

import functools
import traceback as _pytraceback
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import numpy as np

# ---------------------------------------------------------------------------------------------
# Section: jaxpr analyzers, source mapping and cost (jaxdoctor.trace.analyzers, source_map, cost)
# ---------------------------------------------------------------------------------------------
from jax.extend import core as _jcore  # the semi-public jaxpr types

ClosedJaxpr = _jcore.ClosedJaxpr
Jaxpr = _jcore.Jaxpr
JaxprEqn = _jcore.JaxprEqn
Literal = _jcore.Literal
Var = _jcore.Var
DropVar = _jcore.DropVar


class SrcFrame(NamedTuple):
    """One Python frame of an equation's traceback (1-based line, 1-based column)."""

    file: str
    function: str
    line: int
    column: int
    end_line: int
    end_column: int
    first_line: int  # co_firstlineno: the `def` line, or the first decorator's line


@functools.lru_cache(maxsize=4096)
def _frames_of_traceback(tb: Any) -> tuple[SrcFrame, ...]:
    from jax._src.lib import xla_client

    codes, lastis = tb.raw_frames()
    out = []
    for code, lasti in zip(codes, lastis):
        try:
            start_line, start_col, end_line, end_col = xla_client.Traceback.code_addr2location(code, lasti)
        except Exception:  # noqa: BLE001 - pragma: no cover - very old jaxlib
            start_line, start_col, end_line, end_col = code.co_firstlineno, -1, -1, -1
        start_line = start_line if start_line and start_line > 0 else code.co_firstlineno
        out.append(
            SrcFrame(
                file=code.co_filename,
                function=getattr(code, "co_qualname", code.co_name),
                line=start_line,
                column=(start_col + 1) if start_col is not None and start_col >= 0 else 1,
                end_line=end_line if end_line and end_line > 0 else start_line,
                end_column=(end_col + 1) if end_col is not None and end_col >= 0 else 1,
                first_line=code.co_firstlineno,
            )
        )
    return tuple(out)


def eqn_frames(eqn: Any) -> tuple[SrcFrame, ...]:
    """The Python frames recorded when `eqn` was traced, innermost first ((), if none)."""
    si = getattr(eqn, "source_info", None)
    tb = getattr(si, "traceback", None)
    if tb is None:
        return ()
    try:
        return _frames_of_traceback(tb)
    except TypeError:  # unhashable traceback object in some jaxlib build
        return _frames_of_traceback.__wrapped__(tb)


def exception_frames(exc: BaseException) -> tuple[SrcFrame, ...]:
    """Frames of an exception's traceback, innermost first (like `eqn_frames`)."""
    out = []
    for fs in reversed(_pytraceback.extract_tb(exc.__traceback__)):
        line = fs.lineno or 0
        col = getattr(fs, "colno", None)
        end_col = getattr(fs, "end_colno", None)
        out.append(
            SrcFrame(
                file=fs.filename,
                function=fs.name,
                line=line,
                column=(col + 1) if col is not None else 1,
                end_line=getattr(fs, "end_lineno", None) or line,
                end_column=(end_col + 1) if end_col is not None else 1,
                first_line=line,
            )
        )
    return tuple(out)


# --- atoms, avals, sizes ---------------------------------------------------------------------


def is_literal(atom: Any) -> bool:
    return isinstance(atom, Literal)


def is_dropvar(atom: Any) -> bool:
    return isinstance(atom, DropVar)


def literal_value(atom: Any) -> Any:
    return atom.val if isinstance(atom, Literal) else None


def aval_of(atom: Any) -> Any:
    return getattr(atom, "aval", None)


def is_key_dtype(dtype: Any) -> bool:
    try:
        return jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key)
    except Exception:  # noqa: BLE001
        return False


def aval_shape(aval: Any) -> tuple[int, ...] | None:
    shape = getattr(aval, "shape", None)
    if shape is None:
        return None
    try:
        return tuple(int(d) for d in shape)
    except Exception:  # noqa: BLE001 - symbolic dimensions
        return None


def aval_nbytes(aval: Any) -> int:
    """Bytes of one value of this abstract type (0 when unknown: tokens, symbolic shapes)."""
    shape = aval_shape(aval)
    dtype = getattr(aval, "dtype", None)
    if shape is None or dtype is None:
        return 0
    try:
        itemsize = np.dtype(dtype).itemsize
    except TypeError:
        itemsize = 8 if is_key_dtype(dtype) else 4  # threefry keys are 2 x u32
    return int(np.prod(shape, dtype=np.int64)) * itemsize


def aval_str(aval: Any) -> str:
    try:
        return aval.str_short(short_dtypes=True)
    except Exception:  # noqa: BLE001
        return str(aval)


def dtype_name(aval: Any) -> str:
    dtype = getattr(aval, "dtype", None)
    return "" if dtype is None else str(getattr(dtype, "name", dtype))


def is_weak_typed(aval: Any) -> bool:
    return bool(getattr(aval, "weak_type", False))


# --- sub-jaxprs of an equation ----------------------------------------------------------------


@dataclass(frozen=True)
class SubJaxpr:
    """A jaxpr nested in an equation, with how the equation's operands map onto it.

    `kind` is one of: "call" (invars map 1:1 onto the equation's invars, outvars onto its outvars),
    "scan", "while_cond", "while_body", "cond_branch", "opaque" (mapping unknown).
    `in_map[i]` is the index into `eqn.invars` of the sub-jaxpr's invar i (None: loop carry slot
    handled by the walker, or unknown).
    """

    kind: str
    jaxpr: Any  # core.Jaxpr
    consts: tuple  # values of the closed jaxpr's constvars
    in_map: tuple[int | None, ...]


def _open(j: Any) -> tuple[Any, tuple]:
    if isinstance(j, ClosedJaxpr):
        return j.jaxpr, tuple(j.consts)
    return j, ()


def primitive_name(eqn: Any) -> str:
    return eqn.primitive.name


def sub_jaxprs(eqn: Any) -> list[SubJaxpr]:
    """The jaxprs nested in `eqn` (scan/while/cond bodies, jit/remat/custom_* calls, shard_map)."""
    name = eqn.primitive.name
    params = eqn.params
    n_in = len(eqn.invars)
    if name == "scan":
        j, c = _open(params["jaxpr"])
        return [SubJaxpr("scan", j, c, tuple(range(n_in)))]
    if name == "while":
        cj, cc = _open(params["cond_jaxpr"])
        bj, bc = _open(params["body_jaxpr"])
        cn, bn = params["cond_nconsts"], params["body_nconsts"]
        n_carry = n_in - cn - bn
        cond_map = tuple(range(cn)) + tuple(cn + bn + i for i in range(n_carry))
        body_map = tuple(cn + i for i in range(bn)) + tuple(cn + bn + i for i in range(n_carry))
        return [SubJaxpr("while_cond", cj, cc, cond_map), SubJaxpr("while_body", bj, bc, body_map)]
    if name == "cond":
        out = []
        for br in params["branches"]:
            j, c = _open(br)
            out.append(SubJaxpr("cond_branch", j, c, tuple(range(1, n_in))))
        return out
    found = []
    for key in ("jaxpr", "call_jaxpr", "fun_jaxpr"):
        if key in params and params[key] is not None:
            j, c = _open(params[key])
            if hasattr(j, "eqns"):
                found.append((j, c))
    if not found:
        for v in params.values():
            for item in v if isinstance(v, (tuple, list)) else (v,):
                if isinstance(item, (ClosedJaxpr, Jaxpr)):
                    found.append(_open(item))
    out = []
    for j, c in found:
        if len(j.invars) == n_in:
            out.append(SubJaxpr("call", j, c, tuple(range(n_in))))
        else:
            out.append(SubJaxpr("opaque", j, c, tuple(None for _ in j.invars)))
    return out


def scan_layout(eqn: Any) -> tuple[int, int, int]:
    """(num_consts, num_carry, length) of a scan equation."""
    p = eqn.params
    return int(p["num_consts"]), int(p["num_carry"]), int(p["length"])


def while_layout(eqn: Any) -> tuple[int, int]:
    """(cond_nconsts, body_nconsts) of a while equation."""
    return int(eqn.params["cond_nconsts"]), int(eqn.params["body_nconsts"])


def while_trip_count(eqn: Any) -> int | None:
    """Trip count of a `fori_loop`-shaped while (`i < n` with literal start and stop), else None."""
    cn, bn = while_layout(eqn)
    cj, _ = _open(eqn.params["cond_jaxpr"])
    bj, _ = _open(eqn.params["body_jaxpr"])
    carries = eqn.invars[cn + bn :]
    if len(cj.eqns) != 1 or cj.eqns[0].primitive.name != "lt":
        return None
    lt = cj.eqns[0]
    cvars = list(cj.invars[cn:])
    a, b = lt.invars
    if not isinstance(a, Var) or a not in cvars:
        return None
    i_idx = cvars.index(a)
    start = literal_value(carries[i_idx])
    if isinstance(b, Literal):
        stop = b.val
    elif b in cvars and isinstance(carries[cvars.index(b)], Literal):
        stop = carries[cvars.index(b)].val
    else:
        return None
    # the body must add 1 to the counter
    bout = bj.outvars[i_idx]
    binv = bj.invars[bn + i_idx]
    for e in bj.eqns:
        if (
            e.outvars
            and e.outvars[0] is bout
            and e.primitive.name == "add"
            and binv in e.invars
            and any(isinstance(x, Literal) and x.val == 1 for x in e.invars)
        ):
            try:
                return max(0, int(stop) - int(start))
            except (TypeError, ValueError):
                return None
    return None


# --- how JAX's batching created an equation ---------------------------------------------------

#: batching-rule function name → what forced the broadcast.
_BATCHING_RULES = {
    "_cond_batching_rule": "cond",
    "_while_loop_batching_rule": "while",
    "_scan_batching_rule": "scan",
    "matchaxis": "vmap_out",
}


def _is_jax_file(path: str) -> bool:
    return "/jax/_src/" in path.replace("\\", "/")


def batching_origin(eqn: Any) -> str | None:
    """Which vmap batching rule emitted this broadcast: "cond", "while", "scan", "vmap_out" or None.

    Read from the equation's traceback (JAX's own frames). Equations re-emitted from an already
    traced jaxpr (a jit inside a vmap) carry the original user traceback instead, and give None.
    """
    frames = eqn_frames(eqn)
    seen_broadcast = False
    for fr in frames:
        if not _is_jax_file(fr.file):
            if seen_broadcast:
                return None
            continue
        fn = fr.function.split(".")[0]
        if fr.file.endswith("interpreters/batching.py") and fn in ("broadcast", "bdim_at_front"):
            seen_broadcast = True
            continue
        if seen_broadcast and fn in _BATCHING_RULES:
            return _BATCHING_RULES[fn]
        if seen_broadcast and fn in ("from_elt", "_batch_inner", "_batch_outer"):
            return "vmap_out"
    return None


_EXPLICIT_CASTS = frozenset({"astype", "_astype", "asarray", "array", "convert_element_type", "_ScalarMeta.__call__"})


def is_implicit_promotion(eqn: Any) -> bool:
    """True when a `convert_element_type` came from dtype promotion, not an explicit cast
    (`.astype`, `jnp.asarray(..., dtype)`, `lax.convert_element_type`, `jnp.float64(x)`)."""
    for fr in eqn_frames(eqn):
        if not _is_jax_file(fr.file):
            return True
        if fr.function in _EXPLICIT_CASTS:
            return False
    return True


# --- primitives by role ------------------------------------------------------------------------

CALLBACK_PRIMITIVES = frozenset({"debug_callback", "debug_print", "pure_callback", "io_callback", "callback"})
RANDOM_PRIMITIVES = frozenset(
    {"random_bits", "threefry2x32", "rng_bit_generator", "rng_uniform", "random_gamma"}
)
CONTROL_FLOW = frozenset({"scan", "while", "cond"})


# --- the key-reuse checker ---------------------------------------------------------------------


def check_key_reuse(jaxpr: Any) -> tuple[str, tuple[SrcFrame, ...]] | None:
    """Run JAX's key-reuse checker on a finished jaxpr (it follows typed keys only).

    Returns None when no key is reused, else (JAX's message, frames of the reusing equation,
    innermost first). Checker failures other than `KeyReuseError` are treated as "no finding".
    """
    from jax.errors import KeyReuseError
    from jax.experimental.key_reuse import _core as kr

    j = jaxpr.jaxpr if isinstance(jaxpr, ClosedJaxpr) else jaxpr
    try:
        kr.check_key_reuse_jaxpr(j)
    except KeyReuseError as e:
        cause: BaseException | None = e
        frames: tuple[SrcFrame, ...] = _checked_eqn_frames(e)
        while cause is not None and not frames:
            if type(cause).__name__ == "JaxStackTraceBeforeTransformation" or (
                isinstance(cause, KeyReuseError) and cause is not e
            ):
                frames = exception_frames(cause)
                if frames:
                    break
            cause = cause.__cause__
        return str(e).splitlines()[0], frames
    except Exception:  # noqa: BLE001
        return None
    return None


def _checked_eqn_frames(exc: BaseException) -> tuple[SrcFrame, ...]:
    """Frames (with columns) of the equation the key-reuse checker was at when it raised: the
    innermost `eqn` local of its traceback. The traceback JAX attaches has no columns."""
    found: tuple[SrcFrame, ...] = ()
    tb = exc.__traceback__
    while tb is not None:
        eqn = tb.tb_frame.f_locals.get("eqn")
        if isinstance(eqn, JaxprEqn):
            frames = eqn_frames(eqn)
            found = frames or found
        tb = tb.tb_next
    return found


# --- lowering for `--cost` ---------------------------------------------------------------------


def jaxpr_as_fun(closed: Any):
    return _jcore.jaxpr_as_fun(closed)


def iter_consts(closed: Any) -> Iterator[tuple[Any, Any]]:
    """(constvar, value) pairs of a closed jaxpr's top level."""
    j, consts = _open(closed)
    yield from zip(j.constvars, consts)


# ---------------------------------------------------------------------------------------------
# End of section: jaxpr analyzers. Other sections follow.
# ---------------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------------
# Section: trace front-end (jaxdoctor.trace.capture, explain, retrace, child)
# Hooks into JAX's tracing for run-under-the-doctor, and tracer/trace-state queries.
# ---------------------------------------------------------------------------------------------


def trace_state_clean() -> bool:
    """True when no JAX trace is active (eager, top-level execution)."""
    from jax._src import core as _core

    return _core.trace_state_clean()


def current_trace_is_staging() -> bool:
    """True when the current trace stages everything into a jaxpr (inside `jit`/`make_jaxpr`)."""
    from jax._src import core as _core
    from jax._src.interpreters import partial_eval as _pe

    return isinstance(_core.trace_ctx.trace, _pe.DynamicJaxprTrace)


def install_jit_trace_hook(hook: Any) -> Any:
    """Route every `jit` trace (a trace-cache miss of jit/pjit/nnx.jit/eqx.filter_jit/make_jaxpr)
    through `hook(original, fun, args, kwargs, static_argnums, static_argnames, debug_info)`,
    which must call `original()` and return its result. Returns an uninstall callable."""
    from jax._src import pjit as _pjit

    original = _pjit._trace_for_jit

    @functools.wraps(original)
    def _trace_for_jit(fun, ji, ctx_mesh, dbg, avals, args, kwargs):
        return hook(
            lambda: original(fun, ji, ctx_mesh, dbg, avals, args, kwargs),
            fun, args, kwargs, tuple(ji.static_argnums), tuple(ji.static_argnames), dbg,
        )

    _pjit._trace_for_jit = _trace_for_jit
    return lambda: setattr(_pjit, "_trace_for_jit", original)


def jit_trace_result(params: Any) -> tuple[Any, tuple[str, ...] | None, tuple]:
    """(ClosedJaxpr, readable arg name per flat invar, in_avals) of `_trace_for_jit`'s result."""
    closed = params.params["jaxpr"]
    n_consts = len(params.consts)
    names = tuple(params.arg_names) if params.arg_names is not None else None
    if names is not None and n_consts:
        names = ("<const>",) * n_consts + names
    return closed, names, tuple(params.in_avals)


def install_trace_to_jaxpr_hook(hook: Any) -> Any:
    """Route `partial_eval.trace_to_jaxpr` (loop/cond bodies, jit, eval_shape) through
    `hook(original_call, fun, debug_info)` → (ClosedJaxpr, out). Returns an uninstall callable."""
    from jax._src.interpreters import partial_eval as _pe

    original = _pe.trace_to_jaxpr

    @functools.wraps(original)
    def trace_to_jaxpr(fun, in_avals, debug_info, *a, **k):
        return hook(lambda: original(fun, in_avals, debug_info, *a, **k), fun, debug_info)

    _pe.trace_to_jaxpr = trace_to_jaxpr
    return lambda: setattr(_pe, "trace_to_jaxpr", original)


def vmap_in_axes_flat(in_axes: Any, args: tuple, kwargs: dict) -> list | None:
    """`jax.vmap`'s own flattening of `in_axes` against `(args, kwargs)`: axis per flat leaf."""
    from jax._src import api_util as _api_util
    from jax._src.interpreters import batching as _batching

    try:
        _, in_tree = jax.tree_util.tree_flatten((args, kwargs), is_leaf=_batching.is_vmappable)
        return list(_api_util.flatten_axes("vmap in_axes", in_tree, (in_axes, 0), kws=True))
    except Exception:
        return None


def install_vmap_hook(make_vmap: Any) -> Any:
    """Replace `jax.vmap` by `make_vmap(original)`, also where JAX's own modules (and so nnx.vmap,
    eqx.filter_vmap, Linen's lifted vmap) look it up. Returns an uninstall callable."""
    from jax._src import api as _api

    original = jax.vmap
    patched = make_vmap(original)
    jax.vmap = patched
    _api.vmap = patched
    return lambda: (setattr(jax, "vmap", original), setattr(_api, "vmap", original))


def is_tracer(x: Any) -> bool:
    return isinstance(x, jax.core.Tracer)


def live_tracer_origins() -> list[tuple[SrcFrame, ...]]:
    """Where each tracer still alive was created (its equation's frames, innermost first). Call
    it once no trace is active: every tracer alive then has outlived its trace (a leak)."""
    import gc

    out = []
    for obj in gc.get_objects():
        if isinstance(obj, jax.core.Tracer):
            frames = eqn_frames(getattr(obj, "parent", None))
            if frames:
                out.append(frames)
    return out


def tracer_debug_info(tracer: Any) -> Any:
    """The DebugInfo of the trace a (possibly leaked) tracer belongs to, or None."""
    return getattr(tracer, "_debug_info", None)


def debug_info_source(dbg: Any) -> str | None:
    """Where a DebugInfo's function is defined: `"f at /path/x.py:12"`, or None."""
    return getattr(dbg, "func_src_info", None)


def debug_info_parts(dbg: Any) -> tuple[str | None, tuple[str, ...] | None]:
    """(function name, arg names per flat input) of a DebugInfo."""
    if dbg is None:
        return None, None
    try:
        name = dbg.func_name
    except Exception:
        name = None
    names = getattr(dbg, "arg_names", None)
    return name, (tuple(names) if names is not None else None)


def aval_signature(x: Any) -> str:
    """`f32[3,4]` plus `{weak}` for weak-typed values: how jit's cache sees an argument."""
    try:
        aval = jax.core.get_aval(x) if not hasattr(x, "str_short") else x
        s = aval.str_short(short_dtypes=True)
        return s + ("{weak}" if getattr(aval, "weak_type", False) else "")
    except Exception:
        return type(x).__name__


# ---------------------------------------------------------------------------------------------
# End of section: trace front-end.
# ---------------------------------------------------------------------------------------------
