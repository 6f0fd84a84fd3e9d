"""What the end-to-end tests share: running the `jaxdoctor` command, and the one bad program."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

#: The bad program the CLI tests lint: JD101 (Python `if` on a traced value) at `BAD_JD101`.
BAD = """\
import jax


@jax.jit
def f(x):
    if x > 0:
        return x
    return -x
"""
BAD_JD101 = (6, 8)  # line, column


def jaxdoctor(*args: str, cwd: Path | str | None = None, timeout: float = 120,
              env: dict[str, str] | None = None, stdin: str | None = None) -> subprocess.CompletedProcess:
    """`python -m jaxdoctor ARGS` in `cwd` (with `stdin` as its input), its output captured as
    text. By default in a clean environment: no colour, and HOME is `cwd`, so no user
    configuration or cache leaks in."""
    cwd = Path(cwd) if cwd is not None else Path.cwd()
    if env is None:
        env = {"NO_COLOR": "1", "PATH": "/usr/bin:/bin", "HOME": str(cwd)}
    return subprocess.run([sys.executable, "-m", "jaxdoctor", *args], cwd=cwd, env=env, input=stdin,
                          capture_output=True, text=True, timeout=timeout)


def write(path: Path, text: str) -> Path:
    """`text`, dedented, written to `path` (its folders made)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path
