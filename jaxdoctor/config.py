"""Configuration: `[tool.jaxdoctor]` in `pyproject.toml`, or a `jaxdoctor.toml` (DESIGN §6, §10).

Per file, as ruff does: each file is checked with the nearest configuration at or above its own
directory — a `jaxdoctor.toml` (top-level keys, or a `[tool.jaxdoctor]` table), else a
`pyproject.toml` *that has a `[tool.jaxdoctor]` table* (a `jaxdoctor.toml` wins in the same
directory). So `lint a b` and `lint b a` agree, and the subprojects of a monorepo keep their own
rules. `--config FILE` applies one file to every path; `--isolated` ignores configuration.

- `extend = "../pyproject.toml"` (relative to the file that says it) starts from another
  configuration: the extending file's keys replace the base's, `extend-select`/`extend-exclude`
  add to them, `per-file-ignores` merge, and rule selections apply in order (base, then this
  file, then the command line), so a `select` later in the chain starts the selection anew.
- Target versions (`target-jax-version`, ...) default to the lower bounds pinned in the
  `[project] dependencies` of the nearest `pyproject.toml` that has a `[project]` table, whether
  or not it configures jaxdoctor. A version that is not a version (`"banana"`) is an error.

Unknown keys, badly typed values and malformed versions are a `UsageError`: one line, exit 2.
"""

from __future__ import annotations

import difflib
import os
import re
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from jaxdoctor.errors import UsageError

_LIST_KEYS = ("select", "ignore", "extend-select", "exclude", "extend-exclude")
_STR_KEYS = ("target-jax-version", "target-flax-version", "target-equinox-version",
             "target-optax-version")
#: the sharding doctor's defaults for `jaxdoctor trace` (each entry, or the CLI, overrides them)
SHARDING_KEYS = ("mesh", "device-memory", "replicated-threshold")
KNOWN_KEYS = frozenset(
    _LIST_KEYS + _STR_KEYS + SHARDING_KEYS + ("per-file-ignores", "trace", "jobs", "cache", "cache-dir", "extend")
)
#: configuration file names, in order of precedence within one directory
CONFIG_FILES = ("jaxdoctor.toml", "pyproject.toml")

#: a release version: 0.4.30, 0.4, 1.0.0rc1, 0.5.0.post1, 0.6.dev20250101, v0.4.30
VERSION_RE = re.compile(r"^v?\d+(\.\d+){0,3}((a|b|rc)\d+)?(\.post\d+)?(\.dev\d+)?$")
_MAX_EXTEND = 16


@dataclass(frozen=True)
class Selection:
    """One layer of rule selection (ruff's model): `select` (None: keep what came before),
    then `extend-select` added, then `ignore` removed."""

    select: tuple[str, ...] | None = None
    ignore: tuple[str, ...] = ()
    extend_select: tuple[str, ...] = ()
    where: str = "the command line"


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
    #: `mesh`, `device-memory`, `replicated-threshold` as written (the trace pass parses them)
    sharding: dict[str, Any] = field(default_factory=dict)
    jobs: int | None = None
    cache: bool = True
    cache_dir: str | None = None
    #: the project's declared dependencies (to default target versions to what it pins)
    dependencies: list[str] = field(default_factory=list)
    #: the configuration file the settings came from, and its directory (globs are relative to it)
    source: Path | None = None
    root: Path = field(default_factory=Path.cwd)
    #: rule selection layers, applied in order; empty means "select/ignore/extend_select above"
    selections: list[Selection] = field(default_factory=list)
    #: the files read to build these settings (the extend chain, the project's pyproject.toml)
    files: list[Path] = field(default_factory=list)
    #: the pyproject.toml whose `[project] dependencies` gave the pins, if any
    project: Path | None = None

    def layers(self) -> list[Selection]:
        if self.selections:
            return list(self.selections)
        where = str(self.source) if self.source else "the defaults"
        return [Selection(tuple(self.select) if self.select is not None else None,
                          tuple(self.ignore), tuple(self.extend_select), where)]


# ----------------------------------------------------------------------------- finding files


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e.strerror or e}") from None
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"{path}: invalid TOML: {e}") from None


def _mentions(path: Path, word: str) -> bool:
    try:
        return path.is_file() and word in path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False


def _config_in(directory: Path) -> Path | None:
    """The configuration file of one directory, if it has one."""
    own = directory / "jaxdoctor.toml"
    if own.is_file():
        return own
    candidate = directory / "pyproject.toml"
    # a broken pyproject.toml that configures jaxdoctor is an error, not "no config"
    if _mentions(candidate, "tool.jaxdoctor") and "jaxdoctor" in _read_toml(candidate).get("tool", {}):
        return candidate
    return None


def _directory(start: Path) -> Path:
    start = Path(os.path.abspath(start))
    if start.is_file() or not start.exists():
        start = start.parent
    return start


def find_config(start: Path) -> Path | None:
    """The nearest configuration file at or above `start` (a file or a directory)."""
    d = _directory(start)
    for directory in (d, *d.parents):
        found = _config_in(directory)
        if found is not None:
            return found
    return None


def find_pyproject(start: Path) -> Path | None:
    """The nearest pyproject.toml at or above `start` that has a [tool.jaxdoctor] table."""
    d = _directory(start)
    for directory in (d, *d.parents):
        candidate = directory / "pyproject.toml"
        if _mentions(candidate, "tool.jaxdoctor") and "jaxdoctor" in _read_toml(candidate).get("tool", {}):
            return candidate
    return None


def find_project(start: Path) -> Path | None:
    """The nearest pyproject.toml at or above `start` that has a [project] table (for its pins)."""
    d = _directory(start)
    for directory in (d, *d.parents):
        candidate = directory / "pyproject.toml"
        if _mentions(candidate, "[project]"):
            try:
                data = _read_toml(candidate)
            except UsageError:
                continue  # a broken pyproject.toml that does not configure us is not our error
            if isinstance(data.get("project"), dict):
                return candidate
    return None


def _dependencies(pyproject: Path | None) -> list[str]:
    if pyproject is None:
        return []
    try:
        deps = _read_toml(pyproject).get("project", {}).get("dependencies", [])
    except UsageError:
        return []
    return [d for d in deps if isinstance(d, str)] if isinstance(deps, list) else []


# ----------------------------------------------------------------------------- loading


def load(config: Path | None = None, start: Path | None = None, *, isolated: bool = False) -> Settings:
    """Settings from `config`, else from the nearest configuration above `start`."""
    start = start or Path.cwd()
    project = None if isolated else find_project(start)
    if isolated:
        return Settings()
    path = config if config is not None else find_config(start)
    if path is None:
        s = Settings()
    else:
        s = load_file(path)
    if project is not None and not s.dependencies:
        s.dependencies = _dependencies(project)
        s.project = project
        s.files.append(project)
    return s


def load_file(path: Path, _chain: tuple[Path, ...] = ()) -> Settings:
    """The settings of one configuration file, with its `extend` chain."""
    if not path.is_file():
        raise UsageError(f"config file not found: {path}")
    resolved = path.resolve()
    if resolved in _chain:
        raise UsageError(f"{path}: `extend` forms a cycle: {' -> '.join(str(p) for p in (*_chain, resolved))}")
    if len(_chain) > _MAX_EXTEND:
        raise UsageError(f"{path}: `extend` chain is longer than {_MAX_EXTEND} files")
    data = _read_toml(path)
    table = data.get("tool", {}).get("jaxdoctor") if isinstance(data.get("tool"), dict) else None
    if table is None:
        if path.name != "pyproject.toml" and "tool" not in data:
            table = data  # jaxdoctor.toml: top-level keys
        else:
            table = {}
    if not isinstance(table, dict):
        raise UsageError(f"{path}: [tool.jaxdoctor] must be a table")
    project = data.get("project") if isinstance(data.get("project"), dict) else {}
    own = parse(table, path, dependencies=project.get("dependencies", []))
    own.project = path if project and own.dependencies else None
    if "extend" not in table:
        own.files = [path]
        return own
    target = table["extend"]
    if not isinstance(target, str) or not target.strip():
        raise UsageError(f"{path}: [tool.jaxdoctor] extend must be the path of another configuration file")
    base_path = Path(os.path.expanduser(target))
    if not base_path.is_absolute():
        base_path = path.parent / base_path
    if not base_path.is_file():
        raise UsageError(f"{path}: extend = {target!r}: no such file ({base_path})")
    base = load_file(base_path, (*_chain, resolved))
    return _merge(base, own, table)


def _anchor(patterns: Iterable[str], base_root: Path, root: Path) -> list[str]:
    """Globs of an extended file, made to mean the same from the extending file's directory."""
    out = []
    for p in patterns:
        if "/" not in p.rstrip("/") or os.path.isabs(p) or base_root == root:
            out.append(p)
        else:
            out.append((base_root / p).as_posix())
    return out


def _merge(base: Settings, own: Settings, table: dict[str, Any]) -> Settings:
    out = replace(own)
    out.selections = base.layers() + own.layers()
    out.select, out.ignore, out.extend_select = own.select, own.ignore, own.extend_select
    if "exclude" not in table:
        out.exclude = _anchor(base.exclude, base.root, own.root)
    out.extend_exclude = _anchor(base.extend_exclude, base.root, own.root) + own.extend_exclude
    pfi = {g: list(v) for g, v in zip(_anchor(base.per_file_ignores, base.root, own.root),
                                         base.per_file_ignores.values())}
    pfi.update(own.per_file_ignores)
    out.per_file_ignores = pfi
    out.target_versions = {**base.target_versions, **own.target_versions}
    if "trace" not in table:
        out.trace = base.trace
    out.sharding = {**base.sharding, **own.sharding}
    if "jobs" not in table:
        out.jobs = base.jobs
    if "cache" not in table:
        out.cache = base.cache
    if "cache-dir" not in table:
        out.cache_dir = base.cache_dir
    if not own.dependencies:
        out.dependencies, out.project = base.dependencies, base.project
    out.files = [*base.files, *(f for f in [own.source] if f is not None)]
    return out


def _str_list(path: Path, key: str, value: Any) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise UsageError(f"{path}: [tool.jaxdoctor] {key} must be a list of strings, got {value!r}")
    return list(value)


def check_version(value: Any, what: str) -> str:
    """A target version, validated: `"0.4.30"` → `"0.4.30"`; anything else is a `UsageError`."""
    if not isinstance(value, str) or not VERSION_RE.match(value.strip()):
        raise UsageError(f"{what} must be a version like \"0.4.30\", got {value!r}")
    return value.strip().lstrip("v")


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
            version = check_version(table[key], f"{path}: [tool.jaxdoctor] {key}")
            s.target_versions[key.removeprefix("target-").removesuffix("-version")] = version
    trace = table.get("trace", [])
    if isinstance(trace, dict):
        trace = [trace]
    if not isinstance(trace, list) or not all(isinstance(t, dict) for t in trace):
        raise UsageError(f"{path}: [[tool.jaxdoctor.trace]] entries must be tables")
    s.trace = trace
    for key in SHARDING_KEYS:
        if key in table:
            value = table[key]
            if not isinstance(value, (str, int)) or isinstance(value, bool) or (key == "mesh" and not isinstance(value, str)):
                kind = "a string such as \"data=4,model=2\"" if key == "mesh" else "a size such as \"16GiB\""
                raise UsageError(f"{path}: [tool.jaxdoctor] {key} must be {kind}, got {value!r}")
            s.sharding[key] = value
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


# ----------------------------------------------------------------------------- the command line


@dataclass(frozen=True)
class Overrides:
    """What the command line says on top of every file's configuration."""

    select: tuple[str, ...] | None = None
    ignore: tuple[str, ...] = ()
    extend_select: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    target_versions: tuple[tuple[str, str], ...] = ()

    def apply(self, settings: Settings) -> Settings:
        out = replace(settings)
        out.selections = settings.layers()
        if self.select is not None or self.ignore or self.extend_select:
            out.selections.append(Selection(self.select, self.ignore, self.extend_select))
        out.exclude = settings.exclude + list(self.exclude)
        out.target_versions = {**settings.target_versions, **dict(self.target_versions)}
        return out


def enabled_codes(settings: Settings) -> frozenset[str]:
    """The enabled rule codes: ruff's layered selection over every rule's default."""
    from jaxdoctor import registry

    rules = registry.all_rules()
    codes = {c for c, r in rules.items() if r.default_enabled}
    for layer in settings.layers():
        if layer.select is not None:
            codes = registry.expand(layer.select)
        codes |= registry.expand(layer.extend_select)
        codes -= registry.expand(layer.ignore)
    return frozenset(codes)


def per_file_ignores(settings: Settings) -> dict[str, frozenset[str]]:
    from jaxdoctor import registry

    return {
        glob: frozenset(registry.expand(selectors, what=f"per-file-ignores code for {glob!r}"))
        for glob, selectors in settings.per_file_ignores.items()
    }


# ----------------------------------------------------------------------------- per directory


class Resolver:
    """Settings for any path: the nearest configuration above it, with the command line's
    overrides, cached per directory. `revalidate=True` (the language server) notices an edited,
    created or removed configuration file and reloads."""

    def __init__(self, config: Path | None = None, *, isolated: bool = False,
                 overrides: Overrides | None = None) -> None:
        self.config = config
        self.isolated = isolated
        self.overrides = overrides or Overrides()
        self._by_dir: dict[Path, tuple[Settings, tuple]] = {}
        if config is not None and not config.is_file():
            raise UsageError(f"config file not found: {config}")

    def clear(self) -> None:
        self._by_dir.clear()

    def for_path(self, path: Path, *, revalidate: bool = False) -> Settings:
        directory = _directory(path)
        cached = self._by_dir.get(directory)
        if cached is not None and (not revalidate or cached[1] == self._fingerprint(directory, cached[0])):
            return cached[0]
        settings = self.overrides.apply(load(self.config, directory, isolated=self.isolated))
        self._by_dir[directory] = (settings, self._fingerprint(directory, settings))
        return settings

    def _fingerprint(self, directory: Path, settings: Settings) -> tuple:
        """Stats of every file read and of every directory between `directory` and the files
        found (a configuration created below the one in use changes a directory's mtime)."""
        stats = []
        paths: list[Path] = list(settings.files)
        top = min((p.parent for p in settings.files), key=lambda p: len(p.parts), default=None)
        for d in (directory, *directory.parents):
            paths.append(d)
            if top is not None and d == top:
                break
        for p in paths:
            try:
                st = os.stat(p)
                stats.append((str(p), st.st_mtime_ns, st.st_size))
            except OSError:
                stats.append((str(p), None, None))
        return tuple(stats)
