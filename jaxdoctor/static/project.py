"""Facts about the project around a file that change what its own code means.

Today one: 64-bit mode switched on for a whole test suite by a `conftest.py` (pytest imports
every `conftest.py` from the rootdir down to a test file before the file runs), or by
`JAX_ENABLE_X64` in the pytest configuration. A file under such a `conftest.py` asks for
`float64` and gets it (JD125). Found by reading the few files involved, never by importing
them; cached per directory for the run.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

_X64_ON = re.compile(
    r"""jax_enable_x64["']\s*,\s*(?:True|1)\b|enable_x64\(\s*(?:True)?\s*\)|JAX_ENABLE_X64\s*[=:]\s*["']?(?:1|true|True)"""
)
_PYTEST_CONFIGS = ("pytest.ini", "pyproject.toml", "setup.cfg", "tox.ini")
_ROOT_MARKERS = (".git", ".hg")


def file_options(path: Path) -> dict[str, str]:
    """Options for the rules of one file (`ctx.options`), from the project around it."""
    found = x64_enabled_by(path.absolute().parent)  # not resolve(): a symlink loop must not raise
    return {"x64-enabled-by": found} if found else {}


@functools.lru_cache(maxsize=4096)
def x64_enabled_by(directory: Path) -> str | None:
    """The `conftest.py` (or pytest configuration) that turns on 64-bit mode for tests in
    `directory`, searching up to the repository root."""
    conftest = directory / "conftest.py"
    if _mentions_x64(conftest):
        return str(conftest)
    for name in _PYTEST_CONFIGS:
        cfg = directory / name
        if _mentions_x64(cfg):
            return str(cfg)
    try:
        at_root = any((directory / m).exists() for m in _ROOT_MARKERS)
    except OSError:
        at_root = True
    if at_root or directory.parent == directory:
        return None
    return x64_enabled_by(directory.parent)


def _mentions_x64(path: Path) -> bool:
    try:
        if not path.is_file() or path.stat().st_size > 1_000_000:
            return False
        return _X64_ON.search(path.read_text(encoding="utf-8", errors="replace")) is not None
    except OSError:
        return False
