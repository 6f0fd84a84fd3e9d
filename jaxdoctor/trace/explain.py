"""Exception → finding: which rule it is, the user's line, the argument's real name, the fix.

JAX, Flax and Equinox raise trace errors deep inside themselves and, under `eqx.filter_jit`,
name equinox's internal arguments (`dynamic_nodonate['rest'][2]`). `explain(exc)` returns a
`Finding` located at the first frame in the user's own code — JAX's
`JaxStackTraceBeforeTransformation` cause first — with the argument name recovered.
"""

from __future__ import annotations

import re
import traceback
from typing import Any

from jaxdoctor.findings import Finding, Origin, Severity
from jaxdoctor.registry import all_rules
from jaxdoctor.trace.frames import is_user_file, source_line
from jaxdoctor.trace.leaks import store_site

_ARG = re.compile(r"depends on the values? of the arguments? (?P<names>.+?)\.(?:\s|$)")
_CREATED = re.compile(r"created on line (?P<file>.+?):(?P<line>\d+)(?::(?P<col>\d+))?")
_FRAME_LINE = re.compile(r"^(?P<file>/.+?):(?P<line>\d+):(?P<col>\d+) \(")


def _mro_names(exc: BaseException) -> set[str]:
    return {c.__name__ for c in type(exc).__mro__}


def _frames(exc: BaseException) -> list[traceback.FrameSummary]:
    """Frames of `exc`, JAX's pre-transformation stack first, outermost → innermost each."""
    out: list[traceback.FrameSummary] = []
    cause = exc.__cause__
    seen = 0
    while cause is not None and seen < 5:
        if type(cause).__name__ == "JaxStackTraceBeforeTransformation":
            out.extend(traceback.extract_tb(cause.__traceback__))
        cause = cause.__cause__
        seen += 1
    pre = list(out)
    own = traceback.extract_tb(exc.__traceback__)
    return own if not pre else own + pre  # innermost user frame is searched from the end


def _tb_objects(exc: BaseException) -> list[Any]:
    out, tb = [], exc.__traceback__
    while tb is not None:
        out.append(tb)
        tb = tb.tb_next
    return out


def first_user_frame(exc: BaseException) -> tuple[str, int, int, int, int] | None:
    """(path, line, col, end_line, end_col) of the innermost frame in the user's code."""
    cause = exc.__cause__
    while cause is not None:  # JAX's stack from before the transformation wins
        if type(cause).__name__ == "JaxStackTraceBeforeTransformation":
            loc = _innermost_user(traceback.extract_tb(cause.__traceback__))
            if loc:
                return loc
        cause = cause.__cause__
    return _innermost_user(traceback.extract_tb(exc.__traceback__))


def _innermost_user(frames: list[traceback.FrameSummary]) -> tuple[str, int, int, int, int] | None:
    for fs in reversed(frames):
        if is_user_file(fs.filename) and fs.lineno:
            col = (fs.colno + 1) if getattr(fs, "colno", None) is not None else 1
            end_line = getattr(fs, "end_lineno", None) or fs.lineno
            end_col = (fs.end_colno + 1) if getattr(fs, "end_colno", None) is not None else col
            return fs.filename, fs.lineno, col, end_line, end_col
    return None


def _vmap_call(exc: BaseException) -> tuple[str, int, int, int, int] | None:
    """The innermost user frame whose line calls a `vmap` (`jax.vmap(model, ...)(x, state)`),
    when the innermost user frame is not one already (a model's `__call__` running the layer)."""
    user = [fs for fs in traceback.extract_tb(exc.__traceback__) if is_user_file(fs.filename) and fs.lineno]
    if not user or "vmap" in (source_line(user[-1].filename, user[-1].lineno) or ""):
        return None
    for fs in reversed(user[:-1]):
        if "vmap" in (source_line(fs.filename, fs.lineno) or ""):
            return _innermost_user([fs])
    return None


def _library_frames(exc: BaseException) -> list[str]:
    return [fs.filename for fs in traceback.extract_tb(exc.__traceback__)]


def _first_line(exc: BaseException) -> str:
    """The error's first line; when it only announces what follows ("... but they differ:"),
    the next non-empty line too, which is where JAX names the component and the types."""
    text = str(exc).strip()
    if not text:
        return type(exc).__name__
    lines = [ln.strip() for ln in text.splitlines()]
    first = lines[0]
    if first.endswith(":"):
        rest = next((ln for ln in lines[1:] if ln), "")
        if rest:
            first = f"{first} {rest}"
    return first


def _source(path: str, line: int) -> str:
    return source_line(path, line)


def recover_arg_names(exc: BaseException, names: list[str]) -> list[str]:
    """Replace equinox's internal argument names with the user's (from its `filter_jit` call)."""
    if not any(n.startswith("dynamic_") for n in names):
        return names
    from jaxdoctor.trace.eqx_internals import names_from_traceback

    mapping = names_from_traceback(exc)
    return [mapping.get(n, n) for n in names]


def _arg_names(exc: BaseException) -> list[str]:
    m = _ARG.search(str(exc))
    if not m:
        return []
    raw = m.group("names")
    parts = re.split(r",\s*(?:and\s+)?|\s+and\s+", raw)
    return recover_arg_names(exc, [p.strip() for p in parts if p.strip()])


def classify(exc: BaseException) -> str:
    from jaxdoctor.trace.sharding.mesh_mistake import is_mesh_error
    from jaxdoctor.trace.sharding.unsharded_input import is_one_device_error

    if is_mesh_error(exc):
        return "JD536"
    if is_one_device_error(exc):
        return "JD535"
    names = _mro_names(exc)
    text = str(exc)
    files = _library_frames(exc)
    in_eqx = any("/equinox/" in f for f in files)
    in_linen = any("/flax/linen/" in f or "/flax/core/" in f for f in files)
    in_nnx = any("/flax/nnx/" in f for f in files)
    if "KeyReuseError" in names:
        return "JD110"
    from jaxdoctor.trace import eqx_state

    stateful = eqx_state.classify(exc)
    if stateful is not None:
        return stateful
    if isinstance(exc, FloatingPointError) and "invalid value" in text:
        return "JD520"  # the program turned on `jax_debug_nans` itself
    if type(exc) is Exception and text.startswith(("Leaked trace", "Leaked sublevel")):
        return "JD504"  # `jax.checking_leaks()`: a tracer outlived the trace that made it
    if "TracerBoolConversionError" in names:
        raising = files[-3:] if files else []
        if in_eqx and any("/equinox/nn/" in f for f in files):
            return "JD301"
        del raising
        return "JD101"
    if names & {"TracerIntegerConversionError", "TracerArrayConversionError", "ConcretizationTypeError",
                "NonConcreteBooleanIndexError"}:
        return "JD102"
    if "in-place item assignment" in text or (
            "does not support item assignment" in text and ("Tracer" in text or "Array" in text)):
        return "JD104"
    if isinstance(exc, (AttributeError, ImportError)) and re.search(
            r"(module '(jax|flax|equinox|optax)[\w.]*' has no attribute|cannot import name .+ from '(jax|flax)"
            r"|No module named '(jax|flax)\.)", text):
        return "JD401"
    if "Slice entries must be static" in text or "must have static start/stop" in text:
        return "JD102"
    if ("Shapes must be 1D sequences of concrete values" in text or "concrete value" in text
            or "abstract tracer value" in text):
        return "JD102"
    if "UnexpectedTracerError" in names:
        return "JD517"
    if "JaxTransformError" in names or "cannot be mixed" in text:
        return "JD201"
    if "vmap was requested to map its argument along axis" in text or (
        "vmap" in text and "in_axes" in text and ("rank" in text or "must be" in text and "int" in text)
    ):
        if in_nnx and ("Rngs" in text or "rngs" in text or _is_rng_vmap(exc)):
            return "JD210"
        return "JD108"
    if "vmap got inconsistent sizes" in text or "inconsistent sizes for array axes" in text:
        return "JD515"
    if "out_axes is None" in text or "output was batched" in text or "mapped output but out_axes" in text:
        return "JD516"
    if ("true_fun and false_fun" in text or "branch" in text) and (
        "same pytree structure" in text or "identical types" in text or "same type structure" in text
        or "must have the same" in text
    ):
        return "JD202" if in_linen else "JD518"
    if "carry" in text and ("structure" in text or "type" in text) and (
        "scan" in text or "loop" in text or "carry input and carry output" in text
    ):
        return "JD107"
    if ("body_fun output and input must have identical types" in text
            or "body_fun output" in text or "must have same type structure" in text
            or ("fori_loop" in text and "structure" in text)):
        return "JD107"
    if "pytree structure error" in text and any("/flax/nnx/transforms/iteration.py" in f for f in files):
        return "JD107"  # nnx.fori_loop/scan/while_loop compare the carry to its initial structure
    if ("as an abstract array" in text or "is not a valid JAX type" in text) and _eqx_module_argument(exc):
        return "JD302"
    if in_nnx and ("trace level" in text or "different trace" in text or "Cannot mutate" in text):
        return "JD211"
    return "JD511"


def _eqx_module_argument(exc: BaseException) -> bool:
    """Was an Equinox module among the arguments of the raw JAX transform that rejected a leaf?"""
    for tb in _tb_objects(exc):
        loc = tb.tb_frame.f_locals
        for key in ("args", "dyn_args", "kwargs"):
            vals = loc.get(key)
            if isinstance(vals, dict):
                vals = tuple(vals.values())
            if not isinstance(vals, (tuple, list)):
                continue
            for v in vals:
                if any(c.__module__.split(".")[0] == "equinox" and c.__name__ == "Module"
                       for c in type(v).__mro__):
                    return True
    return False


def _is_python_shape(v: Any) -> bool:
    """A Python number or a tuple/list of them: never an array, so never mappable."""
    if isinstance(v, (tuple, list)):
        return bool(v) and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v)
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _is_rng_vmap(exc: BaseException) -> bool:
    """Did the failing nnx.vmap get an `Rngs` argument (a key of rank 0 mapped along axis 0),
    and no Python shape or number, which would be the likelier culprit (JD108)?"""
    rngs = False
    for tb in _tb_objects(exc):
        loc = tb.tb_frame.f_locals
        for v in list(loc.get("args", ()) or ()) if isinstance(loc.get("args"), tuple) else ():
            if _is_python_shape(v):
                return False
            if type(v).__name__ in ("Rngs", "RngStream"):
                rngs = True
    return rngs


def explain(exc: BaseException, *, phase: str = "run", aliases: dict[str, str] | None = None) -> Finding:
    """The finding for `exc`; `phase` is "import" for errors raised importing the target. With
    no user frame to point at, its path is empty and its line 0 (the parent places it).
    `aliases`: JAX's names of the traced arguments → the user's (`dyn[2]` → `training`)."""
    if phase == "import" and not _is_trace_error(exc):
        code = "JD514"
    else:
        code = classify(exc)
    rule = all_rules()[code]
    loc = _syntax_location(exc) or first_user_frame(exc)
    if code == "JD522":
        loc = _vmap_call(exc) or loc  # the `vmap` to fix, not the layer call inside the model
    if code == "JD517":
        loc = _leak_origin(exc) or loc
        if loc is not None:
            loc = store_site(loc, None) or loc
    details: dict[str, Any] = {"exception": type(exc).__name__, "error": _first_line(exc)[:500]}
    args = [(aliases or {}).get(a, a) for a in _arg_names(exc)]
    if args:
        details["arguments"] = args
    fix_title = rule.trace_fix_title or rule.fix_title
    if code == "JD504":
        loc = loc or _leak_creation(exc)  # no user frame on the stack: where the leaked value was made
        held, traced = _leak_facts(exc)
        if loc is not None:  # the line that saved it outside, when the source says which
            loc = store_site(loc, held) or loc
        details.update(held_by=held, transform_function=traced)
        if "Scope" not in (held or ""):
            fix_title = ("Return the value from the transformed function instead of saving it in a global, "
                         "a list or an attribute")
    path, line, col, end_line, end_col = loc if loc is not None else ("", 0, 0, 0, 0)
    if end_line <= line and end_col <= col:
        end_col = col
    message = _message(code, exc, (path, line) if loc is not None else None, args)
    if code == "JD536":
        from jaxdoctor.trace.sharding.mesh_mistake import declaration, explain_message

        declared = declaration(exc)
        if declared is not None:  # the `jax.jit(..., out_shardings=...)` that declared the spec
            path, line, which = declared
            col, end_line, end_col = 1, line, 1
            loc = (path, line, col, end_line, end_col)
            details["declared_in"] = which
        message, more = explain_message(exc, _snippet((path, line) if loc is not None else None),
                                        declared[2] if declared is not None else None)
        details.update(more)
    elif code == "JD535":
        from jaxdoctor.trace.sharding import unsharded_input

        placed = unsharded_input.lone_placement(exc)
        if placed is not None:  # where the lone array was put on its one device
            path, line = placed
            col, end_line, end_col = 1, line, 1
            loc = (path, line, col, end_line, end_col)
        message, more = unsharded_input.explain_message(exc, _snippet((path, line) if loc is not None else None))
        details.update(more)
    return rule.finding(
        message,
        path, line, col, end_line, end_col,
        severity=Severity.ERROR, fix_title=fix_title,
        origin=Origin.TRACE, details=details,
    )


_TRACING = re.compile(r"while tracing the function (?P<fn>.+?) at (?P<where>\S+) for (?P<what>[\w.]+)")
_REFERRED = re.compile(r"is referred to by <(?P<kind>[\w.]+) \d+>(?P<key>.*)$")


#: objects of JAX itself that hold tracers for a while: a chain that ends there is no user leak
_JAX_HOLDERS = frozenset({"TracingEqn", "JaxprEqn", "DynamicJaxprTrace", "Var", "frame", "Traceback",
                          "JaxprTracer", "DynamicJaxprTracer", "JitTracer", "SourceInfo", "WeakKeyDictionary"})


def leak_is_users(exc: BaseException) -> bool:
    """Does `jax.checking_leaks()`'s first leaked tracer sit in an object of the program (a
    list, a dict, a module, an instance), rather than in JAX's own bookkeeping?"""
    held, _ = _leak_facts(exc)
    if not held:
        return False
    owner = re.split(r"[.\[]", held, 1)[0]
    return owner not in _JAX_HOLDERS


_TRACER_ID = re.compile(r"<\w*Tracer (?P<id>\d+)> is referred to by")


def _leak_creation(exc: BaseException) -> tuple[str, int, int, int, int] | None:
    """The user's line that created a leaked tracer `jax.checking_leaks()` names (by object id)."""
    from jaxdoctor.trace import jax_internals as ji

    ids = {int(m.group("id")) for m in _TRACER_ID.finditer(str(exc))}
    try:
        origins = ji.live_tracer_origins(ids or None)
    except Exception:  # noqa: BLE001 - best effort
        return None
    for frames in origins:
        for fr in frames:
            if is_user_file(fr.file):
                return fr.file, fr.line, fr.column, fr.end_line, fr.end_column
    return None


def _leak_facts(exc: BaseException) -> tuple[str | None, str | None]:
    """From `jax.checking_leaks()`'s message: what holds the first leaked tracer (a path such as
    `Scope._variables['params']['Dense_0']['bias']`) and the function being traced."""
    text = str(exc)
    m = _TRACING.search(text)
    traced = f"{m.group('fn')} (traced for {m.group('what')})" if m else None
    chain = []
    for raw in text.split("\n\n", 2)[1].splitlines() if "\n\n" in text else []:
        r = _REFERRED.search(raw.strip())
        if r:
            chain.append((r.group("kind"), r.group("key").strip()))
    kept = []
    for kind, key in chain:  # from the tracer outwards, up to the first object that is no container
        if kind.endswith("Tracer"):  # a tracer of an enclosing transformation holding this one
            continue
        kept.append((kind, key))
        if kind not in _CONTAINERS:
            break
    if not kept:
        return None, traced
    path = "".join(key for _, key in reversed(kept) if key and not key.startswith("closed-over"))
    return f"{kept[-1][0]}{path}", traced


_CONTAINERS = frozenset({"dict", "list", "tuple", "set", "frozenset", "cell", "function", "deque"})


def _is_trace_error(exc: BaseException) -> bool:
    return classify(exc) != "JD511"


def _syntax_location(exc: BaseException) -> tuple[str, int, int, int, int] | None:
    if isinstance(exc, SyntaxError) and exc.filename and exc.lineno and is_user_file(exc.filename):
        col = exc.offset or 1
        return exc.filename, exc.lineno, col, exc.lineno, col
    return None


def _leak_origin(exc: BaseException) -> tuple[str, int, int, int, int] | None:
    """Where the leaked tracer was created, if that is user code (else the user frame JAX lists)."""
    text = str(exc)
    m = _CREATED.search(text)
    if m and is_user_file(m.group("file")):
        line = int(m.group("line"))
        col = int(m.group("col") or 1)
        return m.group("file"), line, col, line, col
    for raw in text.splitlines():
        fm = _FRAME_LINE.match(raw.strip())
        if fm and is_user_file(fm.group("file")):
            line = int(fm.group("line"))
            col = int(fm.group("col"))
            return fm.group("file"), line, col, line, col
    return None


#: code → message template; fields: snippet (the user's line in backticks), dep (" (it depends
#: on the traced argument `x`)"), exc (the exception's type name), first (its first line).
_MESSAGES = {
    "JD101": "{snippet} needs a concrete Python bool, but the value is a tracer{dep}: `{exc}`",
    "JD301": "{snippet} passes a traced flag to an Equinox layer that branches on it with a Python "
             "`if`{dep}: `TracerBoolConversionError` inside Equinox",
    "JD102": "{snippet} needs a concrete Python value, but the value is a tracer{dep}: `{exc}`: {first}",
    "JD110": "{snippet} reuses a PRNG key that was already consumed: `KeyReuseError`: {first}",
    "JD504": "{snippet}: a value made inside a JAX transformation is still referenced after the "
             "transformation ended{held}: it was saved outside the transformed function instead of "
             "returned, and using it later raises `UnexpectedTracerError`",
    "JD517": "{snippet} created a tracer that escaped its JAX transformation and was used later: "
             "`UnexpectedTracerError`",
    "JD108": "{snippet}: `vmap` maps an argument of rank 0 along axis 0: {first}",
    "JD210": "{snippet}: `vmap` maps an argument of rank 0 along axis 0 (an `Rngs`/key argument is "
             "mapped without `nnx.split_rngs`): {first}",
    "JD515": "{snippet}: `vmap` got mapped arguments of different sizes: {first}",
    "JD516": "{snippet}: an output of `vmap` is batched but its `out_axes` is `None`: {first}",
    "JD518": "{snippet}: the branches return different structures or types: {first}",
    "JD107": "{snippet}: the loop body returns a carry that differs from the initial carry: {first}",
    "JD202": "{snippet}: `nn.cond` branches return different structures (both must take the module "
             "and create the same variables): {first}",
    "JD201": "{snippet}: a JAX transform is mixed with Flax Linen module calls: {first}",
    "JD211": "{snippet}: an NNX module is used across a raw JAX transform: {first}",
    "JD302": "{snippet}: an Equinox module with non-array fields is passed through a raw JAX "
             "transform: {first}",
    "JD104": "{snippet} assigns into a JAX array in place; JAX arrays are immutable: `{exc}`",
    "JD401": "{snippet} uses an API that no longer exists in the installed version: {first}",
    "JD514": "importing the target failed: `{exc}`: {first}",
    "JD520": "{snippet} made a NaN or an infinity and `jax_debug_nans`/`jax_debug_infs` stopped the program: "
             "{first}",
}


def _snippet(where: tuple[str, int] | None) -> str:
    src = _source(*where) if where else ""
    return f"`{src}`" if src and len(src) <= 80 else "this line"


def _message(code: str, exc: BaseException, where: tuple[str, int] | None, args: list[str]) -> str:
    snippet = _snippet(where)
    arg = ", ".join(f"`{a}`" for a in args)
    dep = f" (it depends on the traced argument {arg})" if arg else ""
    if code == "JD522":
        from jaxdoctor.trace import eqx_state

        return eqx_state.message(exc, snippet)
    template = _MESSAGES.get(code, "{snippet} raised `{exc}`: {first}")
    held = ""
    if code == "JD504":
        owner, _ = _leak_facts(exc)
        held = f" (held by `{owner}`)" if owner else ""
    return template.format(snippet=snippet, dep=dep, exc=type(exc).__name__, first=_first_line(exc), held=held)
