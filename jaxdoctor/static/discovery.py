"""Which files a lint run checks: walk directories, skip what is never user source."""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass
from pathlib import Path

SUFFIXES = (".py", ".pyi", ".ipynb")
SKIP_DIRS = frozenset(
    {
        ".git", ".hg", ".svn", ".venv", "venv", ".env", "__pycache__", "build", "dist",
        "node_modules", ".tox", ".nox", ".mypy_cache", ".pytest_cache", ".ruff_cache",
        ".ipynb_checkpoints", "site-packages", ".eggs", "_build", "buck-out", ".direnv",
    }
)


@dataclass(frozen=True, slots=True)
class Candidate:
    path: Path
    display: str
    explicit: bool  # named on the command line (linted even without a Python suffix)


def display_path(path: Path) -> str:
    """Relative to the working directory when under it, else as given."""
    try:
        rel = os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return str(path)
    return str(path) if rel.startswith("..") else rel


def _matches(patterns: list[str], rel: str, name: str) -> bool:
    return any(fnmatch.fnmatchcase(rel, p) or fnmatch.fnmatchcase(name, p)
               or fnmatch.fnmatchcase(rel, p.rstrip("/") + "/*") for p in patterns)


def discover(paths: list[str], exclude: list[str], root: Path) -> list[Candidate]:
    """Files under `paths`, sorted; directories are walked, `exclude` globs are applied
    (relative to `root`, the config's directory). Missing paths are returned too: the engine
    reports them as unreadable rather than dropping them silently."""
    out: dict[Path, Candidate] = {}
    root = root.resolve()

    def rel(p: Path) -> str:
        try:
            return p.resolve().relative_to(root).as_posix()
        except (ValueError, OSError, RuntimeError):  # RuntimeError: a symlink loop (Python < 3.13)
            return p.as_posix()

    for raw in paths:
        start = Path(raw)
        if _matches(exclude, rel(start), start.name) and raw not in (".", ""):
            continue
        if start.is_dir():
            for dirpath, dirnames, filenames in os.walk(start, followlinks=False, onerror=None):
                d = Path(dirpath)
                keep = []
                for name in dirnames:
                    sub = d / name
                    if name in SKIP_DIRS or name.endswith(".egg-info"):
                        continue
                    if (sub / "pyvenv.cfg").exists() or _matches(exclude, rel(sub), name):
                        continue
                    keep.append(name)
                dirnames[:] = sorted(keep)
                for name in filenames:
                    if not name.endswith(SUFFIXES):
                        continue
                    f = d / name
                    if _matches(exclude, rel(f), name):
                        continue
                    out.setdefault(f, Candidate(f, display_path(f), explicit=False))
                # a directory named like a source file (x.py/) is a directory: walked, not read
        else:
            out.setdefault(start, Candidate(start, display_path(start), explicit=True))
    return sorted(out.values(), key=lambda c: c.display)
