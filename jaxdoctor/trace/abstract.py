"""Abstract tracing: `fn` traced with `jax.make_jaxpr` on `jax.ShapeDtypeStruct` inputs (from
`--inputs` or a `jaxdoctor_inputs_<fn>()` companion), optionally under `jax.vmap`; nothing
executes and nothing is allocated. The jaxpr goes to the analyzers, and to `--cost`."""

from __future__ import annotations

import inspect
import time
from typing import Any

from jaxdoctor.errors import UsageError
from jaxdoctor.trace import inputs as inp
from jaxdoctor.trace.explain import explain
from jaxdoctor.trace.protocol import Session


def required_params(fn: Any) -> list[str]:
    """The parameters a call of `fn` must give (no default)."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return []
    return [
        p.name for p in sig.parameters.values()
        if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    ]


def _param_names(fn: Any) -> list[str]:
    try:
        return [p.name for p in inspect.signature(fn).parameters.values()
                if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        return []


def _check_arity(fn: Any, name: str, args: tuple, kwargs: dict, source: str) -> None:
    """A usage error when the inputs do not fit `fn`'s parameters (before anything is traced)."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return
    try:
        sig.bind(*args, **kwargs)
    except TypeError as exc:
        given = ", ".join([*(inp.describe(a) for a in args), *(f"{k}={inp.describe(v)}" for k, v in kwargs.items())])
        raise UsageError(f"{source} gives ({given}) but `{name}{sig}` cannot take them: {exc}") from None


def _trace(fn: Any, specs: list, aliases: dict, session: Session) -> Any:
    """`jax.make_jaxpr(fn)(*specs)` with JAX's leak checker on: a tracer that outlives its
    transformation (a raw `lax.scan` in a Linen module, a value saved in a global) is reported
    (JD504), then the function is traced again without the checker, for the analyzers."""
    import jax

    try:
        with jax.checking_leaks():
            return jax.make_jaxpr(fn)(*specs)
    except Exception as exc:  # noqa: BLE001
        if not str(exc).startswith(("Leaked trace", "Leaked sublevel")):
            raise
        session.emit(explain(exc, aliases=aliases))
    return jax.make_jaxpr(fn)(*specs)


def trace_abstract(fn: Any, target: Any, job: dict, companion: Any, session: Session) -> None:
    """Trace `fn` with `jax.make_jaxpr` on the job's `--inputs` (or its companion's) under the
    optional `--vmap`, analyse the jaxpr, and report `--cost`."""
    import contextlib

    import jax

    from jaxdoctor.trace.sharding import watch as sharding

    name = target.function_name
    options = sharding.options_from_job(job)
    mesh = sharding.make_mesh(options["mesh"]) if options.get("mesh") else None
    if job.get("inputs") is not None:
        args, kwargs = inp.parse_inputs(job["inputs"])
        args, kwargs = inp.materialize(args, mesh), inp.materialize(kwargs, mesh)
    elif companion is not None:
        try:
            got = companion()
        except BaseException as exc:  # noqa: BLE001
            session.emit(explain(exc))
            return
        if not (isinstance(got, tuple) and len(got) == 2 and isinstance(got[1], dict)):
            raise UsageError(f"jaxdoctor_inputs_{name}() must return (args, kwargs): a tuple and a dict")
        args, kwargs = tuple(got[0]), dict(got[1])
    else:
        raise UsageError(
            f"`{name}` takes arguments ({', '.join(required_params(fn))}): give --inputs "
            f"(e.g. --inputs \"f32[8,3], i32[]\") or define jaxdoctor_inputs_{name}() returning (args, kwargs)"
        )
    _check_arity(fn, name, args, kwargs, "--inputs" if job.get("inputs") is not None else f"jaxdoctor_inputs_{name}()")
    prepared = inp.prepare_call(fn, args, kwargs, _param_names(fn))
    in_axes = inp.parse_vmap(job.get("vmap"))
    batch_axes = None
    batch = job.get("batch")
    specs = prepared.dynamic
    traced_fn = prepared.flat_fn
    if in_axes is not None:
        if len(in_axes) != len(args):
            raise UsageError(f"--vmap gives {len(in_axes)} axes but `{name}` is called with {len(args)} positional arguments")
        if batch is None:
            raise UsageError("--vmap needs --batch N (the batch size)")
        for i, ax in enumerate(in_axes):
            if ax is not None and i not in prepared.arg_index:
                raise UsageError(f"--vmap: argument {i + 1} of `{name}` is a static literal; give it axis None")
        batch_axes = [in_axes[a] if isinstance(a, int) else None for a in prepared.arg_index]
        specs = []
        for spec, ax in zip(prepared.dynamic, batch_axes):
            if ax is None:
                specs.append(spec)
                continue
            shape = list(spec.shape)
            if not -len(shape) - 1 <= ax <= len(shape):
                raise UsageError(f"--vmap: axis {ax} is out of range for an input of rank {len(shape)}")
            shape.insert(ax if ax >= 0 else len(shape) + 1 + ax, int(batch))
            specs.append(jax.ShapeDtypeStruct(tuple(shape), spec.dtype, weak_type=spec.weak_type))
        traced_fn = jax.vmap(prepared.flat_fn, in_axes=tuple(batch_axes))
    aliases = {f"dyn[{i}]": n for i, n in enumerate(prepared.names)}
    in_mesh = jax.set_mesh(mesh) if mesh is not None else contextlib.nullcontext()
    t0 = time.perf_counter()
    try:
        with in_mesh:
            closed = _trace(traced_fn, specs, aliases, session)
    except BaseException as exc:  # noqa: BLE001
        if isinstance(exc, SystemExit):
            raise UsageError(f"`{name}` called sys.exit({exc.code!r}) while being traced") from None
        session.emit(explain(exc, aliases=aliases))
        return
    session.write({"event": "traced", "seconds": round(time.perf_counter() - t0, 6),
                   "equations": len(closed.jaxpr.eqns)})
    session.analyze(closed, batch_axes=batch_axes, batch_size=batch if in_axes is not None else None,
                    entry_name=name, arg_names=prepared.names)
    if in_axes is None and (mesh is not None or any(_multi_device(s) for s in specs)):
        try:
            with (jax.set_mesh(mesh) if mesh is not None else contextlib.nullcontext()):
                sharding.compile_abstract(traced_fn, specs, session, options, name=name,
                                          names=prepared.names, def_site=_def_site(fn))
        except Exception as exc:  # noqa: BLE001 - a function that traces may still fail to compile
            if _is_mesh_error(exc):
                session.emit(explain(exc))
            else:
                session.note(f"`{name}` could not be compiled on its mesh: {type(exc).__name__}: "
                             f"{str(exc).splitlines()[0] if str(exc) else ''}")
    if job.get("cost"):
        try:
            from jaxdoctor.trace.cost import cost_report
        except ImportError as exc:
            session.note(f"--cost is unavailable: {exc}")
            return
        try:
            report = cost_report(closed, traced_fn, tuple(specs))
        except Exception as exc:  # noqa: BLE001
            session.note(f"--cost failed: {type(exc).__name__}: {exc}")
            return
        session.write({"cost": report})
        session.emit(cost_finding(report, fn, name))


def cost_finding(report: dict, fn: Any, name: str) -> Any:
    """The `--cost` figures as a JD524 finding at `fn`'s `def` line (so every output format,
    JSON included, carries them in `details`), each figure explained."""
    from jaxdoctor.registry import all_rules
    from jaxdoctor.trace.analyzers._common import fmt_bytes

    try:
        path = inspect.getsourcefile(fn) or ""
        line = inspect.getsourcelines(fn)[1]
    except (TypeError, OSError):
        path, line = "", 0
    flops, xla = report.get("flops"), report.get("xla_flops")
    parts = [f"`{name}` costs {_fmt_flops(flops)} per call (loop-aware count from the jaxpr"]
    if xla is not None:
        parts[0] += f"; XLA's own count is {_fmt_flops(xla)}"
        if report.get("loops"):
            parts[0] += ", which counts each loop body once"
    parts[0] += ")"
    if report.get("unknown_trip_loops"):
        parts.append(f"{report['unknown_trip_loops']} `while` loop(s) with no static trip count counted once")
    if report.get("total_bytes") is not None:
        parts.append(
            f"the compiled program holds {fmt_bytes(report['argument_bytes'])} of arguments, "
            f"{fmt_bytes(report['output_bytes'])} of outputs and {fmt_bytes(report['temp_bytes'])} of scratch "
            f"({fmt_bytes(report['total_bytes'])} in all)"
        )
    elif report.get("error"):
        parts.append(f"it did not compile, so no memory figures: {report['error']}")
    explained = {
        "flops": "floating-point operations per call, counted from the jaxpr: 2*M*N*K per matmul, one per "
                 "output element of elementwise math, one per input element of a reduction; a scan or "
                 "fori_loop body times its trip count, a cond its costliest branch",
        "xla_flops": "XLA's cost_analysis() of the compiled program: each loop body counted once, whatever "
                     "its trip count, so it is lower than `flops` for programs with loops",
        "unknown_trip_loops": "while loops whose trip count is not static, counted once in `flops`",
        "argument_bytes": "memory of the arguments of the compiled program",
        "output_bytes": "memory of its outputs",
        "temp_bytes": "scratch memory XLA allocates while the program runs",
        "alias_bytes": "output memory that reuses donated argument buffers",
        "total_bytes": "argument_bytes + output_bytes + temp_bytes",
    }
    details = {**report, "explained": {k: v for k, v in explained.items() if k in report}}
    return all_rules()["JD524"].finding("; ".join(parts), path, line, 1, line, 1, details=details)


def _fmt_flops(n: Any) -> str:
    if n is None:
        return "unknown FLOPs"
    for unit, size in (("TFLOP", 1e12), ("GFLOP", 1e9), ("MFLOP", 1e6), ("kFLOP", 1e3)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n} FLOP"


def _multi_device(spec: Any) -> bool:
    sharding = getattr(spec, "sharding", None)
    try:
        return sharding is not None and len(sharding.device_set) > 1
    except Exception:  # noqa: BLE001 - an abstract sharding
        return False


def _def_site(fn: Any) -> tuple[str, int] | None:
    try:
        return inspect.getsourcefile(fn), inspect.getsourcelines(fn)[1]
    except (TypeError, OSError):
        return None


def _is_mesh_error(exc: BaseException) -> bool:
    from jaxdoctor.trace.sharding.mesh_mistake import is_mesh_error

    return is_mesh_error(exc)
