"""Run options that rules may read (`FileContext.options`), derived once per run from `Settings`.

Options are plain `str → str` pairs so that they pickle to worker processes and can be part of
a cache key. Today they carry the target versions of jax, flax, equinox and optax (DESIGN §6):
`target-<package>-version` from config, else the lower bound the project pins in its
`[project] dependencies` (`jax==0.4.20` → 0.4.20, `jax>=0.4.30,<0.5` → 0.4.30). A package with
neither has no option; rules then judge against the newest release they know.
"""

from __future__ import annotations

import re

from jaxdoctor.config import Settings

PACKAGES = ("jax", "flax", "equinox", "optax")

_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*(.*)$")
_SPEC = re.compile(r"^\s*(===|==|~=|>=|>|<=|<|!=)\s*([0-9][0-9A-Za-z.*+!-]*)\s*$")


def version_key(version: str) -> tuple[int, ...]:
    """`"0.4.30"` → (0, 4, 30); pre-release and local parts are ignored; `"0.4"` → (0, 4, 0)."""
    parts: list[int] = []
    for piece in version.strip().lstrip("vV").split("."):
        m = re.match(r"\d+", piece)
        if not m:
            break
        parts.append(int(m.group()))
        if m.end() != len(piece):
            break  # "30rc1": keep 30, stop
    while len(parts) < 3:
        parts.append(0)
    return tuple(parts)


def pinned_version(requirement: str) -> tuple[str, str] | None:
    """(package, lower bound) for a PEP 508 requirement that bounds its version from below."""
    spec = requirement.split(";", 1)[0]
    m = _REQUIREMENT.match(spec)
    if m is None:
        return None
    name = m.group(1).lower().replace("_", "-")
    lower: str | None = None
    for clause in m.group(2).split(","):
        sm = _SPEC.match(clause)
        if sm is None:
            continue
        op, version = sm.groups()
        if op in ("==", "===", "~=", ">=", ">") and "*" not in version:
            if lower is None or version_key(version) > version_key(lower):
                lower = version
        elif op == "==" and version.endswith(".*"):
            lower = version[:-2]
    return (name, lower) if lower is not None else None


def target_versions(settings: Settings) -> dict[str, str]:
    """package → target version, from config or the project's pinned dependencies."""
    out: dict[str, str] = {}
    for requirement in settings.dependencies:
        found = pinned_version(requirement)
        if found is not None and found[0] in PACKAGES:
            out[found[0]] = found[1]
    for package, version in settings.target_versions.items():
        out[package] = version  # explicit config wins
    return out


def run_options(settings: Settings) -> dict[str, str]:
    """The options every rule of this run can read as `ctx.options`."""
    return {f"target-{p}-version": v for p, v in sorted(target_versions(settings).items())}
