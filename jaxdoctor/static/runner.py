"""A lint run over many files: discovery, per-file rule selection, the cache, worker processes.

- Each file's enabled codes come from `per-file-ignores`; run options (target versions) reach
  rules and, like the codes, are part of the cache key.
- With a cache (`jaxdoctor.static.cache`), the main process reads and hashes each file and
  serves hits; only misses are linted. A result is stored only if the file still has the bytes
  that were hashed once it has been linted, so a file edited mid-run is never cached under the
  wrong content.
- Misses run in `jobs` worker processes (largest files first, so one big file doesn't finish
  last alone). A worker that dies (a crash in native code) never takes the run down: the files it
  may have been linting are retried one by one in fresh workers, and a file that kills its worker
  again is reported as JD001.
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Callable

from jaxdoctor.config import Settings
from jaxdoctor.findings import Finding
from jaxdoctor.static.discovery import Candidate, discover
from jaxdoctor.static.options import run_options
from jaxdoctor.source import SourceError, read_bytes

#: Below this many files to lint, worker start-up costs more than it saves.
PARALLEL_THRESHOLD = 16

#: progress(done, total): called in the main process as files finish.
Progress = Callable[[int, int], None]


class InternalError(Exception):
    """A bug in jaxdoctor (not in the linted code): the CLI reports it and exits with status 2."""


@dataclass
class LintRun:
    findings: list[Finding] = field(default_factory=list)
    files: int = 0  # files considered
    parsed: int = 0  # files that passed the gate and were parsed (now or in a cached run)
    cached: int = 0  # files served from the cache


@dataclass
class _Task:
    candidate: Candidate
    codes: frozenset[str]
    digest: str | None = None  # SHA-256 of the bytes hashed for the cache key
    key: str | None = None  # cache key, when cached
    size: int = 0


def _work(args: tuple[Candidate, frozenset[str], dict[str, str], str | None]):
    """In a worker (or inline): lint one file; say whether it still has the hashed bytes."""
    from jaxdoctor.static.engine import check_file

    candidate, codes, options, digest = args
    try:
        result = check_file(candidate, codes, options)
    except Exception as e:  # a bug in a rule or in the engine: say which file, keep the trace
        import traceback

        raise InternalError(
            f"internal error while linting {candidate.display}: {type(e).__name__}: {e}\n"
            + "".join(traceback.format_exception(e))
        ) from None
    unchanged = False
    if digest is not None:
        try:
            unchanged = hashlib.sha256(read_bytes(candidate.path)).hexdigest() == digest
        except SourceError:
            unchanged = False
    return result, unchanged


def _crashed(task: _Task):
    from jaxdoctor.static.engine import FileResult, parse_error

    if "JD001" not in task.codes:
        return FileResult(), False
    return FileResult([parse_error(task.candidate.display,
                                   "cannot parse: the parser crashed on this file (worker process died)")]), False


def _run_pool(tasks: list[_Task], options: dict[str, str], jobs: int, done: Callable) -> None:
    """Lint `tasks` in worker processes, calling done(task, (result, unchanged)) for each."""
    pending = {id(t): t for t in tasks}
    try:
        with ProcessPoolExecutor(max_workers=min(jobs, len(pending))) as pool:
            futures = {pool.submit(_work, (t.candidate, t.codes, options, t.digest)): t for t in tasks}
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
    # worker; one that kills it again is reported, the others are linted normally.
    for task in pending.values():
        try:
            with ProcessPoolExecutor(max_workers=1) as pool:
                outcome = pool.submit(_work, (task.candidate, task.codes, options, task.digest)).result()
        except BrokenProcessPool:
            outcome = _crashed(task)
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
    from jaxdoctor.static.engine import codes_for, sort_findings

    candidates = discover(paths, settings.exclude + settings.extend_exclude, settings.root)
    options = run_options(settings)  # part of any per-file cache key, like `codes`
    tasks = [_Task(c, codes_for(c.display, codes, per_file_ignores)) for c in candidates]
    jobs = jobs or settings.jobs or os.cpu_count() or 1
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
                task.key = cache.key(task.candidate.display, task.codes, task.digest, options)
                hit = cache.get(task.key)
                if hit is not None:
                    findings, parsed = hit
                    run.findings.extend(findings)
                    run.parsed += parsed
                    run.cached += 1
                    tick()
                    continue
        else:
            try:
                task.size = os.stat(task.candidate.path).st_size
            except OSError:
                task.size = 0
        todo.append(task)

    def done(task: _Task, outcome) -> None:
        result, unchanged = outcome
        run.findings.extend(result.findings)
        run.parsed += result.parsed
        if cache is not None and task.key is not None and unchanged:
            cache.put(task.key, result.findings, result.parsed)
        tick()

    if jobs > 1 and len(todo) >= PARALLEL_THRESHOLD:
        todo.sort(key=lambda t: -t.size)  # longest first: better balance across workers
        _run_pool(todo, options, jobs, done)
    else:
        for task in todo:
            done(task, _work((task.candidate, task.codes, options, task.digest)))
    run.findings = sort_findings(run.findings)
    return run
