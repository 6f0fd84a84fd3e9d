"""Helpers for the trace tests: run a target in this process (one shared process, real JAX)
or through the CLI's child process, and read `# JDxxx` markers."""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path

from markers import expected

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "trace"
EXAMPLES = ROOT / "examples"


def run_in_process(path: str | Path, function: str | None = "main", **job) -> list[dict]:
    """Run `path:function` (or the script) with `jaxdoctor.trace.child.run_job` here; finding dicts."""
    import jax

    from jaxdoctor.trace.child import run_job
    from jaxdoctor.trace.protocol import Session

    jax.config.update("jax_traceback_filtering", "off")
    kind = "file" if function else "script"
    session = Session()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        run_job({"target": {"kind": kind, "spec": os.path.abspath(path), "function": function}, **job}, session)
    run_in_process.last_session = session
    return session.findings


def located(findings: list[dict], path: str | Path) -> set[tuple[int, str]]:
    name = os.path.basename(str(path))
    return {(f["line"], f["code"]) for f in findings if os.path.basename(f.get("path") or "") == name}


def marks(path: str | Path) -> set[tuple[int, str]]:
    return expected(Path(path).read_text())
