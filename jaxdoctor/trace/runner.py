"""Parent side of `jaxdoctor trace`: run the child process, survive whatever the user's code does.

The child (`python -m jaxdoctor.trace.child`) gets a request file and streams JSON lines into a
results file (`trace.protocol`). Here we wait with a timeout; on a hang we make the child dump
its Python stack (SIGUSR1 → faulthandler) to say *where* it hung, then kill its whole process
group. A crash (segfault: negative return code) is located from faulthandler's crash output.
Never imports jax.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import IO

from jaxdoctor.trace.frames import is_user_file
from jaxdoctor.trace.protocol import read_records

DEFAULT_TIMEOUT = 120.0
_FH_FRAME = re.compile(r'^\s*File "(?P<file>.+)", line (?P<line>\d+) in (?P<func>.+)$')


@dataclass
class ChildResult:
    records: list[dict] = field(default_factory=list)
    returncode: int | None = None
    timed_out: bool = False
    seconds: float = 0.0
    hang_frame: tuple[str, int, str] | None = None  # (file, line, function) where it was stopped
    crash_frame: tuple[str, int, str] | None = None
    stderr_tail: str = ""

    @property
    def done(self) -> bool:
        return any(r.get("event") == "done" for r in self.records)

    @property
    def fatal(self) -> dict | None:
        return next((r for r in self.records if "fatal" in r), None)


def _package_root() -> str:
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_child(jobs: list[dict], *, device: str | None = None, timeout: float | None = None,
              cwd: str | None = None, stdout: IO | int | None = None, python: str | None = None) -> ChildResult:
    """Run `jobs` in one child process; stdout/stderr of the user's program go to ours
    (or `stdout`, e.g. our stderr when the findings are printed as JSON)."""
    timeout = DEFAULT_TIMEOUT if timeout is None else float(timeout)
    with tempfile.TemporaryDirectory(prefix="jaxdoctor-") as tmp:
        request = {
            "jobs": jobs,
            "device": device,
            "results": os.path.join(tmp, "results.jsonl"),
            "crash_file": os.path.join(tmp, "crash.txt"),
            "dump_file": os.path.join(tmp, "stack.txt"),
        }
        req_path = os.path.join(tmp, "request.json")
        with open(req_path, "w", encoding="utf-8") as f:
            json.dump(request, f)
        env = dict(os.environ)
        root = _package_root()
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        env.setdefault("PYTHONUNBUFFERED", "1")
        if device:
            env.pop("JAX_PLATFORMS", None)  # the child sets it from --device, before importing jax
        result = ChildResult()
        start = time.perf_counter()
        try:
            proc = subprocess.Popen(
                [python or sys.executable, "-m", "jaxdoctor.trace.child", req_path],
                cwd=cwd or os.getcwd(), env=env, stdout=stdout, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        except OSError as exc:
            result.records.append({"fatal": f"cannot start the trace process: {exc}", "status": 2})
            return result
        try:
            result.returncode = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            result.timed_out = True
            _dump_and_kill(proc, request["dump_file"])
            result.hang_frame = _user_frame(request["dump_file"])
        except KeyboardInterrupt:
            _kill_group(proc)
            raise
        result.seconds = time.perf_counter() - start
        result.records = read_records(request["results"])
        if result.returncode is not None and result.returncode < 0:
            result.crash_frame = _user_frame(request["crash_file"])
        return result


def _dump_and_kill(proc: subprocess.Popen, dump_file: str) -> None:
    if hasattr(signal, "SIGUSR1"):
        try:
            os.kill(proc.pid, signal.SIGUSR1)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            try:
                if os.path.getsize(dump_file) > 0:
                    time.sleep(0.05)
                    break
            except OSError:
                pass
            time.sleep(0.02)
    _kill_group(proc)


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError, AttributeError):
        try:
            proc.kill()
        except ProcessLookupError:
            pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:  # pragma: no cover - unkillable
        pass


def _user_frame(path: str) -> tuple[str, int, str] | None:
    """Innermost user frame of the first (current) thread in a faulthandler dump."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return None
    block = text.split("\n\n")[0] if text else ""
    for raw in block.splitlines():
        m = _FH_FRAME.match(raw)
        if m and is_user_file(m.group("file")):
            return m.group("file"), int(m.group("line")), m.group("func").strip()
    for raw in text.splitlines():  # another thread, if the current one had no user frame
        m = _FH_FRAME.match(raw)
        if m and is_user_file(m.group("file")):
            return m.group("file"), int(m.group("line")), m.group("func").strip()
    return None


def signal_name(returncode: int) -> str:
    try:
        return signal.Signals(-returncode).name
    except (ValueError, AttributeError):
        return f"signal {-returncode}"
