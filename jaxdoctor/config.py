"""`[tool.jaxdoctor]` in the nearest `pyproject.toml` (DESIGN §6).

The nearest `pyproject.toml` *with a `[tool.jaxdoctor]` table*, searching upward from the first
path given (ruff's rule), or the file named by `--config`. Unknown keys and badly typed values
are a `UsageError`: one line, exit status 2.
"""

from __future__ import annotations

import difflib
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from jaxdoctor.errors import UsageError

#: key → (type description, validator)
_LIST_KEYS = ("select", "ignore", "extend-select", "exclude", "extend-exclude")
_STR_KEYS = ("target-jax-version", "target-flax-version", "target-equinox-version",
             "target-optax-version")
KNOWN_KEYS = frozenset(
    _LIST_KEYS + _STR_KEYS + ("per-file-ignores", "trace", "jobs", "cache", "cache-dir")
)


@dataclass
class Settings:
    select: list[str] | None = None
    ignore: list[str] = field(default_factory=list)
    extend_select: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    extend_exclude: list[str] = field(default_factory=list)
    per_file_ignores: dict[str, list[str]] = field(default_factory=dict)
    target_versions: dict[str, str] = field(default_factory=dict)  # "jax" → "0.4.30"
    trace: list[dict[str, Any]] = field(default_factory=list)
    jobs: int | None = None
    cache: bool = True
    cache_dir: str | None = None
    #: the project's declared dependencies (to default target versions to what it pins)
    dependencies: list[str] = field(default_factory=list)
    #: the pyproject.toml the settings came from, and its directory (globs are relative to it)
    source: Path | None = None
    root: Path = field(default_factory=Path.cwd)


def find_pyproject(start: Path) -> Path | None:
    """The nearest pyproject.toml at or above `start` that has a [tool.jaxdoctor] table."""
    start = start.resolve()
    if start.is_file() or not start.exists():
        start = start.parent
    for directory in (start, *start.parents):
        candidate = directory / "pyproject.toml"
        try:
            text = candidate.read_text(encoding="utf-8", errors="replace") if candidate.is_file() else ""
        except OSError:
            continue
        if "tool.jaxdoctor" in text:
            # a broken pyproject.toml that configures jaxdoctor is an error, not "no config"
            if "jaxdoctor" in _read_toml(candidate).get("tool", {}):
                return candidate
    return None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e.strerror or e}") from None
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"{path}: invalid TOML: {e}") from None


def _str_list(path: Path, key: str, value: Any) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise UsageError(f"{path}: [tool.jaxdoctor] {key} must be a list of strings, got {value!r}")
    return list(value)


def load(config: Path | None = None, start: Path | None = None, *, isolated: bool = False) -> Settings:
    """Settings from `config`, else from the nearest pyproject.toml above `start`."""
    if isolated:
        return Settings()
    path = config if config is not None else find_pyproject(start or Path.cwd())
    if path is None:
        return Settings()
    if not path.is_file():
        raise UsageError(f"config file not found: {path}")
    data = _read_toml(path)
    table = data.get("tool", {}).get("jaxdoctor")
    if table is None:
        if path.name != "pyproject.toml" and "tool" not in data:
            table = data  # a bare jaxdoctor.toml-style file
        else:
            table = {}
    if not isinstance(table, dict):
        raise UsageError(f"{path}: [tool.jaxdoctor] must be a table")
    return parse(table, path, dependencies=data.get("project", {}).get("dependencies", []))


def parse(table: dict[str, Any], path: Path, dependencies: list[str] | None = None) -> Settings:
    for key in table:
        if key not in KNOWN_KEYS:
            hint = difflib.get_close_matches(key, sorted(KNOWN_KEYS), n=1)
            suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise UsageError(
                f"{path}: unknown key {key!r} in [tool.jaxdoctor]{suggestion}; "
                f"known keys: {', '.join(sorted(KNOWN_KEYS))}"
            )
    s = Settings(source=path, root=path.parent.resolve())
    s.dependencies = [d for d in (dependencies or []) if isinstance(d, str)]
    if "select" in table:
        s.select = _str_list(path, "select", table["select"])
    s.ignore = _str_list(path, "ignore", table.get("ignore", []))
    s.extend_select = _str_list(path, "extend-select", table.get("extend-select", []))
    s.exclude = _str_list(path, "exclude", table.get("exclude", []))
    s.extend_exclude = _str_list(path, "extend-exclude", table.get("extend-exclude", []))
    pfi = table.get("per-file-ignores", {})
    if not isinstance(pfi, dict):
        raise UsageError(f"{path}: [tool.jaxdoctor] per-file-ignores must be a table of glob = [codes]")
    s.per_file_ignores = {g: _str_list(path, f"per-file-ignores.{g!r}", v) for g, v in pfi.items()}
    for key in _STR_KEYS:
        if key in table:
            value = table[key]
            if not isinstance(value, str) or not value.strip():
                raise UsageError(f"{path}: [tool.jaxdoctor] {key} must be a version string like \"0.4.30\"")
            s.target_versions[key.removeprefix("target-").removesuffix("-version")] = value.strip()
    trace = table.get("trace", [])
    if isinstance(trace, dict):
        trace = [trace]
    if not isinstance(trace, list) or not all(isinstance(t, dict) for t in trace):
        raise UsageError(f"{path}: [[tool.jaxdoctor.trace]] entries must be tables")
    s.trace = trace
    if "jobs" in table:
        if not isinstance(table["jobs"], int) or isinstance(table["jobs"], bool) or table["jobs"] < 1:
            raise UsageError(f"{path}: [tool.jaxdoctor] jobs must be a positive integer")
        s.jobs = table["jobs"]
    if "cache" in table:
        if not isinstance(table["cache"], bool):
            raise UsageError(f"{path}: [tool.jaxdoctor] cache must be true or false")
        s.cache = table["cache"]
    if "cache-dir" in table:
        if not isinstance(table["cache-dir"], str):
            raise UsageError(f"{path}: [tool.jaxdoctor] cache-dir must be a string")
        s.cache_dir = table["cache-dir"]
    return s
