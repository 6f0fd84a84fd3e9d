"""Inline suppressions: `# jaxdoctor: ignore[JD101]`, `# jaxdoctor: ignore`, `# noqa: JD101`.

A comment on the first or last line of a finding silences it. A bare `# noqa` silences every
code on the line (flake8's convention); `# noqa: E501` (other tools' codes only) silences none
of ours.

`unused_directives` finds the suppressions that suppress nothing or name codes that do not exist
(JD002, like ruff's RUF100); it reads real comments only (tokenize), never text in strings.
"""

from __future__ import annotations

import io
import re
import tokenize
from dataclasses import dataclass

ALL = "*"
_JAXDOCTOR = re.compile(r"#\s*jaxdoctor\s*:\s*ignore\b(?:\[(?P<codes>[^\]]*)\])?", re.IGNORECASE)
_NOQA = re.compile(r"#\s*noqa\b(?P<colon>\s*:\s*(?P<codes>[A-Za-z]+\d+(?:[\s,]+[A-Za-z]+\d+)*))?",
                   re.IGNORECASE)
_CODE = re.compile(r"[A-Za-z]+\d+")
_OURS = re.compile(r"^JD\d+$")


def suppressions(source: str) -> dict[int, set[str]]:
    """1-based line → suppressed codes (or {ALL})."""
    out: dict[int, set[str]] = {}
    if "jaxdoctor" not in source and "noqa" not in source.lower():
        return out
    for lineno, line in enumerate(source.splitlines(), start=1):
        if "#" not in line:
            continue
        codes: set[str] = set()
        for m in _JAXDOCTOR.finditer(line):
            if m.group("codes") is None:
                codes.add(ALL)
            else:
                codes.update(c.upper() for c in _CODE.findall(m.group("codes")))
        for m in _NOQA.finditer(line):
            if m.group("codes") is None:
                codes.add(ALL)
            else:
                codes.update(c.upper() for c in _CODE.findall(m.group("codes")))
        if codes:
            out[lineno] = codes
    return out


def is_suppressed(table: dict[int, set[str]], code: str, line: int, end_line: int) -> bool:
    for n in (line, end_line):
        codes = table.get(n)
        if codes and (ALL in codes or code in codes):
            return True
    return False


def suppressing(table: dict[int, set[str]], code: str, line: int, end_line: int) -> list[tuple[int, str]]:
    """The (line, code-or-ALL) entries of `table` that silence a finding of `code` there."""
    out = []
    for n in {line, end_line}:
        codes = table.get(n)
        if codes:
            if code in codes:
                out.append((n, code))
            if ALL in codes:
                out.append((n, ALL))
    return out


# ----------------------------------------------------------------------------- JD002


@dataclass(frozen=True)
class Directive:
    """One suppression directive inside a real comment."""

    line: int  # 1-based
    start: int  # 0-based column of the directive's `#`
    end: int  # 0-based column just after it
    kind: str  # "jaxdoctor" or "noqa"
    codes: tuple[str, ...] | None  # None: bare (every code)
    comment_start: int  # 0-based column of the comment's `#`
    comment_end: int
    text: str  # the whole comment


def directives(source: str) -> list[Directive] | None:
    """Every suppression directive in a comment; None when the source does not tokenize."""
    out: list[Directive] = []
    if "jaxdoctor" not in source and "noqa" not in source.lower():
        return out
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError, IndentationError, RecursionError):
        return None
    for tok in tokens:
        if tok.type != tokenize.COMMENT:
            continue
        comment = tok.string
        line, col = tok.start
        for kind, pattern in (("jaxdoctor", _JAXDOCTOR), ("noqa", _NOQA)):
            for m in pattern.finditer(comment):
                raw = m.group("codes")
                codes = None if raw is None else tuple(c.upper() for c in _CODE.findall(raw))
                out.append(Directive(line, col + m.start(), col + m.end(), kind, codes,
                                     col, col + len(comment), comment))
    return out


@dataclass(frozen=True)
class Unused:
    """A directive (or some of its codes) that suppresses nothing."""

    directive: Directive
    unused: tuple[str, ...]  # enabled codes with nothing to suppress (ALL for a bare directive)
    unknown: tuple[str, ...]  # codes no jaxdoctor rule has
    replacement: str  # the comment text without them ("" to remove the comment)


def unused_directives(source: str, used: set[tuple[int, str]], enabled: frozenset[str],
                      known: frozenset[str]) -> list[Unused]:
    """Directives that suppress nothing: a bare `# jaxdoctor: ignore` on a line with no finding,
    an enabled code with no finding of that code on its line, or a `JD` code that does not exist.
    Other tools' codes, a bare `# noqa`, and codes that exist but are not enabled in this run
    (trace-only rules, rules selected elsewhere) are never reported."""
    found = directives(source)
    if not found:
        return []
    out = []
    for d in found:
        if d.codes is None:
            if d.kind == "jaxdoctor" and not any(n == d.line for n, _ in used):
                out.append(Unused(d, (ALL,), (), _without(d, None)))
            continue
        if "JD002" in d.codes:  # "don't report unused suppressions here"
            continue
        unused = tuple(c for c in d.codes if c in enabled and (d.line, c) not in used)
        unknown = tuple(c for c in d.codes if _OURS.match(c) and c not in known)
        if unused or unknown:
            drop = set(unused) | set(unknown)
            out.append(Unused(d, unused, unknown, _without(d, drop)))
    return out


def _without(d: Directive, drop: set[str] | None) -> str:
    """The comment with the directive (or `drop` of its codes) taken out; "" if nothing is left."""
    keep = [] if drop is None or d.codes is None else [c for c in d.codes if c not in drop]
    rel_start, rel_end = d.start - d.comment_start, d.end - d.comment_start
    if keep:
        spelled = (f"# jaxdoctor: ignore[{', '.join(keep)}]" if d.kind == "jaxdoctor"
                   else f"# noqa: {', '.join(keep)}")
        return d.text[:rel_start] + spelled + d.text[rel_end:]
    before, after = d.text[:rel_start].rstrip(), d.text[rel_end:].strip()
    if before in ("", "#"):
        before = ""
    if not after or after == "#":
        return before
    if not after.startswith("#"):
        after = "# " + after.lstrip(":;,- ")
    return f"{before}  {after}" if before else after
