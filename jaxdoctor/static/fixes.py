"""Applying fixes: text edits, the fix loop over one file, and `--fix` / `--diff` over many.

`apply_edits` is the one primitive (notebooks reuse it cell by cell). `fix_source` runs the lint,
applies the chosen non-overlapping fixes, re-lints and repeats (ruff's loop) until nothing is
left to fix or `MAX_ROUNDS` is reached; a round whose result does not re-parse is undone fix by
fix. `fix_file` writes atomically (a temporary file in the same directory, then `os.replace`),
keeping the original's permissions, encoding, BOM and newlines.
"""

from __future__ import annotations

import codecs
import difflib
import io
import itertools
import os
import re
import tokenize
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import libcst as cst

from jaxdoctor.findings import Applicability, Edit, Finding, Fix
from jaxdoctor.static.discovery import Candidate
from jaxdoctor.static.engine import lint_source, sort_findings, static_rules
from jaxdoctor.static.rule import LintRule
from jaxdoctor.static.source import SourceError, decode, read_bytes, write_atomic

#: A file is re-linted and fixed at most this many times (overlapping fixes need more rounds).
MAX_ROUNDS = 10

_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")


class OverlappingEdits(ValueError):
    """Two edits touch the same text: apply one, re-lint, then the other."""


def _line_starts(text: str) -> list[int]:
    """Offset of the start of each 1-based line (index 0 unused), splitting like libcst."""
    starts = [0, 0]
    for m in _LINE.finditer(text):
        if m.end() > m.start() and m.group().endswith(("\n", "\r")):
            starts.append(m.end())
    return starts


def _offset(starts: list[int], text: str, line: int, column: int) -> int:
    if line < 1:
        raise ValueError(f"edit position line {line} is before the start of the text")
    if line >= len(starts):  # one past the last line: only column 1 (end of text) is valid
        if line == len(starts) and column == 1:
            return len(text)
        raise ValueError(f"edit position line {line} is past the end of the text")
    offset = starts[line] + column - 1
    end_of_line = starts[line + 1] if line + 1 < len(starts) else len(text)
    if column < 1 or offset > end_of_line:
        raise ValueError(f"edit position {line}:{column} is outside its line")
    return offset


def apply_edits(text: str, edits: Iterable[Edit]) -> str:
    """Apply non-overlapping edits (1-based line/column, end exclusive) to `text`.

    Raises `OverlappingEdits` when two edits overlap (two insertions at one point included),
    `ValueError` for a position outside the text.
    """
    starts = _line_starts(text)
    spans = []
    for e in edits:
        begin = _offset(starts, text, e.line, e.column)
        end = _offset(starts, text, e.end_line, e.end_column)
        if end < begin:
            raise ValueError(f"edit ends before it starts: {e}")
        spans.append((begin, end, e.content))
    spans.sort(key=lambda s: (s[0], s[1]))
    for (b1, e1, _), (b2, e2, _) in itertools.pairwise(spans):
        if b2 < e1 or (b2 == b1 and e1 == b1 and e2 == b2):
            raise OverlappingEdits("overlapping edits")
    out = []
    pos = 0
    for begin, end, content in spans:
        out.append(text[pos:begin])
        out.append(content)
        pos = end
    out.append(text[pos:])
    return "".join(out)


def _span(fix: Fix) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    return [((e.line, e.column), (e.end_line, e.end_column)) for e in fix.edits]


def _overlaps(a: Fix, b: Fix) -> bool:
    for s1, e1 in _span(a):
        for s2, e2 in _span(b):
            if s1 < e2 and s2 < e1:
                return True
            if s1 == s2:  # two insertions (or starts) at one point
                return True
    return False


def applicable(finding: Finding, unsafe: bool) -> bool:
    fix = finding.fix
    return fix is not None and bool(fix.edits) and (
        fix.applicability is Applicability.SAFE or unsafe
    )


def choose_fixes(findings: Iterable[Finding], unsafe: bool) -> list[Fix]:
    """The fixes to apply in one round: applicable, in source order, none overlapping another."""
    chosen: list[Fix] = []
    for f in sort_findings(findings):
        if not applicable(f, unsafe):
            continue
        fix = f.fix
        assert fix is not None
        if any(_overlaps(fix, other) for other in chosen):
            continue  # applied in a later round, after a re-lint
        chosen.append(fix)
    return chosen


def parses(text: str) -> bool:
    try:
        cst.parse_module(text)
    except Exception:  # noqa: BLE001 - libcst raises several error types on bad input
        return False
    return True


@dataclass
class FixResult:
    source: str  # the fixed text (== the input when nothing was fixed)
    applied: int = 0  # fixes applied
    findings: list[Finding] = field(default_factory=list)  # what remains after fixing
    rounds: int = 0
    fixed_codes: Counter = field(default_factory=Counter)  # rule code → fixes applied


def fix_source(source: str, path: str, rules: list[type[LintRule]], *, unsafe: bool = False,
               max_rounds: int = MAX_ROUNDS, options: Mapping[str, str] | None = None) -> FixResult:
    """Lint, apply fixes, re-lint; repeat until a fixed point. Never returns text that does not
    parse with libcst (a fix that breaks the file is dropped)."""
    text = source
    applied = 0
    fixed: Counter = Counter()
    rejected: set[tuple] = set()
    rounds = 0
    findings = lint_source(text, path, rules, options).findings
    while rounds < max_rounds:
        code_of = {id(f.fix): f.code for f in findings if f.fix is not None}
        fixes = [
            fx for fx in choose_fixes(findings, unsafe)
            if (fx.title, fx.edits) not in rejected
        ]
        if not fixes:
            break
        rounds += 1
        candidate = _apply_fixes(text, fixes)
        if candidate is None or not parses(candidate):
            # find the culprits one by one, keep the rest
            good = []
            for fx in fixes:
                trial = _apply_fixes(text, good + [fx])
                if trial is not None and parses(trial):
                    good.append(fx)
                else:
                    rejected.add((fx.title, fx.edits))
            if not good:
                continue
            candidate = _apply_fixes(text, good)
            fixes = good
        assert candidate is not None
        if candidate == text:
            break
        applied += len(fixes)
        fixed.update(code_of.get(id(fx), "?") for fx in fixes)
        text = candidate
        findings = lint_source(text, path, rules, options).findings
    return FixResult(text, applied, findings, rounds, fixed)


def fix_text(text: str, display: str, codes: frozenset[str], *, unsafe: bool = False,
             options: Mapping[str, str] | None = None, notebook: bool = False) -> FixResult:
    """`fix_source` for text that is not on disk (stdin, an editor's buffer); `notebook`: the
    text is a notebook's JSON (only the changed cells' sources change)."""
    if notebook:
        from jaxdoctor.static.notebook import NotebookError, fix_notebook_text, parse_notebook

        try:
            parse_notebook(text)
        except NotebookError:
            from jaxdoctor.static.engine import check_text

            return FixResult(text, 0, check_text(text, display, codes, options, notebook=True).findings)
        counts: Counter = Counter()
        new, applied, findings = fix_notebook_text(text, display, static_rules(codes), codes,
                                                   unsafe=unsafe, options=options, counts=counts)
        return FixResult(new, applied, [f for f in findings if f.code in codes], 0, counts)
    result = fix_source(text, display, static_rules(codes), unsafe=unsafe, options=options)
    result.findings = [f for f in result.findings if f.code in codes]
    return result


def _apply_fixes(text: str, fixes: list[Fix]) -> str | None:
    try:
        return apply_edits(text, [e for fx in fixes for e in fx.edits])
    except ValueError:
        return None


# ----------------------------------------------------------------------------- files


@dataclass
class FileFix:
    display: str
    original: str | None = None  # decoded text, None when the file could not be read
    fixed: str | None = None
    applied: int = 0
    findings: list[Finding] = field(default_factory=list)
    written: bool = False
    fixed_codes: Counter = field(default_factory=Counter)  # rule code → fixes applied

    @property
    def changed(self) -> bool:
        return self.original is not None and self.fixed is not None and self.fixed != self.original

    def diff(self) -> str:
        if not self.changed:
            return ""
        assert self.original is not None and self.fixed is not None
        return "".join(
            difflib.unified_diff(
                self.original.splitlines(keepends=True),
                self.fixed.splitlines(keepends=True),
                fromfile=self.display if os.path.isabs(self.display) else f"a/{self.display}",
                tofile=self.display if os.path.isabs(self.display) else f"b/{self.display}",
            )
        )


def _encoding(data: bytes) -> str:
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError:
        return "utf-8"
    return codecs.lookup(encoding).name


def encode_like(text: str, original: bytes) -> bytes:
    """`text` in the original's encoding, with its BOM if it had one."""
    encoding = _encoding(original)
    if original.startswith(codecs.BOM_UTF8):
        return codecs.BOM_UTF8 + text.encode("utf-8")
    return text.encode("utf-8" if encoding == "utf-8-sig" else encoding)


def fix_file(candidate: Candidate, codes: frozenset[str], *, unsafe: bool = False,
             write: bool = True, options: Mapping[str, str] | None = None) -> FileFix:
    """Fix one `.py` file. With `write=False` (`--diff`) nothing is written.

    Files that cannot be read or decoded, and notebooks (fixed cell by cell elsewhere, with
    `apply_edits`), are linted as usual and left untouched.
    """
    from jaxdoctor.static.engine import check_file

    out = FileFix(candidate.display)
    if candidate.path.suffix == ".ipynb":  # cell by cell, keeping outputs and metadata
        from jaxdoctor.static.notebook import fix_notebook

        return fix_notebook(candidate, codes, unsafe=unsafe, write=write, options=options)
    try:
        data = read_bytes(candidate.path)
        text = decode(data)
    except SourceError:
        out.findings = check_file(candidate, codes, options).findings
        return out
    result = fix_source(text, candidate.display, static_rules(codes), unsafe=unsafe,
                        options=options)
    out.original = text
    out.fixed = result.source
    out.applied = result.applied
    out.fixed_codes = result.fixed_codes
    out.findings = [f for f in result.findings if f.code in codes]
    if out.changed and write:
        if not parses(result.source):  # fix_source guarantees this; never write a broken file
            raise RuntimeError(f"{candidate.display}: fixed text does not parse; not written")
        write_atomic(candidate.path, encode_like(result.source, data))
        out.written = True
    return out


def _fix_work(args: tuple[Candidate, frozenset[str], bool, bool, dict[str, str]]) -> FileFix:
    candidate, codes, unsafe, write, options = args
    return fix_file(candidate, codes, unsafe=unsafe, write=write, options=options)


@dataclass
class FixRun:
    files: list[FileFix] = field(default_factory=list)

    @property
    def findings(self) -> list[Finding]:
        return sort_findings(f for ff in self.files for f in ff.findings)

    @property
    def applied(self) -> int:
        return sum(ff.applied for ff in self.files)

    @property
    def changed(self) -> list[FileFix]:
        return [ff for ff in self.files if ff.changed]


def fix_paths(paths: list[str], settings, codes: frozenset[str],
              per_file_ignores: dict[str, frozenset[str]], *, unsafe: bool = False,
              write: bool = True, jobs: int | None = None) -> FixRun:
    """`--fix` (write=True) or `--diff` (write=False) over files and directories, with one
    configuration for all of them (see `fix_files` for per-file)."""
    from jaxdoctor.static.discovery import discover
    from jaxdoctor.static.engine import codes_for
    from jaxdoctor.static.options import run_options
    from jaxdoctor.static.plan import FilePlan

    candidates = discover(paths, settings.exclude + settings.extend_exclude, settings.root)
    options = run_options(settings)
    plans = [FilePlan(c, codes_for(c.display, codes, per_file_ignores), options) for c in candidates]
    return fix_files(plans, unsafe=unsafe, write=write, jobs=jobs or settings.jobs)


def fix_files(plans, *, unsafe: bool = False, write: bool = True, jobs: int | None = None) -> FixRun:
    """Fix each planned file with its own codes and options."""
    from concurrent.futures import ProcessPoolExecutor

    from jaxdoctor.static.runner import PARALLEL_THRESHOLD

    work = [(p.candidate, p.codes, unsafe, write, dict(p.options)) for p in plans]
    jobs = jobs or os.cpu_count() or 1
    if jobs > 1 and len(work) >= PARALLEL_THRESHOLD:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            files = list(pool.map(_fix_work, work, chunksize=max(1, len(work) // (jobs * 8))))
    else:
        files = [_fix_work(w) for w in work]
    return FixRun(files)


__all__ = [
    "MAX_ROUNDS",
    "FileFix",
    "FixResult",
    "FixRun",
    "OverlappingEdits",
    "apply_edits",
    "choose_fixes",
    "encode_like",
    "fix_file",
    "fix_paths",
    "fix_files",
    "fix_source",
    "fix_text",
]
