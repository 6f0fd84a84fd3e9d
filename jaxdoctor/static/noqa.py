"""Adding suppressions: `lint --add-noqa` and the editor's "ignore this finding".

Each finding gets `# jaxdoctor: ignore[JDxxx]` on its first line, or on its last line when the
first cannot take a comment (it ends inside a string, or with a `\\` continuation). A line that
already has a `# jaxdoctor: ignore[...]` directive gets the code added to it. Parse errors
(JD001) and unused suppressions (JD002) are never suppressed this way.
"""

from __future__ import annotations

import io
import re
import tokenize
from collections.abc import Iterable

from jaxdoctor.findings import Edit, Finding

NOT_SUPPRESSIBLE = frozenset({"JD001", "JD002"})
_DIRECTIVE = re.compile(r"#\s*jaxdoctor\s*:\s*ignore\[(?P<codes>[^\]]*)\]", re.IGNORECASE)
_CODE = re.compile(r"[A-Za-z]+\d+")


def comment_lines(source: str) -> dict[int, tuple[int, str | None]] | None:
    """1-based line → (column where a comment may go, the comment already there), for every line
    that ends outside a string and without a continuation; None if the source does not tokenize."""
    out: dict[int, tuple[int, str | None]] = {}
    comments: dict[int, tuple[int, str]] = {}
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type == tokenize.COMMENT:
                comments[tok.start[0]] = (tok.start[1], tok.string)
            elif tok.type in (tokenize.NEWLINE, tokenize.NL):
                line = tok.start[0]
                if line in comments:
                    out[line] = comments[line]
                else:
                    out[line] = (tok.start[1], None)
            elif tok.type == tokenize.ENDMARKER:
                pass
    except (tokenize.TokenError, SyntaxError, IndentationError, RecursionError):
        return None
    return out


def _place(f: Finding, places: dict[int, tuple[int, str | None]]) -> int | None:
    for line in (f.line, f.end_line):
        if line in places:
            return line
    return None


def noqa_edits(source: str, findings: Iterable[Finding]) -> list[Edit]:
    """Edits that add `# jaxdoctor: ignore[...]` for `findings` (all in this source; notebook
    findings: all in one cell, positions within the cell)."""
    places = comment_lines(source)
    if places is None:
        return []
    lines = source.splitlines()
    wanted: dict[int, set[str]] = {}
    for f in findings:
        if f.code in NOT_SUPPRESSIBLE:
            continue
        line = _place(f, places)
        if line is not None:
            wanted.setdefault(line, set()).add(f.code)
    edits = []
    for line, codes in sorted(wanted.items()):
        column, comment = places[line]
        text = lines[line - 1] if line <= len(lines) else ""
        if comment is not None:
            m = _DIRECTIVE.search(comment)
            if m is not None:  # merge into the directive that is there
                have = [c.upper() for c in _CODE.findall(m.group("codes"))]
                merged = have + sorted(c for c in codes if c not in have)
                new = comment[: m.start()] + f"# jaxdoctor: ignore[{', '.join(merged)}]" + comment[m.end():]
                edits.append(Edit(line, column + 1, line, column + len(comment) + 1, new))
                continue
            end = column + len(comment)
            edits.append(Edit(line, end + 1, line, end + 1, f"  # jaxdoctor: ignore[{', '.join(sorted(codes))}]"))
            continue
        end = len(text[:column].rstrip()) if column <= len(text) else len(text)
        edits.append(Edit(line, end + 1, line, column + 1, f"  # jaxdoctor: ignore[{', '.join(sorted(codes))}]"))
    return edits


def add_noqa_text(text: str, findings: list[Finding], *, notebook: bool = False) -> tuple[str, int]:
    """(new text, directives added or extended) for a `.py` source or a notebook's JSON."""
    from jaxdoctor.static.fixes import apply_edits

    if not notebook:
        edits = noqa_edits(text, [f for f in findings if f.cell is None])
        return (apply_edits(text, edits), len(edits)) if edits else (text, 0)
    from jaxdoctor.static.notebook import NotebookError, apply_cell_edits, parse_notebook

    try:
        nb = parse_notebook(text)
    except NotebookError:
        return text, 0
    by_cell: dict[int, list[Edit]] = {}
    sources = {c.number: c.source for c in nb.cells}
    for number in sorted({f.cell for f in findings if f.cell is not None}):
        if number in sources:
            edits = noqa_edits(sources[number], [f for f in findings if f.cell == number])
            if edits:
                by_cell[number] = edits
    if not by_cell:
        return text, 0
    try:
        return apply_cell_edits(text, by_cell, apply_edits), sum(len(e) for e in by_cell.values())
    except ValueError:
        return text, 0
