"""A lint run over many files: discovery, per-file rule selection, worker processes."""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

from jaxdoctor.config import Settings
from jaxdoctor.findings import Finding
from jaxdoctor.static.discovery import Candidate, discover
from jaxdoctor.static.engine import FileResult, check_file, codes_for, sort_findings
from jaxdoctor.static.options import run_options

#: Below this many files, worker start-up costs more than it saves.
PARALLEL_THRESHOLD = 16


@dataclass
class LintRun:
    findings: list[Finding] = field(default_factory=list)
    files: int = 0  # files considered
    parsed: int = 0  # files that passed the gate and were parsed


def _work(args: tuple[Candidate, frozenset[str], dict[str, str]]) -> FileResult:
    candidate, codes, options = args
    return check_file(candidate, codes, options)


def lint_paths(
    paths: list[str],
    settings: Settings,
    codes: frozenset[str],
    per_file_ignores: dict[str, frozenset[str]],
    jobs: int | None = None,
) -> LintRun:
    candidates = discover(paths, settings.exclude + settings.extend_exclude, settings.root)
    options = run_options(settings)  # part of any per-file cache key, like `codes`
    work = [(c, codes_for(c.display, codes, per_file_ignores), options) for c in candidates]
    jobs = jobs or settings.jobs or os.cpu_count() or 1
    run = LintRun(files=len(work))
    if jobs > 1 and len(work) >= PARALLEL_THRESHOLD:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            results = list(pool.map(_work, work, chunksize=max(1, len(work) // (jobs * 8))))
    else:
        results = [_work(w) for w in work]
    for result in results:
        run.findings.extend(result.findings)
        run.parsed += result.parsed
    run.findings = sort_findings(run.findings)
    return run
