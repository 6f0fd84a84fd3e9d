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
    in_mesh = jax.set_mesh(mesh) if mesh is not None else contextlib.nullcontext()
    t0 = time.perf_counter()
    try:
        with in_mesh:
            closed = jax.make_jaxpr(traced_fn)(*specs)
    except BaseException as exc:  # noqa: BLE001
        if isinstance(exc, SystemExit):
            raise UsageError(f"`{name}` called sys.exit({exc.code!r}) while being traced") from None
        session.emit(explain(exc))
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
