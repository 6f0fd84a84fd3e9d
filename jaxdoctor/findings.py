"""The one result type shared by the static and the trace pass, and by every renderer.

Renderers only ever see `Finding` objects: never a libcst node, never a jaxpr equation, never
the disk (what they quote of the source travels in `Finding.quote`). `Finding.to_dict` and
`Finding.from_dict` are its one codec: JSON output, the lint cache and the trace child's
records all use them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping


class Severity(str, enum.Enum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


class Origin(str, enum.Enum):
    STATIC = "static"
    TRACE = "trace"


class Applicability(str, enum.Enum):
    """How safe a fix is to apply without review (ruff's convention)."""

    SAFE = "safe"  # keeps behaviour; applied by `--fix`
    UNSAFE = "unsafe"  # may change behaviour; needs `--unsafe-fixes`


@dataclass(frozen=True, slots=True)
class Edit:
    """Replace the text between two 1-based (line, column) positions; end is exclusive."""

    line: int
    column: int
    end_line: int
    end_column: int
    content: str


@dataclass(frozen=True, slots=True)
class Fix:
    title: str
    applicability: Applicability
    edits: tuple[Edit, ...]


_CONTEXT_LINES = 200


@dataclass(frozen=True, slots=True)
class Quote:
    """What renderers show of a finding's source, taken from the text the pass read."""

    #: the text of the finding's first line (of its cell, in a notebook), without the line break
    text: str | None = None
    #: notebooks: where the finding starts and ends in the `.ipynb` file's own JSON text, as
    #: 1-based (line, column); None where the cell's text can't be placed in the file
    file_start: tuple[int, int] | None = None
    file_end: tuple[int, int] | None = None
    #: the lines the finding and its fix span (for fix previews), starting at `context_first`
    context_first: int = 0
    context: tuple[str, ...] = ()

    @classmethod
    def of(cls, f: "Finding", lines: list[str], file_start: tuple[int, int] | None = None,
           file_end: tuple[int, int] | None = None) -> "Quote":
        """The quote of finding `f` from the lines of the text it was found in."""
        text = lines[f.line - 1] if 0 < f.line <= len(lines) else None
        first, last = f.line, f.end_line
        if f.fix is not None:
            first = min([first, *(e.line for e in f.fix.edits)])
            last = max([last, *(e.end_line for e in f.fix.edits)])
        if f.fix is None or first < 1 or last > len(lines) or last - first >= _CONTEXT_LINES:
            return cls(text, file_start, file_end)
        return cls(text, file_start, file_end, first, tuple(lines[first - 1:last]))


@dataclass(frozen=True, slots=True)
class Finding:
    code: str
    name: str
    severity: Severity
    message: str
    path: str
    line: int  # 1-based
    column: int  # 1-based
    end_line: int
    end_column: int
    fix_title: str | None = None
    fix: Fix | None = None
    origin: Origin = Origin.STATIC
    cell: int | None = None  # notebooks: 1-based code-cell number; line is then within the cell
    details: Mapping[str, Any] = field(default_factory=dict)
    quote: Quote | None = field(default=None, compare=False)

    @property
    def sort_key(self) -> tuple:
        return (self.path, self.cell or 0, self.line, self.column, self.code)

    @property
    def key(self) -> tuple:
        """What makes two findings the same one: a rule at one place (see `unique`)."""
        return (self.path, self.cell, self.line, self.column, self.code)

    def location(self) -> str:
        """`path:line:col`, or `path:cell N:line:col` for a notebook cell."""
        if self.cell is not None:
            return f"{self.path}:cell {self.cell}:{self.line}:{self.column}"
        return f"{self.path}:{self.line}:{self.column}"

    def to_dict(self, *, quote: bool = False) -> dict[str, Any]:
        """The documented JSON schema (README, "JSON output"); with `quote`, also the quoted
        source (for the cache and the trace child, whose findings reach a renderer later)."""
        out: dict[str, Any] = {
            "code": self.code,
            "name": self.name,
            "severity": self.severity.value,
            "message": self.message,
            "path": self.path,
            "line": self.line,
            "column": self.column,
            "end_line": self.end_line,
            "end_column": self.end_column,
            "fix_title": self.fix_title,
            "fix": None,
            "origin": self.origin.value,
            "cell": self.cell,
            "details": dict(self.details),
        }
        if self.fix is not None:
            out["fix"] = {
                "title": self.fix.title,
                "applicability": self.fix.applicability.value,
                "edits": [
                    {
                        "line": e.line,
                        "column": e.column,
                        "end_line": e.end_line,
                        "end_column": e.end_column,
                        "content": e.content,
                    }
                    for e in self.fix.edits
                ],
            }
        if quote and self.quote is not None:
            q = self.quote
            out["quote"] = {"text": q.text, "file_start": q.file_start, "file_end": q.file_end,
                            "context_first": q.context_first, "context": list(q.context)}
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Finding":
        """The inverse of `to_dict` (with or without the quote)."""
        fix = None
        if d.get("fix"):
            fd = d["fix"]
            fix = Fix(
                fd["title"], Applicability(fd["applicability"]),
                tuple(Edit(e["line"], e["column"], e["end_line"], e["end_column"], e["content"])
                      for e in fd["edits"]),
            )
        quote = None
        if d.get("quote"):
            qd = d["quote"]
            quote = Quote(qd.get("text"), _pair(qd.get("file_start")), _pair(qd.get("file_end")),
                          qd.get("context_first", 0), tuple(qd.get("context", ())))
        return cls(
            code=d["code"], name=d["name"], severity=Severity(d["severity"]), message=d["message"],
            path=d["path"], line=d["line"], column=d["column"], end_line=d["end_line"],
            end_column=d["end_column"], fix_title=d.get("fix_title"), fix=fix,
            origin=Origin(d.get("origin", "static")), cell=d.get("cell"),
            details=d.get("details") or {}, quote=quote,
        )


def _pair(value: Any) -> tuple[int, int] | None:
    return (int(value[0]), int(value[1])) if value else None


def unique(findings: Iterable[Finding]) -> list[Finding]:
    """The findings without repeats (the same `key`), in their order; the first one is kept."""
    seen: set[tuple] = set()
    out = []
    for f in findings:
        if f.key not in seen:
            seen.add(f.key)
            out.append(f)
    return out
