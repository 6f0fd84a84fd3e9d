"""Which files a lint run checks: walk directories, skip what is never user source."""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

#: directory → (exclude globs, the directory they are relative to): per-file configuration
ExcludeFor = Callable[[Path], "tuple[list[str], Path]"]

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


def _matches(patterns: list[str], rel: str, name: str, absolute: str = "") -> bool:
    return any(fnmatch.fnmatchcase(rel, p) or fnmatch.fnmatchcase(name, p)
               or fnmatch.fnmatchcase(rel, p.rstrip("/") + "/*")
               or (absolute and os.path.isabs(p) and (fnmatch.fnmatchcase(absolute, p)
                                                      or fnmatch.fnmatchcase(absolute, p.rstrip("/") + "/*")))
               for p in patterns)


def discover(paths: list[str], exclude: list[str], root: Path, *,
             exclude_for: ExcludeFor | None = None) -> list[Candidate]:
    """Files under `paths`, sorted; directories are walked, `exclude` globs are applied
    (relative to `root`, the config's directory). With `exclude_for`, each directory's globs and
    their root come from the configuration that governs it instead. Missing paths are returned
    too: the engine reports them as unreadable rather than dropping them silently."""
    out: dict[Path, Candidate] = {}
    root = root.resolve()

    def rules(directory: Path) -> tuple[list[str], Path]:
        if exclude_for is None:
            return exclude, root
        return exclude_for(directory)

    def excluded(p: Path, directory: Path) -> bool:
        patterns, base = rules(directory)
        if not patterns:
            return False
        try:
            resolved = p.resolve()
        except (OSError, RuntimeError):  # RuntimeError: a symlink loop (Python < 3.13)
            resolved = p
        try:
            rel = resolved.relative_to(base).as_posix()
        except ValueError:
            rel = p.as_posix()
        return _matches(patterns, rel, p.name, resolved.as_posix())

    for raw in paths:
        start = Path(raw)
        if raw not in (".", "") and excluded(start, start.parent):
            continue
        if start.is_dir():
            for dirpath, dirnames, filenames in os.walk(start, followlinks=False, onerror=None):
                d = Path(dirpath)
                keep = []
                for name in dirnames:
                    sub = d / name
                    if name in SKIP_DIRS or name.endswith(".egg-info"):
                        continue
                    if (sub / "pyvenv.cfg").exists() or excluded(sub, d):
                        continue
                    keep.append(name)
                dirnames[:] = sorted(keep)
                for name in filenames:
                    if not name.endswith(SUFFIXES):
                        continue
                    f = d / name
                    if excluded(f, d):
                        continue
                    out.setdefault(f, Candidate(f, display_path(f), explicit=False))
                # a directory named like a source file (x.py/) is a directory: walked, not read
        else:
            out.setdefault(start, Candidate(start, display_path(start), explicit=True))
    return sorted(out.values(), key=lambda c: c.display)
