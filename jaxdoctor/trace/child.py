"""The child process of `jaxdoctor trace`: imports jax, runs or traces the user's code.

`python -m jaxdoctor.trace.child REQUEST.json` reads a job (see `runner.make_request`), picks the
platform *before* jax is imported, and writes one JSON object per line to the job's results file
as it goes (findings, notes, and a final `done` event), so what was found survives a hang or a
crash of the user's code. The user's program keeps this process's stdout and stderr.

`run_job` is also usable in-process (the tests share one process across cases).
"""

from __future__ import annotations

import inspect
import json
import os
import sys
import time
import traceback
from typing import Any

from jaxdoctor.findings import Finding

PLATFORMS = {"cpu": "cpu", "gpu": "cuda", "tpu": "tpu"}


class Session:
    """Where findings go: a JSON-lines file (subprocess) or a list (in-process)."""

    def __init__(self, results_path: str | None = None) -> None:
        self._file = open(results_path, "a", encoding="utf-8") if results_path else None  # noqa: SIM115
        self.records: list[dict] = []
        self._analyzer: Any = None
        self._analyzer_missing = False

    def write(self, obj: dict) -> None:
        self.records.append(obj)
        if self._file is not None:
            self._file.write(json.dumps(obj, default=_jsonable) + "\n")
            self._file.flush()

    def emit(self, finding: Finding) -> None:
        self.write({"finding": finding.to_dict()})

    def note(self, message: str) -> None:
        self.write({"note": message})

    def fatal(self, message: str, status: int = 2) -> None:
        self.write({"fatal": message, "status": status})

    @property
    def findings(self) -> list[dict]:
        """The findings written so far, as their records (`Finding.to_dict`)."""
        return [r["finding"] for r in self.records if "finding" in r]

    def analyze(self, closed: Any, *, batch_axes: Any = None, batch_size: Any = None,
                entry_name: str = "fn", arg_names: Any = None) -> None:
        if self._analyzer is None and not self._analyzer_missing:
            try:
                from jaxdoctor.trace.analyzers import analyze_jaxpr

                self._analyzer = analyze_jaxpr
            except ImportError as exc:
                self._analyzer_missing = True
                self.note(f"jaxpr analyzers unavailable ({exc}); only trace errors are reported")
        if self._analyzer is None:
            return
        try:
            found = self._analyzer(closed, batch_axes=batch_axes, batch_size=batch_size,
                                   entry_name=entry_name, arg_names=arg_names)
        except Exception as exc:  # noqa: BLE001 - an analyzer bug must not end the user's program
            self.note(f"analyzer error on `{entry_name}`: {type(exc).__name__}: {exc}")
            return
        for f in found or ():
            self.emit(f)


def _jsonable(x: Any) -> Any:
    if hasattr(x, "value") and hasattr(type(x), "__members__"):
        return x.value
    if isinstance(x, (set, frozenset, tuple)):
        return list(x)
    try:
        import numpy as np

        if isinstance(x, np.generic):
            return x.item()
    except ImportError:  # pragma: no cover
        pass
    return str(x)


# ---------------------------------------------------------------- one job


def select_device(device: str | None, session: Session) -> bool:
    """Check the requested platform (already in JAX_PLATFORMS); on failure name the devices that exist."""
    if not device:
        return True
    import jax

    try:
        jax.devices()
        return True
    except Exception as exc:  # noqa: BLE001 - jax 0.10 raises AssertionError for a missing plugin
        reason = (str(exc).splitlines()[0] if str(exc).strip()
                  else f"no {device} backend is installed; jax raised a bare {type(exc).__name__}")
        session.fatal(
            f"--device {device}: JAX cannot use a {device} device here ({reason}); "
            f"devices that exist: {_existing_devices()}"
        )
        return False


def _existing_devices() -> str:
    import subprocess

    env = {k: v for k, v in os.environ.items() if k != "JAX_PLATFORMS"}
    code = "import jax; print(', '.join(f'{d.platform}:{d.id} ({d.device_kind})' for d in jax.devices()))"
    try:
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
        return out.stdout.strip() or "none found"
    except Exception:  # noqa: BLE001
        return "unknown"


def run_job(job: dict, session: Session) -> dict:
    """Run one target (abstract trace or run under the doctor). Returns `{"program_exit": n, ...}`."""
    from jaxdoctor.errors import UsageError
    from jaxdoctor.trace import targets as targets_mod
    from jaxdoctor.trace.capture import Capture
    from jaxdoctor.trace.explain import explain
    from jaxdoctor.trace.retrace import RetraceLog

    target = targets_mod.Target.from_json(job["target"])
    retrace = RetraceLog(int(job.get("retrace_threshold", 3)))
    capture = Capture(session, retrace)
    capture.install()
    started = time.perf_counter()
    result: dict = {"program_exit": 0, "mode": None}
    try:
        if target.kind in ("script", "run-module"):
            result["mode"] = "run"
            _maybe_patch_linen(capture, target)
            result["program_exit"] = _run_program(target, job, capture, session)
            return result
        _maybe_patch_linen(capture, target)
        try:
            module = targets_mod.import_target_module(target)
        except SystemExit as exc:
            code = _exit_code(exc)
            session.note(f"importing {target.spec} called sys.exit({exc.code!r})")
            result["program_exit"] = code
            return result
        except BaseException as exc:  # noqa: BLE001 - user code may raise anything
            session.emit(explain(exc, phase="import"))
            _print_user_traceback(exc)
            result["program_exit"] = 1
            return result
        capture.patch_flax_linen()
        try:
            fn = targets_mod.resolve_function(module, target)
        except LookupError as exc:
            session.fatal(f"trace: {exc}")
            return result
        _report_target(session, fn)
        companion = getattr(module, f"jaxdoctor_inputs_{target.function_name}", None)
        if job.get("inputs") is not None or companion is not None or _required_params(fn):
            result["mode"] = "abstract"
            capture.uninstall()
            _abstract(fn, target, job, companion, session)
        else:
            result["mode"] = "run"
            result["program_exit"] = _run_program(target, job, capture, session, fn=fn)
        return result
    except UsageError as exc:
        session.fatal(str(exc))
        return result
    finally:
        for f in retrace.findings():
            session.emit(f)
        capture.uninstall()
        session.write({"event": "job-done", "seconds": round(time.perf_counter() - started, 4),
                       "captured": capture.captured, **result})


def _report_target(session: Session, fn: Any) -> None:
    try:
        path = inspect.getsourcefile(fn)
        line = inspect.getsourcelines(fn)[1]
        session.write({"event": "target", "path": path, "line": line})
    except (TypeError, OSError):
        pass


def _required_params(fn: Any) -> list[str]:
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


def _maybe_patch_linen(capture: Any, target: Any) -> None:
    """Import flax.linen up front when the target's source mentions it (to watch `init`)."""
    path = target.spec if target.kind in ("file", "script") else None
    if path is None:
        try:
            import importlib.util

            spec = importlib.util.find_spec(target.spec)
            path = spec.origin if spec else None
        except Exception:  # noqa: BLE001
            path = None
    try:
        with open(path or "", encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return
    if "linen" in text or "import flax" in text or "from flax" in text:
        try:
            import flax.linen  # noqa: F401
        except Exception:  # noqa: BLE001 - flax is optional
            return
        capture.patch_flax_linen()


def _exit_code(exc: SystemExit) -> int:
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    print(exc.code, file=sys.stderr)
    return 1


def _run_program(target: Any, job: dict, capture: Any, session: Session, fn: Any = None) -> int:
    import runpy

    from jaxdoctor.trace.explain import explain

    argv = list(job.get("args") or [])
    saved_argv = sys.argv
    try:
        if target.kind == "script":
            sys.argv = [target.spec, *argv]
            sys.path.insert(0, os.path.dirname(target.spec))
            runpy.run_path(target.spec, run_name="__main__")
        elif target.kind == "run-module":
            sys.argv = [target.spec, *argv]
            if os.getcwd() not in sys.path:
                sys.path.insert(0, os.getcwd())
            runpy.run_module(target.spec, run_name="__main__", alter_sys=True)
        else:
            fn()
        return 0
    except SystemExit as exc:
        code = _exit_code(exc)
        if code:
            session.note(f"the program called sys.exit({exc.code!r})")
        return code
    except BaseException as exc:  # noqa: BLE001 - explain whatever the program raised
        phase = "import" if isinstance(exc, (ImportError, SyntaxError)) else "run"
        finding = explain(exc, phase=phase)
        if finding.code == "JD517" and any(f["code"] == "JD504" for f in session.findings):
            session.note("the UnexpectedTracerError comes from the leaked tracers reported above (JD504)")
        else:
            session.emit(finding)
        _print_user_traceback(exc)
        return 1
    finally:
        sys.argv = saved_argv
        capture.patch_flax_linen()


def _print_user_traceback(exc: BaseException) -> None:
    """What Python would print for an uncaught exception, without library frames."""
    from jaxdoctor.trace.frames import is_user_file

    frames = [fs for fs in traceback.extract_tb(exc.__traceback__) if is_user_file(fs.filename)]
    lines = ["Traceback (most recent call last; library frames hidden by jaxdoctor):\n"]
    lines += traceback.format_list(frames)
    lines += traceback.format_exception_only(type(exc), exc)
    sys.stderr.write("".join(lines))
    sys.stderr.flush()


def _abstract(fn: Any, target: Any, job: dict, companion: Any, session: Session) -> None:
    import jax

    from jaxdoctor.errors import UsageError
    from jaxdoctor.trace import inputs as inp
    from jaxdoctor.trace.explain import explain

    name = target.function_name
    if job.get("inputs") is not None:
        args, kwargs = inp.parse_inputs(job["inputs"])
        args, kwargs = inp.materialize(args), inp.materialize(kwargs)
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
            f"`{name}` takes arguments ({', '.join(_required_params(fn))}): give --inputs "
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
    t0 = time.perf_counter()
    try:
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


# ---------------------------------------------------------------- process entry


def main(argv: list[str]) -> int:
    with open(argv[1], encoding="utf-8") as f:
        request = json.load(f)
    device = request.get("device")
    if device:
        os.environ["JAX_PLATFORMS"] = PLATFORMS[device]
    os.environ.setdefault("JAX_TRACEBACK_FILTERING", "off")
    import faulthandler
    import signal

    crash = open(request["crash_file"], "w")  # noqa: SIM115 - must stay open for faulthandler
    faulthandler.enable(file=crash, all_threads=True)
    if hasattr(signal, "SIGUSR1"):
        dump = open(request["dump_file"], "w")  # noqa: SIM115
        faulthandler.register(signal.SIGUSR1, file=dump, all_threads=True)
    session = Session(request["results"])
    try:
        import jax  # noqa: F401
    except ImportError as exc:
        session.fatal(
            f"jax is not installed for {sys.executable} ({exc}); install it with `pip install 'jaxdoctor[trace]'`"
        )
        return 0
    if not select_device(device, session):
        return 0
    for job in request["jobs"]:
        session.write({"event": "job-start", "target": job["target"]})
        run_job(job, session)
    session.write({"event": "done"})
    sys.stdout.flush()
    sys.stderr.flush()
    return 0


def _internal_error(argv: list[str], exc: BaseException) -> None:
    """A bug in jaxdoctor: one line for the parent (exit status 2), the details for a bug report."""
    try:
        with open(argv[1], encoding="utf-8") as f:
            results = json.load(f)["results"]
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        Session(results).fatal(f"internal error in jaxdoctor's trace process: {detail} (please report it)")
    except Exception:  # noqa: BLE001 - nothing more we can do; the parent reports a lost child
        pass


if __name__ == "__main__":
    code = 0
    try:
        code = main(sys.argv)
    except BaseException as exc:  # noqa: BLE001
        _internal_error(sys.argv, exc)
    finally:
        # The user's program may have left threads behind (data loaders); don't wait for them.
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)
