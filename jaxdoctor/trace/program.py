"""Running the user's program under the doctor: a script, a module run as `__main__`, or a
zero-argument function, with its own argv, output and exit status; an exception that escapes is
explained (`trace.explain`) and its traceback printed without library frames."""

from __future__ import annotations

import os
import sys
import traceback
from typing import Any

from jaxdoctor.trace.explain import explain
from jaxdoctor.trace.frames import is_user_file
from jaxdoctor.trace.protocol import Session


def exit_code(exc: SystemExit) -> int:
    """The status `sys.exit(code)` ends a process with (a message is printed, status 1)."""
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    print(exc.code, file=sys.stderr)
    return 1


def run_program(target: Any, job: dict, capture: Any, session: Session, fn: Any = None) -> int:
    """Run the target for real under `capture`; returns the program's exit status."""
    import runpy

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
        return report_exit(exc, session)
    except BaseException as exc:  # noqa: BLE001 - explain whatever the program raised
        phase = "import" if isinstance(exc, (ImportError, SyntaxError)) else "run"
        finding = explain(exc, phase=phase)
        if finding.code == "JD517" and any(f["code"] == "JD504" for f in session.findings):
            session.note("the UnexpectedTracerError comes from the leaked tracers reported above (JD504)")
        else:
            session.emit(finding)
        session.failed(f"it raised {type(exc).__name__}")
        print_user_traceback(exc)
        return 1
    finally:
        sys.argv = saved_argv
        capture.patch_flax_linen()


def report_exit(exc: SystemExit, session: Session) -> int:
    """The status of `sys.exit(...)`; a non-zero one is a JD523 finding at the user's call."""
    from jaxdoctor.registry import all_rules
    from jaxdoctor.trace.explain import first_user_frame

    code = exit_code(exc)
    if not code:
        return code
    loc = first_user_frame(exc)
    path, line, col, end_line, end_col = loc if loc is not None else ("", 0, 0, 0, 0)
    shown = f"sys.exit({exc.code!r})"
    message = f"the program called `{shown}` and ended with status {code}"
    session.emit(all_rules()["JD523"].finding(message, path, line, col, end_line, max(end_col, col),
                                              details={"exit_status": code, "exit_argument": repr(exc.code)}))
    session.failed(f"the program exited with status {code}")
    return code


def print_user_traceback(exc: BaseException) -> None:
    """What Python would print for an uncaught exception, without library frames."""
    frames = [fs for fs in traceback.extract_tb(exc.__traceback__) if is_user_file(fs.filename)]
    lines = ["Traceback (most recent call last; library frames hidden by jaxdoctor):\n"]
    lines += traceback.format_list(frames)
    lines += traceback.format_exception_only(type(exc), exc)
    sys.stderr.write("".join(lines))
    sys.stderr.flush()
