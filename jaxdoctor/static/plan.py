"""What a lint run checks, file by file: each file with the rules and options of its own
configuration (the nearest `[tool.jaxdoctor]` above it, see `jaxdoctor.config.Resolver`)."""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from jaxdoctor.config import Resolver, Settings, enabled_codes, per_file_ignores
from jaxdoctor.static.discovery import Candidate, discover
from jaxdoctor.static.options import run_options


@dataclass(frozen=True)
class FilePlan:
    candidate: Candidate
    codes: frozenset[str]
    options: Mapping[str, str] = field(default_factory=dict)
    settings: Settings | None = field(default=None, compare=False, repr=False)


def ignored_for(candidate: Candidate, root: Path, per_file: dict[str, frozenset[str]]) -> frozenset[str]:
    """The codes `per-file-ignores` turns off for one file; globs match the path relative to the
    configuration's directory, the displayed path or the file name."""
    if not per_file:
        return frozenset()
    absolute = Path(os.path.abspath(candidate.path))
    try:
        rel = absolute.relative_to(root).as_posix()
    except ValueError:
        rel = candidate.display
    names = (rel, candidate.display, candidate.path.name, absolute.as_posix())
    out: set[str] = set()
    for pattern, codes in per_file.items():
        if any(fnmatch.fnmatchcase(n, pattern) for n in names):
            out |= codes
    return frozenset(out)


class Planner:
    """Settings → (codes, options, per-file ignores), computed once per configuration."""

    def __init__(self, resolver: Resolver) -> None:
        self.resolver = resolver
        self._derived: dict[int, tuple[Settings, frozenset[str], dict[str, str], dict]] = {}

    def derived(self, settings: Settings) -> tuple[frozenset[str], dict[str, str], dict]:
        found = self._derived.get(id(settings))
        if found is None or found[0] is not settings:
            found = (settings, enabled_codes(settings), run_options(settings), per_file_ignores(settings))
            self._derived[id(settings)] = found
        return found[1], found[2], found[3]

    def plan(self, candidate: Candidate, *, revalidate: bool = False) -> FilePlan:
        settings = self.resolver.for_path(candidate.path, revalidate=revalidate)
        codes, options, per_file = self.derived(settings)
        codes = codes - ignored_for(candidate, settings.root, per_file)
        return FilePlan(candidate, frozenset(codes), options, settings)


def plan_files(paths: list[str], resolver: Resolver) -> list[FilePlan]:
    """Every file under `paths` that its own configuration does not exclude, with its rules."""
    planner = Planner(resolver)

    def exclude_for(directory: Path) -> tuple[list[str], Path]:
        s = resolver.for_path(directory)
        return s.exclude + s.extend_exclude, s.root

    candidates = discover(paths, [], Path.cwd(), exclude_for=exclude_for)
    return [planner.plan(c) for c in candidates]
