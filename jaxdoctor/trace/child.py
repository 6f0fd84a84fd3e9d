"""The child process of `jaxdoctor trace`: imports jax, runs or traces the user's code.

`python -m jaxdoctor.trace.child REQUEST.json` reads its jobs (see `runner.run_child`), picks the
platform *before* jax is imported (`trace.device`), and reports through `trace.protocol`. Each
job is dispatched here: a script or a zero-argument function runs under the doctor
(`trace.program`, with `trace.capture` installed); a function with inputs is traced abstractly
(`trace.abstract`). The user's program keeps this process's stdout and stderr.

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

from jaxdoctor.trace.device import PLATFORMS, select_device
from jaxdoctor.trace.protocol import Session


def run_job(job: dict, session: Session) -> dict:
    """Run one target (abstract trace or run under the doctor). Returns `{"program_exit": n, ...}`."""
    from jaxdoctor.errors import UsageError
    from jaxdoctor.trace import targets as targets_mod
    from jaxdoctor.trace.abstract import required_params, trace_abstract
    from jaxdoctor.trace.capture import Capture
    from jaxdoctor.trace.explain import explain
    from jaxdoctor.trace.program import print_user_traceback, report_exit, run_program
    from jaxdoctor.trace.retrace import RetraceLog

    from jaxdoctor.trace.sharding.watch import ShardingWatch, options_from_job

    target = targets_mod.Target.from_json(job["target"])
    retrace = RetraceLog(int(job.get("retrace_threshold", 4)))
    capture = Capture(session, retrace)
    capture.install()
    sharding = ShardingWatch(session, options_from_job(job))
    sharding.install()
    started = time.perf_counter()
    result: dict = {"program_exit": 0, "mode": None}
    checks: list = []  # uninstall callables of the runtime checks (run mode only)
    try:
        missing = targets_mod.missing_module(target)
        if missing is not None:
            session.fatal(missing)
            return result
        if target.kind in ("script", "run-module"):
            result["mode"] = "run"
            _report_script(session, target)
            _maybe_patch_linen(capture, target)
            checks.append(_install_checks(session, capture, job))
            result["program_exit"] = run_program(target, job, capture, session)
            return result
        _maybe_patch_linen(capture, target)
        try:
            module = targets_mod.import_target_module(target)
        except SystemExit as exc:
            result["program_exit"] = report_exit(exc, session)
            return result
        except BaseException as exc:  # noqa: BLE001 - user code may raise anything
            session.emit(explain(exc, phase="import"))
            session.failed(f"importing {target.spec} raised {type(exc).__name__}")
            print_user_traceback(exc)
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
        if job.get("inputs") is not None or companion is not None or required_params(fn):
            result["mode"] = "abstract"
            capture.uninstall()
            sharding.uninstall()
            trace_abstract(fn, target, job, companion, session)
        else:
            result["mode"] = "run"
            checks.append(_install_checks(session, capture, job))
            result["program_exit"] = run_program(target, job, capture, session, fn=fn)
        return result
    except UsageError as exc:
        session.fatal(str(exc))
        return result
    finally:
        for undo in checks:
            undo()
        for f in retrace.findings():
            session.emit(f)
        capture.uninstall()
        sharding.uninstall()
        if result["mode"] == "run":
            sharding.finish()
        session.write({"event": "job-done", "seconds": round(time.perf_counter() - started, 4),
                       "captured": capture.captured, **result})


def _install_checks(session: Session, capture: Any, job: dict) -> Any:
    """JAX's runtime checks for a run under the doctor (`trace.checks`); `"checks": false` in the
    job turns them off."""
    if job.get("checks") is False:
        return lambda: None
    from jaxdoctor.trace.checks import install

    return install(session, capture)


def _report_target(session: Session, fn: Any) -> None:
    try:
        path = inspect.getsourcefile(fn)
        line = inspect.getsourcelines(fn)[1]
        session.write({"event": "target", "path": path, "line": line})
    except (TypeError, OSError):
        pass


def _report_script(session: Session, target: Any) -> None:
    """The file a script or `pkg.module` target runs (where findings without a user frame go)."""
    path = target.spec if target.kind == "script" else None
    if path is None:
        try:
            import importlib.util

            spec = importlib.util.find_spec(target.spec)
            path = spec.origin if spec is not None else None
        except Exception:  # noqa: BLE001
            path = None
    if path and os.path.isfile(path):
        session.write({"event": "target", "path": path, "line": 1})


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
    from jaxdoctor.trace.sharding.watch import cpu_device_count
    from jaxdoctor.trace.xla_internals import default_cpu_devices

    cpu_devices = cpu_device_count(request)
    if cpu_devices:
        default_cpu_devices(cpu_devices)
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
