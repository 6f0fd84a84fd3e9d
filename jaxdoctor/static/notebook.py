"""Jupyter notebooks (`.ipynb`): lint the code cells as one program, report per cell.

- Code cells are joined in notebook order, so an import in cell 1 resolves in cell 3 and a
  function jitted in one cell is known to be traced in the next. Markdown and raw cells are
  skipped; so is a notebook whose kernel language is not Python.
- A finding's `cell` is the **1-based number of the code cell** counted in notebook order
  (markdown cells don't count), not the execution count `[n]`, which changes every time a cell is
  re-run and is absent for cells never run. Its line and column are within that cell.
- IPython syntax is blanked before parsing, keeping every line where it was: line magics
  (`%timeit f(x)`), shell escapes (`!pip install jax`), help (`?obj`, `obj??`), assignments from
  them (`files = !ls`) and their `\\` continuation lines become `pass`. A cell magic (`%%time`,
  `%%timeit`, `%%capture`, `%%prun`, `%%debug`) only loses its first line; a cell under any other
  cell magic (`%%bash`, `%%writefile`, ...) is not Python and is skipped.
- A cell that does not parse is a JD001 finding at that cell; the other cells are still linted.
  Invalid JSON, or JSON that is not a notebook, is a JD001 finding for the file.
- `--fix` rewrites the `source` of the changed cells only; outputs, metadata, execution counts,
  key order, the nbformat version and the JSON layout (indent, escaping, final newline) are kept.
"""

from __future__ import annotations

import bisect
import functools
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from json import scanner as json_scanner
from pathlib import Path
from typing import Any

import libcst as cst

from jaxdoctor.findings import Edit, Finding, Fix
from jaxdoctor.source import SourceError, read_bytes, write_atomic

#: Cell magics whose body is Python run in the kernel; every other cell magic's body is skipped.
PYTHON_CELL_MAGICS = frozenset({"time", "timeit", "capture", "prun", "debug", "python", "python3", "pypy"})

_HELP = re.compile(r"^(?:\?{1,2}\s*[A-Za-z_][\w.]*(?:\(\))?|[A-Za-z_][\w.]*(?:\(\))?\s*\?{1,2})$")
_ASSIGN_MAGIC = re.compile(r"^[A-Za-z_][\w.]*(?:\s*,\s*[A-Za-z_][\w.]*)*\s*=\s*[!%]")


class NotebookError(Exception):
    """The file is not a notebook jaxdoctor can read; the message says why."""


@dataclass
class CodeCell:
    number: int  # 1-based among code cells
    index: int  # position in the notebook's cell list
    source: str  # as stored (list items joined)
    python: str  # IPython syntax blanked, same number of lines, ends with a newline (or empty)
    skipped: bool = False  # not Python (e.g. `%%bash`): contributes blank lines only


@dataclass
class Notebook:
    data: dict
    cells: list[CodeCell] = field(default_factory=list)
    is_python: bool = True


# --------------------------------------------------------------------------- reading


def _raw_cells(data: dict) -> list[dict]:
    if isinstance(data.get("cells"), list):
        return data["cells"]
    # nbformat 3: cells live in worksheets
    worksheets = data.get("worksheets")
    if isinstance(worksheets, list):
        out: list[dict] = []
        for ws in worksheets:
            if isinstance(ws, dict) and isinstance(ws.get("cells"), list):
                out.extend(ws["cells"])
        return out
    raise NotebookError("not a Jupyter notebook: no `cells` list")


def _source_key(cell: dict) -> str:
    return "source" if "source" in cell or "input" not in cell else "input"


def _join(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "".join(value)
    raise NotebookError("not a Jupyter notebook: a cell's source is neither text nor a list of lines")


def _is_python(data: dict) -> bool:
    meta = data.get("metadata")
    if not isinstance(meta, dict):
        return True
    for section, key in (("language_info", "name"), ("kernelspec", "language")):
        value = meta.get(section, {}).get(key) if isinstance(meta.get(section), dict) else None
        if isinstance(value, str) and value:
            return value.lower() in ("python", "python3", "ipython", "ipython3")
    return True


def parse_notebook(text: str) -> Notebook:
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as e:
        where = f" (line {e.lineno}, column {e.colno})" if isinstance(e, json.JSONDecodeError) else ""
        raise NotebookError(f"not a valid notebook: invalid JSON{where}") from None
    if not isinstance(data, dict):
        raise NotebookError("not a Jupyter notebook: the JSON is not an object")
    nb = Notebook(data, is_python=_is_python(data))
    number = 0
    for index, cell in enumerate(_raw_cells(data)):
        if not isinstance(cell, dict):
            raise NotebookError("not a Jupyter notebook: a cell is not an object")
        if cell.get("cell_type") != "code":
            continue
        number += 1
        source = _join(cell.get(_source_key(cell), ""))
        python, skipped = blank_ipython(source)
        nb.cells.append(CodeCell(number, index, source, python, skipped))
    return nb


# --------------------------------------------------------------------------- IPython syntax


def _is_magic(stripped: str) -> bool:
    return (
        stripped.startswith(("%", "!"))
        or bool(_HELP.match(stripped))
        or bool(_ASSIGN_MAGIC.match(stripped))
    )


def blank_ipython(source: str) -> tuple[str, bool]:
    """(Python text, skipped): IPython-only lines replaced by `pass` at their indentation, so line
    numbers and the columns of every other line are unchanged. `skipped` is True for a cell under
    a non-Python cell magic (its text is then all blank lines)."""
    lines = source.splitlines()
    if not lines:
        return "", False
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is not None and lines[first].lstrip().startswith("%%"):
        magic = lines[first].lstrip()[2:].split(maxsplit=1)
        if not magic or magic[0] not in PYTHON_CELL_MAGICS:
            return "\n" * len(lines), True
        lines[first] = ""
    out: list[str] = []
    quote: str | None = None  # open triple-quote delimiter carried across lines
    depth = 0  # open brackets carried across lines
    continued = False  # previous line ended with a backslash
    magic_continues = False
    for line in lines:
        stripped = line.strip()
        if magic_continues:
            out.append("")
            magic_continues = line.rstrip().endswith("\\")
            continue
        at_statement = quote is None and depth == 0 and not continued
        if at_statement and stripped and _is_magic(stripped):
            indent = line[: len(line) - len(line.lstrip())]
            out.append(indent + "pass")
            magic_continues = line.rstrip().endswith("\\")
            continue
        out.append(line)
        quote, depth, continued = _scan(line, quote, depth)
    return "\n".join(out) + "\n", False


def _scan(line: str, quote: str | None, depth: int) -> tuple[str | None, int, bool]:
    """Carry string/bracket/continuation state over one line of Python."""
    i, n = 0, len(line)
    comment = False
    while i < n:
        if quote is not None:
            if line[i] == "\\":
                i += 2
                continue
            if line.startswith(quote, i):
                i += len(quote)
                quote = None
                continue
            i += 1
            continue
        c = line[i]
        if c == "#":
            comment = True
            break
        if c in "\"'":
            if line.startswith(c * 3, i):
                quote = c * 3
                i += 3
                continue
            # a one-line string: skip to its closing quote
            j = i + 1
            while j < n and line[j] != c:
                j += 2 if line[j] == "\\" else 1
            i = j + 1
            continue
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth = max(0, depth - 1)
        i += 1
    continued = quote is None and not comment and line.endswith("\\")
    return quote, depth, continued


# --------------------------------------------------------------------------- linting


@dataclass
class _Layout:
    """Where each code cell sits in the joined program."""

    starts: list[int]  # 1-based first line of each cell in the joined source
    cells: list[CodeCell]

    def locate(self, line: int) -> tuple[CodeCell, int]:
        i = max(0, bisect.bisect_right(self.starts, line) - 1)
        return self.cells[i], line - self.starts[i] + 1


def _join_cells(cells: Sequence[CodeCell], blank: set[int]) -> tuple[str, _Layout]:
    parts: list[str] = []
    starts: list[int] = []
    line = 1
    for cell in cells:
        starts.append(line)
        text = cell.python
        if cell.number in blank:
            text = "\n" * text.count("\n")
        parts.append(text)
        line += text.count("\n")
    return "".join(parts), _Layout(starts, list(cells))


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
                       options: Mapping[str, str] | None = None):
    """Lint a notebook's JSON text; findings carry `cell` and cell-relative positions.
    `options` are the run options passed on to `engine.lint_source`."""
    from jaxdoctor.static.engine import (
        PARSE_ERROR,
        FileResult,
        lint_source,
        parse_error,
    )

    try:
        nb = parse_notebook(text)
    except NotebookError as e:
        return FileResult([parse_error(path, str(e))] if PARSE_ERROR in codes else [])
    if not nb.is_python or not nb.cells:
        return FileResult()

    def run(errors: dict[int, tuple[int, int, str]]):
        joined, layout = _join_cells(nb.cells, set(errors))
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
    result.findings = findings
    return result


def _to_cell(f: Finding, layout: _Layout) -> Finding:
    from dataclasses import replace

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


def check_notebook(path: Path, display: str, rules: list, codes: frozenset[str],
                   options: Mapping[str, str] | None = None):
    """Read and lint one `.ipynb` file; unreadable or non-UTF-8 files are a JD001 finding."""
    from jaxdoctor.static.engine import PARSE_ERROR, FileResult, parse_error

    try:
        text = decode_notebook(read_bytes(path))
    except SourceError as e:
        return FileResult([parse_error(display, str(e))] if PARSE_ERROR in codes else [])
    return lint_notebook_text(text, display, rules, codes, options)


def decode_notebook(data: bytes) -> str:
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as e:
        raise SourceError(
            f"not a valid notebook: cannot decode as utf-8: invalid byte 0x{data[e.start]:02x} at offset {e.start}"
        ) from None


# --------------------------------------------------------------------------- fixing


def _layout_of(text: str) -> tuple[int | str | None, bool, bool]:
    """(indent, ensure_ascii, trailing newline) of a notebook's JSON text, so that a rewrite looks
    like the original (Jupyter writes indent=1, non-ASCII kept, a final newline)."""
    indent: int | str | None = None
    m = re.search(r"\n([ \t]+)\S", text)
    if m:
        ws = m.group(1)
        indent = len(ws) if set(ws) == {" "} else ws
    ensure_ascii = not any(ord(ch) > 127 for ch in text)
    return indent, ensure_ascii, text.endswith("\n")


def _dump(data: Any, indent: int | str | None, ensure_ascii: bool, newline: bool) -> str:
    out = json.dumps(data, indent=indent, ensure_ascii=ensure_ascii,
                     separators=(",", ": ") if indent is not None else (", ", ": "))
    return out + ("\n" if newline else "")


def _store(cell: dict, key: str, new: str) -> None:
    if isinstance(cell.get(key), list):
        cell[key] = new.splitlines(keepends=True)
    else:
        cell[key] = new


def apply_cell_edits(
    text: str,
    edits_by_cell: dict[int, Sequence[Edit]],
    apply_edits: Callable[[str, Sequence[Edit]], str],
) -> str:
    """Apply edits (cell-relative positions) to the code cells numbered in `edits_by_cell` and
    return the notebook's new JSON text. Only those cells' sources change; everything else,
    including the JSON layout, is kept. A cell whose new source does not parse is an error."""
    edits_by_cell = {n: list(e) for n, e in edits_by_cell.items() if e}
    if not edits_by_cell:
        return text
    nb = parse_notebook(text)  # validated, numbered as when linting
    data = json.loads(text)  # a fresh copy to edit; dicts keep the file's key order
    raw = _raw_cells(data)
    by_number = {c.number: c for c in nb.cells}
    changed = False
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
        target = raw[cell.index]
        _store(target, _source_key(target), new)
        changed = True
    if not changed:
        return text
    return _dump(data, *_layout_of(text))


def edits_by_cell(findings: Iterable[Finding]) -> dict[int, list[Edit]]:
    """The fix edits of notebook findings, grouped by code-cell number."""
    out: dict[int, list[Edit]] = {}
    for f in findings:
        if f.cell is not None and f.fix is not None:
            out.setdefault(f.cell, []).extend(f.fix.edits)
    return out


# --------------------------------------------------------------------------- for renderers


@functools.lru_cache(maxsize=64)
def _cells_of(path: str, mtime_ns: int) -> tuple[tuple[str, ...], ...]:
    text = decode_notebook(read_bytes(Path(path)))
    return tuple(tuple(c.source.splitlines()) for c in parse_notebook(text).cells)


def cell_lines(path: str, cell: int) -> list[str] | None:
    """The lines of code cell `cell` of the notebook at `path` (for source snippets), or None."""
    try:
        cells = _cells_of(path, Path(path).stat().st_mtime_ns)
    except (OSError, SourceError, NotebookError, ValueError):
        return None
    return list(cells[cell - 1]) if 0 < cell <= len(cells) else None


class _PosStr(str):
    """A JSON string value that remembers where its text starts in the file."""

    __slots__ = ("offset",)


def _positions_decoder() -> Callable[[str, int], tuple[Any, int]]:
    decoder = json.JSONDecoder()
    plain = decoder.parse_string

    def parse_string(s: str, end: int, strict: bool):
        value, new_end = plain(s, end, strict)
        out = _PosStr(value)
        out.offset = end  # index just after the opening quote
        return out, new_end

    decoder.parse_string = parse_string  # type: ignore[method-assign]
    return json_scanner.py_make_scanner(decoder)


_ESCAPE = re.compile(r"\\(?:u[0-9a-fA-F]{4}|.)")


def _raw_offset(text: str, start: int, count: int) -> int:
    """Index in `text` after `count` decoded characters of the JSON string starting at `start`."""
    i = start
    while count > 0:
        m = _ESCAPE.match(text, i)
        if m:
            # a surrogate pair \ud83d\ude00 decodes to one character
            if m.group().startswith("\\u") and 0xD800 <= int(m.group()[2:], 16) < 0xDC00:
                nxt = _ESCAPE.match(text, m.end())
                if nxt and nxt.group().startswith("\\u"):
                    i = nxt.end()
                    count -= 1
                    continue
            i = m.end()
        else:
            i += 1
        count -= 1
    return i


@functools.lru_cache(maxsize=16)
def _string_map(path: str, mtime_ns: int) -> tuple[str, list[int], list[list[_PosStr]]] | None:
    text = decode_notebook(read_bytes(Path(path)))
    scan = _positions_decoder()
    start = len(text) - len(text.lstrip())
    data, _ = scan(text, start)
    cells: list[list[_PosStr]] = []
    for cell in _raw_cells(data):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        value = cell.get(_source_key(cell), "")
        cells.append([value] if isinstance(value, str) else list(value))
    newlines = [i for i, ch in enumerate(text) if ch == "\n"]
    return text, newlines, cells


def file_position(path: str, cell: int, line: int, column: int) -> tuple[int, int] | None:
    """Where (cell, line, column) of a notebook lies in the `.ipynb` file itself, as a 1-based
    (line, column) of the JSON text — so SARIF viewers and GitHub annotations land on the cell's
    source line in the file. None when the file can't be read or has changed."""
    try:
        found = _string_map(path, Path(path).stat().st_mtime_ns)
    except (OSError, SourceError, NotebookError, ValueError, RecursionError):
        return None
    if found is None:
        return None
    text, newlines, cells = found
    if not 0 < cell <= len(cells):
        return None
    # walk the source pieces to the one holding the start of `line`
    remaining_lines = line - 1
    for piece in cells[cell - 1]:
        if not isinstance(piece, _PosStr):
            return None
        offset_in_piece = 0
        while remaining_lines > 0:
            nl = piece.find("\n", offset_in_piece)
            if nl < 0:
                break
            offset_in_piece = nl + 1
            remaining_lines -= 1
        if remaining_lines == 0 and (offset_in_piece < len(piece) or offset_in_piece == 0):
            rest = piece[offset_in_piece:].split("\n", 1)[0]
            take = offset_in_piece + min(max(0, column - 1), len(rest))
            index = _raw_offset(text, piece.offset, take)
            file_line = bisect.bisect_left(newlines, index) + 1
            line_start = newlines[file_line - 2] + 1 if file_line > 1 else 0
            return file_line, index - line_start + 1
    return None


# --------------------------------------------------------------------------- --fix / --diff


def fix_notebook_text(text: str, path: str, rules: list, codes: frozenset[str], *,
                      unsafe: bool = False, max_rounds: int | None = None,
                      options: Mapping[str, str] | None = None):
    """The notebook version of `fixes.fix_source`: lint, apply the chosen fixes cell by cell,
    re-lint, until nothing is left to fix. Returns (new text, fixes applied, remaining findings).
    A fix that would leave its cell unparsable is dropped."""
    from jaxdoctor.static import fixes

    rounds_left = max_rounds if max_rounds is not None else fixes.MAX_ROUNDS
    applied = 0
    rejected: set[tuple] = set()
    findings = lint_notebook_text(text, path, rules, codes, options).findings
    while rounds_left > 0:
        by_cell: dict[int, list[Finding]] = {}
        for f in findings:
            if f.cell is not None:
                by_cell.setdefault(f.cell, []).append(f)
        chosen = {
            cell: [fx for fx in fixes.choose_fixes([f for f in cell_findings if f.code in codes], unsafe)
                   if (cell, fx.title, fx.edits) not in rejected]
            for cell, cell_findings in by_cell.items()
        }
        chosen = {cell: fxs for cell, fxs in chosen.items() if fxs}
        if not chosen:
            break
        rounds_left -= 1
        new, count = text, 0
        for cell, fxs in sorted(chosen.items()):
            # cells are independent: each cell's fixes apply to that cell's text from this round
            good: list[Fix] = []
            for fx in fxs:
                try:
                    apply_cell_edits(new, {cell: [e for g in good + [fx] for e in g.edits]}, fixes.apply_edits)
                except ValueError:  # overlapping, out of range, or the cell would not parse
                    rejected.add((cell, fx.title, fx.edits))
                    continue
                good.append(fx)
            if good:
                new = apply_cell_edits(new, {cell: [e for g in good for e in g.edits]}, fixes.apply_edits)
                count += len(good)
        if new == text:
            break
        applied += count
        text = new
        findings = lint_notebook_text(text, path, rules, codes, options).findings
    return text, applied, findings


def fix_notebook(candidate, codes: frozenset[str], *, unsafe: bool = False, write: bool = True,
                 options: Mapping[str, str] | None = None):
    """`fixes.fix_file` for a `.ipynb` file: only the changed cells' sources are rewritten."""
    from jaxdoctor.static import fixes
    from jaxdoctor.static.engine import check_file, static_rules

    out = fixes.FileFix(candidate.display)
    try:
        data = read_bytes(candidate.path)
        text = decode_notebook(data)
        parse_notebook(text)
    except (SourceError, NotebookError):
        out.findings = check_file(candidate, codes, options).findings
        return out
    fixed, applied, findings = fix_notebook_text(
        text, candidate.display, static_rules(codes), codes, unsafe=unsafe, options=options
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
