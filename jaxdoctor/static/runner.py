"""A run over many files, for `lint` and for `--fix`/`--diff`: discovery, per-file rule
selection, the file's format, the cache, worker processes.

- Each file is planned with the codes and options of its own configuration (`static.plan`);
  the project around it adds options of its own (`static.project`). Codes and options reach the
  rules and are part of the cache key.
- The runner chooses how to read each file: a notebook's code cells (`static.notebook`) or a
  Python file (`static.engine`, `static.fixes`).
- With a cache (`jaxdoctor.static.cache`, lint only), the main process reads and hashes each
  file and serves hits; only misses are linted. A result is stored only if the file still has
  the bytes that were hashed once it has been linted, so a file edited mid-run is never cached
  under the wrong content.
- The work runs in `jobs` worker processes (largest files first, so one big file doesn't finish
  last alone). A worker that dies (a crash in native code) never takes the run down: the files it
  may have been working on are retried one by one in fresh workers, and a file that kills its
  worker again is reported as JD001.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from jaxdoctor.config import Settings
from jaxdoctor.findings import Finding
from jaxdoctor.source import SourceError, read_bytes
from jaxdoctor.static.discovery import Candidate, discover
from jaxdoctor.notebook import NotebookError, parse_notebook
from jaxdoctor.static.engine import (
    FileResult,
    check_file,
    codes_for,
    lint_source,
    parse_error,
    sort_findings,
    static_rules,
)
from jaxdoctor.static.fixes import FileFix, FixResult, fix_file, fix_source
from jaxdoctor.static.notebook import check_notebook, fix_notebook, fix_notebook_text, lint_notebook_text
from jaxdoctor.static.options import run_options
from jaxdoctor.static.plan import FilePlan
from jaxdoctor.static.project import file_options

#: Below this many files, worker start-up costs more than it saves.
PARALLEL_THRESHOLD = 16

#: progress(done, total): called in the main process as files finish.
Progress = Callable[[int, int], None]

CRASHED = "cannot parse: the parser crashed on this file (worker process died)"


class InternalError(Exception):
    """A bug in jaxdoctor (not in the checked code): the CLI reports it and exits with status 2."""


@dataclass
class LintRun:
    findings: list[Finding] = field(default_factory=list)
    files: int = 0  # files considered
    parsed: int = 0  # files that passed the gate and were parsed (now or in a cached run)
    cached: int = 0  # files served from the cache


@dataclass
class FixRun:
    files: list[FileFix] = field(default_factory=list)  # in discovery order

    @property
    def findings(self) -> list[Finding]:
        return sort_findings(f for ff in self.files for f in ff.findings)

    @property
    def applied(self) -> int:
        return sum(ff.applied for ff in self.files)

    @property
    def changed(self) -> list[FileFix]:
        return [ff for ff in self.files if ff.changed]


@dataclass
class _Task:
    candidate: Candidate
    codes: frozenset[str]
    #: the plan's options plus what the project around the file says (`static.project`)
    options: dict[str, str] = field(default_factory=dict)
    index: int = 0  # place in discovery order
    digest: str | None = None  # SHA-256 of the bytes hashed for the cache key
    key: str | None = None  # cache key, when cached
    size: int = 0


def _tasks(plans: list[FilePlan]) -> list[_Task]:
    return [_Task(p.candidate, p.codes, {**p.options, **file_options(p.candidate.path)}, i)
            for i, p in enumerate(plans)]


def plan_paths(paths: list[str], settings: Settings, codes: frozenset[str],
               per_file_ignores: dict[str, frozenset[str]]) -> list[FilePlan]:
    """One configuration for every file under `paths` (see `static.plan` for one per file)."""
    candidates = discover(paths, settings.exclude + settings.extend_exclude, settings.root)
    options = run_options(settings)
    return [FilePlan(c, codes_for(c.display, codes, per_file_ignores), options) for c in candidates]


def _is_notebook(candidate: Candidate) -> bool:
    return candidate.path.suffix == ".ipynb"


def _size(candidate: Candidate) -> int:
    try:
        return os.stat(candidate.path).st_size
    except OSError:
        return 0


def _guarded(candidate: Candidate, work: Callable[[], Any]) -> Any:
    """Run `work`; a bug in a rule or in the engine becomes an `InternalError` naming the file."""
    try:
        return work()
    except Exception as e:  # keep the trace: it is for a bug report
        import traceback

        raise InternalError(
            f"internal error while linting {candidate.display}: {type(e).__name__}: {e}\n"
            + "".join(traceback.format_exception(e))
        ) from None


def _lint_one(args: tuple[Candidate, frozenset[str], dict[str, str], str | None]):
    """In a worker (or inline): lint one file; say whether it still has the hashed bytes."""
    candidate, codes, options, digest = args
    if _is_notebook(candidate):
        result = _guarded(candidate, lambda: check_notebook(candidate, codes, options))
    else:
        result = _guarded(candidate, lambda: check_file(candidate, codes, options))
    unchanged = False
    if digest is not None:
        try:
            unchanged = hashlib.sha256(read_bytes(candidate.path)).hexdigest() == digest
        except SourceError:
            unchanged = False
    return result, unchanged


def _fix_one(args: tuple[Candidate, frozenset[str], dict[str, str], bool, bool]) -> FileFix:
    """In a worker (or inline): fix one file (`write=False`: only compute the fixed text)."""
    candidate, codes, options, unsafe, write = args
    fix = fix_notebook if _is_notebook(candidate) else fix_file
    return _guarded(candidate, lambda: fix(candidate, codes, unsafe=unsafe, write=write, options=options))


def _crash_findings(task: _Task) -> list[Finding]:
    return [parse_error(task.candidate.display, CRASHED)] if "JD001" in task.codes else []


def _run(work: Callable, jobs: list[tuple[_Task, tuple]], workers: int, done: Callable,
         crashed: Callable[[_Task], Any]) -> None:
    """`work(args)` for each (task, args), inline or in `workers` processes; `done(task, outcome)`
    as each finishes. A task whose worker dies twice ends as `crashed(task)`."""
    if workers <= 1 or len(jobs) < PARALLEL_THRESHOLD:
        for task, args in jobs:
            done(task, work(args))
        return
    jobs = sorted(jobs, key=lambda j: -j[0].size)  # longest first: better balance across workers
    pending = {id(task): (task, args) for task, args in jobs}
    try:
        with ProcessPoolExecutor(max_workers=min(workers, len(pending))) as pool:
            futures = {pool.submit(work, args): task for task, args in jobs}
            remaining = set(futures)
            while remaining:
                finished, remaining = wait(remaining, return_when=FIRST_COMPLETED)
                for fut in finished:
                    task = futures[fut]
                    outcome = fut.result()  # BrokenProcessPool if a worker died
                    del pending[id(task)]
                    done(task, outcome)
    except BrokenProcessPool:
        pass
    # A worker died: any file that had not finished may be the culprit. Retry each in its own
    # worker; one that kills it again is reported, the others are done normally.
    for task, args in pending.values():
        try:
            with ProcessPoolExecutor(max_workers=1) as pool:
                outcome = pool.submit(work, args).result()
        except BrokenProcessPool:
            outcome = crashed(task)
        done(task, outcome)


def lint_paths(
    paths: list[str],
    settings: Settings,
    codes: frozenset[str],
    per_file_ignores: dict[str, frozenset[str]],
    jobs: int | None = None,
    *,
    cache: "Cache | None" = None,  # noqa: F821 - jaxdoctor.static.cache.Cache
    progress: Progress | None = None,
) -> LintRun:
    """Lint `paths` with one configuration for all of them (see `lint_files` for per-file)."""
    return lint_files(plan_paths(paths, settings, codes, per_file_ignores), jobs or settings.jobs,
                      cache=cache, progress=progress)


def lint_files(
    plans: list[FilePlan],
    jobs: int | None = None,
    *,
    cache: "Cache | None" = None,  # noqa: F821 - jaxdoctor.static.cache.Cache
    progress: Progress | None = None,
) -> LintRun:
    """Lint each planned file with its own codes and options (part of its cache key)."""
    tasks = _tasks(plans)
    workers = jobs or os.cpu_count() or 1
    run = LintRun(files=len(tasks))
    total, finished = len(tasks), 0

    def tick() -> None:
        nonlocal finished
        finished += 1
        if progress is not None:
            progress(finished, total)

    todo: list[_Task] = []
    for task in tasks:
        if cache is not None:
            try:
                data = read_bytes(task.candidate.path)
            except SourceError:
                data = None  # check_file reports it as JD001; never cached
            if data is not None:
                task.size = len(data)
                task.digest = hashlib.sha256(data).hexdigest()
                task.key = cache.key(task.candidate.display, task.codes, task.digest, task.options)
                hit = cache.get(task.key)
                if hit is not None:
                    findings, parsed = hit
                    run.findings.extend(findings)
                    run.parsed += parsed
                    run.cached += 1
                    tick()
                    continue
        else:
            task.size = _size(task.candidate)
        todo.append(task)

    def done(task: _Task, outcome) -> None:
        result, unchanged = outcome
        run.findings.extend(result.findings)
        run.parsed += result.parsed
        if cache is not None and task.key is not None and unchanged:
            cache.put(task.key, result.findings, result.parsed)
        tick()

    _run(_lint_one, [(t, (t.candidate, t.codes, t.options, t.digest)) for t in todo], workers, done,
         lambda task: (FileResult(_crash_findings(task)), False))
    run.findings = sort_findings(run.findings)
    return run


def fix_paths(paths: list[str], settings: Settings, codes: frozenset[str],
              per_file_ignores: dict[str, frozenset[str]], *, unsafe: bool = False,
              write: bool = True, jobs: int | None = None) -> FixRun:
    """`--fix` (write=True) or `--diff` (write=False) over files and directories, with one
    configuration for all of them (see `fix_files` for per-file)."""
    return fix_files(plan_paths(paths, settings, codes, per_file_ignores), unsafe=unsafe, write=write,
                     jobs=jobs or settings.jobs)


def fix_files(plans: list[FilePlan], *, unsafe: bool = False, write: bool = True,
              jobs: int | None = None) -> FixRun:
    """Fix each planned file with its own codes and options, through the same worker pool
    (and the same recovery from a crashed worker) as lint."""
    tasks = _tasks(plans)
    workers = jobs or os.cpu_count() or 1
    for task in tasks:
        task.size = _size(task.candidate)
    files: list[FileFix | None] = [None] * len(tasks)

    def done(task: _Task, outcome: FileFix) -> None:
        files[task.index] = outcome

    _run(_fix_one, [(t, (t.candidate, t.codes, t.options, unsafe, write)) for t in tasks], workers, done,
         lambda task: FileFix(task.candidate.display, findings=_crash_findings(task)))
    return FixRun([ff for ff in files if ff is not None])


# ---------------------------------------------------------------- text not on disk


def check_text(text: str, display: str, codes: frozenset[str],
               options: Mapping[str, str] | None = None, *, notebook: bool = False) -> FileResult:
    """Lint text that is not (or not yet) on disk: stdin, an editor's buffer. `notebook`: the
    text is a notebook's JSON."""
    if notebook:
        result = lint_notebook_text(text, display, static_rules(codes), codes, options)
    else:
        result = lint_source(text, display, static_rules(codes), options)
    result.findings = [f for f in result.findings if f.code in codes]
    return result


def fix_text(text: str, display: str, codes: frozenset[str], *, unsafe: bool = False,
             options: Mapping[str, str] | None = None, notebook: bool = False) -> FixResult:
    """`fix_source` for text that is not on disk (stdin, an editor's buffer); `notebook`: the
    text is a notebook's JSON (only the changed cells' sources change)."""
    if notebook:
        try:
            parse_notebook(text)
        except NotebookError:
            return FixResult(text, 0, check_text(text, display, codes, options, notebook=True).findings)
        counts: Counter = Counter()
        new, applied, findings = fix_notebook_text(text, display, static_rules(codes), codes,
                                                   unsafe=unsafe, options=options, counts=counts)
        return FixResult(new, applied, [f for f in findings if f.code in codes], 0, counts)
    result = fix_source(text, display, static_rules(codes), unsafe=unsafe, options=options)
    result.findings = [f for f in result.findings if f.code in codes]
    return result
