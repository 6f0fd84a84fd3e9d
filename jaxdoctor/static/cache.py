"""The result cache of `jaxdoctor lint`: one small JSON file per (file content, run options).

An entry's key is a SHA-256 of everything its findings depend on: the file's bytes, its display
path (findings carry it), the enabled codes for that file, the settings rules may read, and a
fingerprint of jaxdoctor itself (its version plus the size and mtime of every file of the
installed package, so an edited rule in a development checkout never serves old results) and of
libcst. Change any of them and the key changes: an entry is never served stale, it is just no
longer found.

Safe to share between concurrent runs: entries are written to a temporary file in the same
directory and renamed into place (atomic on POSIX and Windows), and an entry that can't be read
or decoded (truncated, corrupt, another schema) is treated as a miss. Any error writing the cache
is ignored: the cache only ever makes a run faster, never makes it fail.

Location: `--cache-dir`, else `cache-dir` in `[tool.jaxdoctor]` (relative to that pyproject.toml),
else `$JAXDOCTOR_CACHE_DIR`, else `$XDG_CACHE_HOME/jaxdoctor`, else `~/.cache/jaxdoctor`.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Iterable, Mapping

from jaxdoctor import __version__
from jaxdoctor.findings import Finding
from jaxdoctor.source import write_atomic

#: Bump when the entry format changes (2: findings carry their quoted source line).
SCHEMA = 2


def default_dir() -> Path:
    env = os.environ.get("JAXDOCTOR_CACHE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "jaxdoctor"


def resolve_dir(cli_dir: str | os.PathLike | None, config_dir: str | None, config_root: Path | None) -> Path:
    if cli_dir:
        return Path(cli_dir)
    if config_dir:
        p = Path(config_dir).expanduser()
        return p if p.is_absolute() or config_root is None else config_root / p
    return default_dir()


def _package_fingerprint() -> str:
    """jaxdoctor's version, and the size+mtime of each of its files; libcst's version."""
    h = hashlib.sha256(f"jaxdoctor {__version__} schema {SCHEMA}".encode())
    root = Path(__file__).resolve().parent.parent
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for name in sorted(filenames):
            if name.endswith((".pyc", ".pyo")):
                continue
            path = os.path.join(dirpath, name)
            try:
                st = os.stat(path)
            except OSError:
                continue
            h.update(f"{os.path.relpath(path, root)}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    try:  # libcst is imported by every lint run anyway; importlib.metadata costs ~20 ms
        from libcst._version import __version__ as libcst_version
    except ImportError:  # pragma: no cover - libcst moved it: fall back to the dist record
        from importlib.metadata import version

        libcst_version = version("libcst")
    h.update(f"libcst {libcst_version}".encode())
    return h.hexdigest()


class Cache:
    """Lookup and store of per-file results under `directory`."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory) / f"v{SCHEMA}"
        self._base = hashlib.sha256(_package_fingerprint().encode()).digest()
        self.hits = 0
        self.misses = 0

    def key(self, display: str, codes: Iterable[str], digest: str, options: Mapping[str, str]) -> str:
        """The key of one file's result: `digest` is the SHA-256 of its bytes."""
        h = hashlib.sha256(self._base)
        h.update(json.dumps([display, sorted(codes), digest, sorted(options.items())]).encode())
        return h.hexdigest()

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.json"

    def get(self, key: str) -> tuple[list[Finding], bool] | None:
        """(findings, parsed) or None on a miss; a corrupt entry is a miss."""
        try:
            with open(self._path(key), "rb") as f:
                entry = json.loads(f.read())
            if entry.get("key") != key:
                raise ValueError("entry for another key")
            found = ([Finding.from_dict(d) for d in entry["findings"]], bool(entry["parsed"]))
        except FileNotFoundError:
            self.misses += 1
            return None
        except Exception:  # noqa: BLE001 - truncated, corrupt, unreadable: a miss
            self.misses += 1
            return None
        self.hits += 1
        return found

    def put(self, key: str, findings: list[Finding], parsed: bool) -> None:
        """Store atomically; failures (read-only or full disk, races) are ignored."""
        path = self._path(key)
        try:
            payload = json.dumps(
                {"key": key, "parsed": parsed, "findings": [f.to_dict(quote=True) for f in findings]},
                separators=(",", ":"),
            ).encode()
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, payload, keep_mode=False, durable=False)
        except (OSError, ValueError, TypeError):
            pass
