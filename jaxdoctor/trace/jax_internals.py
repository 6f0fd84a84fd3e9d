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
# Section: runtime checks (jaxdoctor.trace.checks): every executed jit call's outputs, the
# equation that first made a NaN, the keys `jax.random` consumes, the trace-time print guard.
# ---------------------------------------------------------------------------------------------


def install_call_hooks(on_output: Any) -> Any:
    """Call `on_output(fun, args, kwargs, output, traced)` after every executed (not traced) jit
    call, eager primitives included: the C++ fast path through JAX's post-call hook (what
    `jax_debug_nans` uses), the Python path (first calls, effectful functions) by wrapping
    `pjit._run_python_pjit`. `traced` is `(closed_jaxpr, flat_args)` when known, else None.
    Returns an uninstall callable. JAX's own `jax_debug_nans` is left off: it would stop the
    program at the first NaN, even a masked one."""
    from jax._src import api as _api
    from jax._src import core as _core
    from jax._src import pjit as _pjit

    state = _api._post_hook_state
    prev_global = state.get_global()

    def post_hook(fun, args, kwargs, output):
        on_output(fun, args, kwargs, output, None)

    original = _pjit._run_python_pjit

    @functools.wraps(original)
    def _run_python_pjit(p, args_flat, fun, args, kwargs):
        result = original(p, args_flat, fun, args, kwargs)
        if _core.trace_state_clean():
            try:
                on_output(fun, args, kwargs, result[0], (p.params["jaxpr"], list(args_flat)))
            except Exception:  # noqa: BLE001 - a check must never break the program
                pass
        return result

    # JAX re-derives the hook from `jax_debug_nans`/`jax_debug_infs` whenever their value
    # changes, thread-locally too (`with config.debug_nans(False)` inside `jaxpr_as_fun`,
    # `jnp.var`, ...), which would drop ours: take over those two hooks while installed, giving
    # JAX's own check back where the program turns the flags on itself.
    from jax._src import config as _config

    flags = (_config.debug_nans, _config.debug_infs)
    saved = [(f._update_global_hook, f._update_thread_local_hook) for f in flags]

    def pick(on: bool) -> Any:
        return _api._nan_check_posthook if on else post_hook

    def global_hook(_: Any) -> None:
        state.set_global(pick(bool(_config._read("jax_debug_nans") or _config._read("jax_debug_infs"))))

    def local_hook(_: Any) -> None:
        state.set_local(pick(any(f.get_local() is True for f in flags)))

    for f in flags:
        f._add_hooks(global_hook, local_hook)
    local_hook(None)
    _pjit._run_python_pjit = _run_python_pjit

    def uninstall() -> None:
        _pjit._run_python_pjit = original
        for f, (g, loc) in zip(flags, saved):
            f._add_hooks(g, loc)
        saved[0][1](None)  # the thread-local hook JAX would have now
        state.set_global(prev_global)

    return uninstall


def is_eager_primitive(fun: Any) -> bool:
    """Is this jit call one eager primitive (`jnp.sin(x)` outside any jit)?"""
    inner = getattr(fun, "_fun", fun)
    return bool(getattr(inner, "_apply_primitive", False))


def jit_function_name(fun: Any) -> str:
    inner = getattr(fun, "_fun", fun)
    return getattr(inner, "__qualname__", None) or getattr(inner, "__name__", None) or type(inner).__name__


def jit_function_source(fun: Any) -> str | None:
    """The file that defines the Python function a jit call runs."""
    inner = getattr(fun, "_fun", fun)
    code = getattr(inspect_unwrap(inner), "__code__", None)
    return getattr(code, "co_filename", None)


def inspect_unwrap(f: Any) -> Any:
    for _ in range(16):
        nxt = getattr(f, "__wrapped__", None)
        if nxt is None:
            break
        f = nxt
    return f


_CODE_KEYS: dict = {}


def function_code_key(fun: Any) -> tuple | None:
    """(file, first line, name) of the Python function a jit runs, the same for its trace and its
    calls (and for every fresh lambda made by one line)."""
    hit = _CODE_KEYS.get(id(fun))
    if hit is not None and hit[0] is fun:
        return hit[1]
    key = _function_code_key(fun)
    if len(_CODE_KEYS) > 4096:
        _CODE_KEYS.clear()
    _CODE_KEYS[id(fun)] = (fun, key)
    return key


def _function_code_key(fun: Any) -> tuple | None:
    inner = inspect_unwrap(getattr(fun, "_fun", fun))
    for _ in range(8):  # jit(partial(grad(f), labels=...)): the user's `f`
        if isinstance(inner, functools.partial):
            inner = inspect_unwrap(inner.func)
        else:
            break
    code = getattr(inner, "__code__", None)
    if code is None:
        return None
    return code.co_filename, code.co_firstlineno, code.co_name


def jit_call_jaxpr(fun: Any, args: tuple, kwargs: dict) -> tuple[Any, list] | None:
    """(ClosedJaxpr, flat arguments) of a call of jitted `fun` (jit's trace cache: no retrace)."""
    from jax._src import pjit as _pjit

    info = getattr(fun, "_jit_info", None)
    inner = getattr(fun, "_fun", None)
    if info is None or inner is None:
        return None
    p, args_flat = _pjit._infer_params(inner, info, args, kwargs)
    return p.params["jaxpr"], list(args_flat)


def current_transform_frames() -> tuple[tuple[SrcFrame, ...], str]:
    """(frames, name stack) of the equation JAX is evaluating now, when a transformation (the
    backward pass of an eager `grad`) runs equations of a traced program; ((), "") otherwise."""
    from jax._src import source_info_util as _siu

    cur = _siu._source_info_context.context  # `current()` would make up the live stack
    tb = getattr(cur, "traceback", None)
    if tb is None:
        return (), ""
    try:
        frames = _frames_of_traceback(tb)
    except TypeError:
        frames = _frames_of_traceback.__wrapped__(tb)
    return frames, str(getattr(cur, "name_stack", ""))


from jax._src import source_info_util as _siu_mod  # noqa: E402

_SIU_CONTEXT = _siu_mod._source_info_context


def in_transform_context() -> bool:
    """Is JAX evaluating equations of a traced program eagerly now (an eager `grad`'s backward
    pass), with their source lines set?"""
    return getattr(_SIU_CONTEXT.context, "traceback", None) is not None


def _nonfinite_flags(leaves: list) -> Any:
    jnp = jax.numpy
    nan = [jnp.isnan(x).any() for x in leaves]
    inf = [jnp.isinf(x).any() for x in leaves if x.size == 1]
    return (jnp.stack(nan).any() if nan else jnp.bool_(False),
            jnp.stack(inf).any() if inf else jnp.bool_(False))


_nonfinite_flags_jit = jax.jit(_nonfinite_flags)


def nonfinite_flags(leaves: list) -> Any:
    """Device scalars (any NaN, any infinite scalar) over float arrays, computed where the arrays
    live without copying them or waiting for them (read them later with `flags_ready`/`bool`)."""
    return _nonfinite_flags_jit(leaves)


def flags_ready(flags: Any) -> bool:
    try:
        return all(f.is_ready() for f in flags)
    except Exception:  # noqa: BLE001
        return True


def eqn_name_stack(eqn: Any) -> str:
    return str(getattr(getattr(eqn, "source_info", None), "name_stack", ""))


def nonfinite_kind(x: Any, *, inf: bool = True) -> str | None:
    """"nan" when the float array `x` holds a NaN, "inf" when (and `inf`) it holds an infinity."""
    dtype = getattr(x, "dtype", None)
    try:
        if dtype is None or not np.issubdtype(np.dtype(dtype), np.inexact):
            return None
        a = np.asarray(x)
    except Exception:  # noqa: BLE001 - keys, deleted buffers, tracers
        return None
    if np.isnan(a).any():
        return "nan"
    if inf and np.isinf(a).any():
        return "inf"
    return None


@dataclass
class NonFinite:
    """Where a NaN (or infinity) was first made from finite values while re-running a jaxpr."""

    kind: str  # "nan" or "inf"
    primitive: str
    frames: tuple[SrcFrame, ...]  # the equation's frames, innermost first
    parents: tuple[tuple[SrcFrame, ...], ...]  # enclosing equations' frames, innermost first
    backward: bool  # made in a backward (transpose) pass
    masked: bool  # the value went into a `select_n` (a `jnp.where`) in its own jaxpr
    inf_from: Any = None  # NonFinite: the NaN was made from this infinity (`0 * inf`)
    literal: bool = False  # the value came from a NaN/inf literal or constant (on purpose)


class _Budget(Exception):
    pass


_SKIP_ON_REPLAY = frozenset({"debug_callback", "debug_print"})


def nonfinite_origin(closed: Any, args: list, *, budget: int = 100_000) -> NonFinite | None:
    """Re-run `closed` on `args` equation by equation (eagerly, under no jit) and return where
    the NaN of the first non-finite output was made: the equation whose output is NaN while
    none of its inputs is (following NaN and infinity separately, through jit calls, cond
    branches and every iteration of scan and while loops). None when the outputs are finite
    when re-run, or after `budget` equations."""
    count = [0]

    def check(v: Any) -> tuple[bool, bool]:
        kind = nonfinite_kind(v)
        if kind == "nan":
            return True, False
        if kind == "inf":
            return False, True
        return False, False

    def run(jaxpr: Any, consts: tuple, vals: list, taints: list, parents: tuple) -> tuple[list, list]:
        env: dict = {}
        taint: dict = {}

        def read(a: Any) -> tuple[Any, Any]:
            if isinstance(a, Literal):
                try:
                    nan, inf = check(np.asarray(a.val))
                except Exception:  # noqa: BLE001
                    nan = inf = False
                lit = NonFinite("nan" if nan else "inf", "literal", (), parents, False, False, literal=True)
                return a.val, ((lit if nan else None), (lit if inf else None))
            return env[a], taint.get(a, (None, None))

        for v, c in zip(jaxpr.constvars, consts):
            env[v] = c
            nan, inf = check(c)
            lit = NonFinite("nan" if nan else "inf", "constant", (), parents, False, False, literal=True)
            taint[v] = (lit if nan else None, lit if inf else None)
        for v, x, t in zip(jaxpr.invars, vals, taints):
            env[v] = x
            taint[v] = t
        for eqn in jaxpr.eqns:
            count[0] += 1
            if count[0] > budget:
                raise _Budget
            read_in = [read(a) for a in eqn.invars]
            ins = [r[0] for r in read_in]
            in_t = [r[1] for r in read_in]
            name = eqn.primitive.name
            here = parents
            inner = (eqn_frames(eqn),) + parents
            if name in _SKIP_ON_REPLAY:
                outs, out_t = [None] * len(eqn.outvars), [(None, None)] * len(eqn.outvars)
            elif name == "cond":
                j, c = _open(eqn.params["branches"][int(np.asarray(ins[0]))])
                outs, out_t = run(j, c, ins[1:], in_t[1:], inner)
            elif name == "scan":
                outs, out_t = scan(eqn, ins, in_t, inner)
            elif name == "while":
                outs, out_t = while_(eqn, ins, in_t, inner)
            else:
                subs = sub_jaxprs(eqn) if name != "shard_map" else []
                if len(subs) == 1 and subs[0].kind == "call":
                    outs, out_t = run(subs[0].jaxpr, subs[0].consts, ins, in_t, inner)
                else:
                    res = eqn.primitive.bind(*ins, **eqn.params)
                    outs = list(res) if eqn.primitive.multiple_results else [res]
                    out_t = [made(eqn, o, in_t, here) for o in outs]
            for v, o, t in zip(eqn.outvars, outs, out_t):
                if not isinstance(v, DropVar):
                    env[v] = o
                    taint[v] = t
        results = [read(a) for a in jaxpr.outvars]
        return [r[0] for r in results], [r[1] for r in results]

    def made(eqn: Any, out: Any, in_t: list, parents: tuple) -> tuple[Any, Any]:
        nan, inf = check(out)
        nan_in = next((t[0] for t in in_t if t[0] is not None), None)
        inf_in = next((t[1] for t in in_t if t[1] is not None), None)
        t_nan = t_inf = None
        if nan:
            t_nan = nan_in or NonFinite("nan", eqn.primitive.name, eqn_frames(eqn), parents,
                                        "transpose" in eqn_name_stack(eqn), False, inf_from=inf_in)
        if inf:
            t_inf = inf_in or NonFinite("inf", eqn.primitive.name, eqn_frames(eqn), parents,
                                        "transpose" in eqn_name_stack(eqn), False)
        return t_nan, t_inf

    def scan(eqn: Any, ins: list, in_t: list, parents: tuple) -> tuple[list, list]:
        p = eqn.params
        nc, nk, length = int(p["num_consts"]), int(p["num_carry"]), int(p["length"])
        body, bconsts = _open(p["jaxpr"])
        consts, carry, xs = ins[:nc], ins[nc:nc + nk], ins[nc + nk:]
        ct, kt, xt = in_t[:nc], in_t[nc:nc + nk], in_t[nc + nk:]
        ys: list = []
        yt: list = []
        order = range(length - 1, -1, -1) if p.get("reverse") else range(length)
        for i in order:
            x_i = [x[i] for x in xs]
            x_t = [(t[0] if t[0] and check(x)[0] else None, t[1] if t[1] and check(x)[1] else None)
                   for x, t in zip(x_i, xt)]
            outs, ots = run(body, bconsts, consts + carry + x_i, ct + kt + x_t, parents)
            carry, kt = outs[:nk], ots[:nk]
            ys.append(outs[nk:])
            for j, t in enumerate(ots[nk:]):
                if j >= len(yt):
                    yt.append(t)
                elif yt[j] == (None, None):
                    yt[j] = t
        if p.get("reverse"):
            ys.reverse()
        n_y = len(eqn.outvars) - nk
        stacked = [jax.numpy.stack([y[j] for y in ys]) if ys else None for j in range(n_y)]
        return carry + stacked, kt + (yt or [(None, None)] * n_y)

    def while_(eqn: Any, ins: list, in_t: list, parents: tuple) -> tuple[list, list]:
        p = eqn.params
        cn, bn = int(p["cond_nconsts"]), int(p["body_nconsts"])
        cj, cc = _open(p["cond_jaxpr"])
        bj, bc = _open(p["body_jaxpr"])
        cconsts, bconsts, carry = ins[:cn], ins[cn:cn + bn], ins[cn + bn:]
        cct, bct, kt = in_t[:cn], in_t[cn:cn + bn], in_t[cn + bn:]
        while True:
            pred, _ = run(cj, cc, cconsts + carry, cct + kt, parents)
            if not bool(np.asarray(pred[0])):
                return carry, kt
            carry, kt = run(bj, bc, bconsts + carry, bct + kt, parents)

    j, consts = _open(closed)
    if len(j.invars) != len(args):
        return None
    in_t = []
    for a in args:
        nan, inf = check(a)
        lit = NonFinite("nan" if nan else "inf", "input", (), (), False, False, literal=True)
        in_t.append((lit if nan else None, lit if inf else None))
    try:
        outs, out_t = run(j, tuple(consts), list(args), in_t, ())
    except _Budget:
        return None
    found = next((t[0] for t in out_t if t[0] is not None), None)
    found = found or next((t[1] for t in out_t if t[1] is not None), None)
    if found is None or found.literal:
        return found
    found.masked = _flows_into_select(closed, found)
    return found


def _caller_of_jax(frames: tuple[SrcFrame, ...]) -> tuple[str, int] | None:
    """(file, line) of the innermost frame in the user's code: the line that made an equation
    (frames inside jax, jaxlib, flax, equinox or the doctor are shared by every equation that
    such a library function makes, whichever line of the user called it)."""
    from jaxdoctor.trace.frames import is_user_file

    for fr in frames:
        if is_user_file(fr.file):
            return (fr.file, fr.line)
    return None


def _flows_into_select(closed: Any, origin: NonFinite) -> bool:
    """Does any equation made at the origin's source line feed a `select_n` (a `jnp.where`)
    within a few steps, anywhere in the program? (`jnp.where(c, jnp.sqrt(x), 0)`)"""
    key = _caller_of_jax(origin.frames)
    if key is None:
        return False
    todo = [closed.jaxpr if isinstance(closed, ClosedJaxpr) else closed]
    seen = 0
    while todo and seen < 50_000:
        j = todo.pop()
        users: dict = {}
        for e in j.eqns:
            for v in e.invars:
                if isinstance(v, Var):
                    users.setdefault(v, []).append(e)
        for e in j.eqns:
            seen += 1
            todo.extend(s.jaxpr for s in sub_jaxprs(e))
            if _caller_of_jax(eqn_frames(e)) != key:
                continue
            frontier, depth = list(e.outvars), 0
            while frontier and depth < 4:
                nxt = []
                for v in frontier:
                    for u in users.get(v, ()):
                        if u.primitive.name == "select_n" or any(
                                s.jaxpr.eqns and any(q.primitive.name == "select_n" for q in s.jaxpr.eqns)
                                for s in sub_jaxprs(u)):
                            return True
                        nxt.extend(u.outvars)
                frontier, depth = nxt, depth + 1
    return False


def install_prng_key_hook(on_key: Any) -> Any:
    """Call `on_key(function_name, key)` whenever a public `jax.random` function receives a key
    (typed or raw `uint32[2]`), before it uses it. Returns an uninstall callable."""
    from jax._src.random import core as _rcore

    original = _rcore._check_prng_key

    @functools.wraps(original)
    def _check_prng_key(name, key, *args, **kwargs):
        try:
            on_key(name, key)
        except Exception:  # noqa: BLE001 - a check must never break the program
            pass
        return original(name, key, *args, **kwargs)

    _rcore._check_prng_key = _check_prng_key
    return lambda: setattr(_rcore, "_check_prng_key", original)


def is_jax_source(path: str) -> bool:
    """A file of JAX itself (jax, jaxlib)."""
    p = path.replace("\\", "/")
    return "/jax/" in p or "/jaxlib/" in p


# ---------------------------------------------------------------------------------------------
# End of section: runtime checks.
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


def live_tracer_origins(ids: set[int] | None = None) -> list[tuple[SrcFrame, ...]]:
    """Where each tracer still alive (with an `id` in `ids`, when given) was created: its
    equation's frames, innermost first."""
    import gc

    out = []
    for obj in gc.get_objects():
        if isinstance(obj, jax.core.Tracer) and (ids is None or id(obj) in ids):
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
