"""Linting and fixing Jupyter notebooks: the code cells as one program, findings per cell.

The format itself (cells, IPython syntax, positions) is `jaxdoctor.notebook`; here:

- Code cells are joined in notebook order, so an import in cell 1 resolves in cell 3 and a
  function jitted in one cell is known to be traced in the next. Markdown and raw cells are
  skipped; so is a notebook whose kernel language is not Python. A finding's `cell` is the code
  cell's number; its line and column are within that cell.
- A cell that does not parse is a JD001 finding at that cell; the other cells are still linted.
  Invalid JSON, or JSON that is not a notebook, is a JD001 finding for the file.
- `--fix` rewrites the `source` of the changed cells only (`notebook.write_cells`).
"""

from __future__ import annotations

from typing import Any

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace

import libcst as cst

from jaxdoctor.findings import Edit, Finding, Fix, Quote
from jaxdoctor.notebook import (
    CodeCell,
    Layout,
    Notebook,
    NotebookError,
    blank_ipython,
    decode_notebook,
    file_positions,
    join_cells,
    parse_notebook,
    write_cells,
)
from jaxdoctor.source import SourceError, read_bytes, write_atomic
from jaxdoctor.static.discovery import Candidate
from jaxdoctor.static.engine import PARSE_ERROR, FileResult, lint_source, parse_error, quoted, static_rules
from jaxdoctor.static.fixes import MAX_ROUNDS, FileFix, apply_edits, choose_fixes

# --------------------------------------------------------------------------- linting


def _cell_syntax_errors(cells: Iterable[CodeCell]) -> dict[int, tuple[int, int, str]]:
    """cell number → (line, column, message) for every code cell that doesn't parse on its own."""
    out: dict[int, tuple[int, int, str]] = {}
    for cell in cells:
        if cell.skipped or not cell.python.strip():
            continue
        try:
            cst.parse_module(cell.python)
        except cst.ParserSyntaxError as e:
            message = " ".join(str(e.message).split())
            out[cell.number] = (max(1, e.raw_line), e.raw_column + 1, f"syntax error: {message}")
        except RecursionError:
            out[cell.number] = (1, 1, "too deeply nested to parse")
        except Exception as e:  # noqa: BLE001 - libcst can raise other errors on exotic input
            out[cell.number] = (1, 1, f"cannot parse: {type(e).__name__}: {e}")
    return out


def lint_notebook_text(text: str, path: str, rules: list, codes: frozenset[str],
                       options: Mapping[str, str] | None = None) -> FileResult:
    """Lint a notebook's JSON text; findings carry `cell` and cell-relative positions.
    `options` are the run options passed on to `engine.lint_source`."""
    try:
        nb = parse_notebook(text)
    except NotebookError as e:
        return FileResult(quoted([parse_error(path, str(e))], text) if PARSE_ERROR in codes else [])
    if not nb.is_python or not nb.cells:
        return FileResult()

    def run(errors: dict[int, tuple[int, int, str]]):
        joined, layout = join_cells(nb.cells, set(errors))
        return lint_source(joined, path, rules, options), layout

    errors: dict[int, tuple[int, int, str]] = {}
    result, layout = run(errors)
    if any(f.code == PARSE_ERROR for f in result.findings):
        # the joined program doesn't parse: find the cells to blame, blank them, lint the rest
        errors = _cell_syntax_errors(nb.cells)
        if errors:
            result, layout = run(errors)
    findings: list[Finding] = []
    if PARSE_ERROR in codes:
        for number, (line, column, message) in sorted(errors.items()):
            findings.append(parse_error(path, message, line, column, cell=number))
    for f in result.findings:
        if f.code == PARSE_ERROR and f.cell is None:
            # the cells parse one by one but not joined (should not happen): report it at its cell
            cell, line = layout.locate(f.line)
            findings.append(parse_error(path, f.message, line, f.column, cell=cell.number))
            continue
        findings.append(_to_cell(f, layout))
    result.findings = _quote_cells(findings, nb, text)
    return result


def _quote_cells(findings: list[Finding], nb: Notebook, text: str) -> list[Finding]:
    """Each finding quotes its line of its cell, and where it starts and ends in the `.ipynb`
    text (SARIF and GitHub annotations point into the file)."""
    if not findings:
        return findings
    lines = {cell.number: cell.source.splitlines() for cell in nb.cells}
    position = file_positions(text)
    out = []
    for f in findings:
        cell = lines.get(f.cell, [])
        quote = Quote.of(
            f, cell,
            position(f.cell, f.line, f.column) if position is not None else None,
            position(f.cell, f.end_line, f.end_column) if position is not None else None,
        )
        out.append(replace(f, quote=quote))
    return out


def _to_cell(f: Finding, layout: Layout) -> Finding:
    cell, line = layout.locate(f.line)
    end_cell, end_line = layout.locate(f.end_line)
    end_column = f.end_column
    if end_cell is not cell:  # never spans cells in practice; clamp to the cell's last line
        end_line = max(line, cell.python.count("\n"))
        end_column = len(cell.python.splitlines()[end_line - 1]) + 1 if cell.python else f.column
    fix = f.fix
    if fix is not None:
        edits = []
        for e in fix.edits:
            c1, l1 = layout.locate(e.line)
            c2, l2 = layout.locate(e.end_line)
            if c1 is not cell or c2 is not cell:
                edits = None
                break
            edits.append(Edit(l1, e.column, l2, e.end_column, e.content))
        fix = Fix(fix.title, fix.applicability, tuple(edits)) if edits is not None else None
    return replace(f, line=line, end_line=end_line, end_column=end_column, cell=cell.number, fix=fix)


def check_notebook(candidate: Candidate, codes: frozenset[str],
                   options: Mapping[str, str] | None = None) -> FileResult:
    """Read and lint one `.ipynb` file (the notebook's `engine.check_file`); unreadable or
    non-UTF-8 files are a JD001 finding."""
    try:
        text = decode_notebook(read_bytes(candidate.path))
    except SourceError as e:
        return FileResult([parse_error(candidate.display, str(e))] if PARSE_ERROR in codes else [])
    result = lint_notebook_text(text, candidate.display, static_rules(codes), codes, options)
    result.findings = [f for f in result.findings if f.code in codes]
    return result


# --------------------------------------------------------------------------- fixing


def apply_cell_edits(text: str, edits_by_cell: Mapping[int, Sequence[Edit]]) -> str:
    """Apply edits (cell-relative positions) to the code cells numbered in `edits_by_cell` and
    return the notebook's new JSON text. Only those cells' sources change; everything else,
    including the JSON layout, is kept. A cell whose new source does not parse is an error."""
    edits_by_cell = {n: list(e) for n, e in edits_by_cell.items() if e}
    if not edits_by_cell:
        return text
    by_number = {c.number: c for c in parse_notebook(text).cells}
    sources: dict[int, str] = {}
    for number, edits in sorted(edits_by_cell.items()):
        cell = by_number.get(number)
        if cell is None:
            raise ValueError(f"notebook has no code cell {number}")
        new = apply_edits(cell.source, edits)
        if new == cell.source:
            continue
        python, skipped = blank_ipython(new)
        if not skipped:
            try:
                cst.parse_module(python)
            except Exception as e:  # noqa: BLE001
                raise ValueError(f"fix would break cell {number}: {e}") from None
        sources[number] = new
    return write_cells(text, sources)


def edits_by_cell(findings: Iterable[Finding]) -> dict[int, list[Edit]]:
    """The fix edits of notebook findings, grouped by code-cell number."""
    out: dict[int, list[Edit]] = {}
    for f in findings:
        if f.cell is not None and f.fix is not None:
            out.setdefault(f.cell, []).extend(f.fix.edits)
    return out


def fix_notebook_text(text: str, path: str, rules: list, codes: frozenset[str], *,
                      unsafe: bool = False, max_rounds: int | None = None,
                      options: Mapping[str, str] | None = None, counts: Any = None):
    """The notebook version of `fixes.fix_source`: lint, apply the chosen fixes cell by cell,
    re-lint, until nothing is left to fix. Returns (new text, fixes applied, remaining findings);
    `counts` (a `Counter`), when given, is told the rule code of each fix applied.
    A fix that would leave its cell unparsable is dropped."""
    rounds_left = max_rounds if max_rounds is not None else MAX_ROUNDS
    applied = 0
    rejected: set[tuple] = set()
    findings = lint_notebook_text(text, path, rules, codes, options).findings
    while rounds_left > 0:
        by_cell: dict[int, list[Finding]] = {}
        for f in findings:
            if f.cell is not None:
                by_cell.setdefault(f.cell, []).append(f)
        chosen = {
            cell: [fx for fx in choose_fixes([f for f in cell_findings if f.code in codes], unsafe)
                   if (cell, fx.title, fx.edits) not in rejected]
            for cell, cell_findings in by_cell.items()
        }
        chosen = {cell: fxs for cell, fxs in chosen.items() if fxs}
        if not chosen:
            break
        rounds_left -= 1
        new, count = text, 0
        code_of = {id(f.fix): f.code for f in findings if f.fix is not None}
        done: list[Fix] = []
        for cell, fxs in sorted(chosen.items()):
            # cells are independent: each cell's fixes apply to that cell's text from this round
            good: list[Fix] = []
            for fx in fxs:
                try:
                    apply_cell_edits(new, {cell: [e for g in good + [fx] for e in g.edits]})
                except ValueError:  # overlapping, out of range, or the cell would not parse
                    rejected.add((cell, fx.title, fx.edits))
                    continue
                good.append(fx)
            if good:
                new = apply_cell_edits(new, {cell: [e for g in good for e in g.edits]})
                count += len(good)
                done.extend(good)
        if new == text:
            break
        applied += count
        if counts is not None:
            counts.update(code_of.get(id(fx), "?") for fx in done)
        text = new
        findings = lint_notebook_text(text, path, rules, codes, options).findings
    return text, applied, findings


def fix_notebook(candidate: Candidate, codes: frozenset[str], *, unsafe: bool = False, write: bool = True,
                 options: Mapping[str, str] | None = None) -> FileFix:
    """`fixes.fix_file` for a `.ipynb` file: only the changed cells' sources are rewritten."""
    out = FileFix(candidate.display)
    try:
        data = read_bytes(candidate.path)
        text = decode_notebook(data)
        parse_notebook(text)
    except (SourceError, NotebookError):
        out.findings = check_notebook(candidate, codes, options).findings
        return out
    fixed, applied, findings = fix_notebook_text(
        text, candidate.display, static_rules(codes), codes, unsafe=unsafe, options=options,
        counts=out.fixed_codes,
    )
    out.original = text
    out.fixed = fixed
    out.applied = applied
    out.findings = [f for f in findings if f.code in codes]
    if out.changed and write:
        prefix = b"\xef\xbb\xbf" if data.startswith(b"\xef\xbb\xbf") else b""
        write_atomic(candidate.path, prefix + fixed.encode("utf-8"))
        out.written = True
    return out
