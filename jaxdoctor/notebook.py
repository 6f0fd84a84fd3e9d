"""The Jupyter notebook format (`.ipynb`), for both passes: code cells, IPython syntax, and where
a cell's lines are in the joined program and in the file's own JSON text.

- A code cell's `number` is its 1-based place among the **code** cells in notebook order
  (markdown cells don't count), not the execution count `[n]`, which changes every time a cell is
  re-run and is absent for cells never run.
- IPython syntax is blanked (`blank_ipython`), keeping every line where it was: line magics
  (`%timeit f(x)`), shell escapes (`!pip install jax`), help (`?obj`, `obj??`), assignments from
  them (`files = !ls`) and their `\\` continuation lines become `pass`. A cell magic (`%%time`,
  `%%timeit`, `%%capture`, `%%prun`, `%%debug`) only loses its first line; a cell under any other
  cell magic (`%%bash`, `%%writefile`, ...) is not Python and is `skipped`.
- `join_cells` joins the code cells into one program (an import in cell 1 resolves in cell 3);
  its `Layout` maps a line of that program back to (cell, line).
- `file_positions` maps (cell, line, column) to the (line, column) of the `.ipynb` text itself,
  for SARIF viewers and GitHub annotations.
- `write_cells` replaces the source of some code cells and keeps everything else: outputs,
  metadata, execution counts, key order, the nbformat version and the JSON layout (indent,
  escaping, final newline).
"""

from __future__ import annotations

import bisect
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from json import scanner as json_scanner
from typing import Any

from jaxdoctor.source import SourceError

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
    """The notebook's code cells, numbered, with their IPython syntax blanked."""
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


def decode_notebook(data: bytes) -> str:
    """A notebook file's bytes → its JSON text (UTF-8, a BOM dropped)."""
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as e:
        raise SourceError(
            f"not a valid notebook: cannot decode as utf-8: invalid byte 0x{data[e.start]:02x} at offset {e.start}"
        ) from None


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


# --------------------------------------------------------------------------- the joined program


@dataclass
class Layout:
    """Where each code cell sits in the joined program."""

    starts: list[int]  # 1-based first line of each cell in the joined source
    cells: list[CodeCell]

    def locate(self, line: int) -> tuple[CodeCell, int]:
        """(cell, line within it) of a line of the joined program."""
        i = max(0, bisect.bisect_right(self.starts, line) - 1)
        return self.cells[i], line - self.starts[i] + 1


def join_cells(cells: Sequence[CodeCell], blank: frozenset[int] | set[int] = frozenset()) -> tuple[str, Layout]:
    """The cells' Python text as one program (the cells numbered in `blank` as blank lines)."""
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
    return "".join(parts), Layout(starts, list(cells))


# --------------------------------------------------------------------------- writing cells back


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


def write_cells(text: str, sources: Mapping[int, str]) -> str:
    """The notebook's JSON text with the source of each code cell numbered in `sources` replaced.
    Everything else, including the JSON layout, is kept; unchanged text comes back as it was."""
    if not sources:
        return text
    nb = parse_notebook(text)  # validated, numbered as when linting
    data = json.loads(text)  # a fresh copy to edit; dicts keep the file's key order
    raw = _raw_cells(data)
    by_number = {c.number: c for c in nb.cells}
    changed = False
    for number, new in sorted(sources.items()):
        cell = by_number.get(number)
        if cell is None:
            raise ValueError(f"notebook has no code cell {number}")
        if new == cell.source:
            continue
        target = raw[cell.index]
        _store(target, _source_key(target), new)
        changed = True
    if not changed:
        return text
    return _dump(data, *_layout_of(text))


# --------------------------------------------------------------------------- positions in the file


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


#: (cell, line, column) of a code cell → (line, column) in the file, or None
FilePositions = Callable[[int, int, int], "tuple[int, int] | None"]


def file_positions(text: str) -> FilePositions | None:
    """For the notebook's JSON `text`: a function from (cell, line, column) of a code cell to the
    1-based (line, column) in `text` that holds it (None where it can't be placed), so that SARIF
    viewers and GitHub annotations land on the cell's source line in the file. None when `text`
    is not a notebook."""
    try:
        scan = _positions_decoder()
        start = len(text) - len(text.lstrip())
        data, _ = scan(text, start)
        if not isinstance(data, dict):
            return None
        cells: list[list[_PosStr]] = []
        for cell in _raw_cells(data):
            if not isinstance(cell, dict) or cell.get("cell_type") != "code":
                continue
            value = cell.get(_source_key(cell), "")
            cells.append([value] if isinstance(value, str) else list(value))
    except (ValueError, RecursionError, NotebookError):
        return None

    def position(cell: int, line: int, column: int) -> tuple[int, int] | None:
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
                line_start = text.rfind("\n", 0, index) + 1
                return text.count("\n", 0, index) + 1, index - line_start + 1
        return None

    return position
