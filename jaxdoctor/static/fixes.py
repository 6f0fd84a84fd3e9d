"""Applying fixes: text edits and the fix loop over one Python file (`static.runner` runs
`--fix` / `--diff` over many files, `static.notebook` fixes notebooks cell by cell).

`apply_edits` is the one primitive (notebooks reuse it cell by cell). `fix_source` runs the lint,
applies the chosen non-overlapping fixes, re-lints and repeats (ruff's loop) until nothing is
left to fix or `MAX_ROUNDS` is reached; a round whose result does not re-parse is undone fix by
fix. `fix_file` writes atomically (a temporary file in the same directory, then `os.replace`),
keeping the original's permissions, encoding, BOM and newlines.
"""

from __future__ import annotations

import difflib
import itertools
import os
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import libcst as cst

from jaxdoctor.findings import Applicability, Edit, Finding, Fix
from jaxdoctor.static.discovery import Candidate
from jaxdoctor.static.engine import check_file, lint_source, sort_findings, static_rules
from jaxdoctor.static.rule import LintRule
from jaxdoctor.source import SourceError, decode, encode_like, read_bytes, write_atomic

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


def fix_file(candidate: Candidate, codes: frozenset[str], *, unsafe: bool = False,
             write: bool = True, options: Mapping[str, str] | None = None) -> FileFix:
    """Fix one Python file. With `write=False` (`--diff`) nothing is written. A file that
    cannot be read or decoded is linted as usual and left untouched. (A notebook is
    `static.notebook.fix_notebook`'s: the runner chooses.)"""
    out = FileFix(candidate.display)
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


__all__ = [
    "MAX_ROUNDS",
    "FileFix",
    "FixResult",
    "OverlappingEdits",
    "apply_edits",
    "choose_fixes",
    "fix_file",
    "fix_source",
]
