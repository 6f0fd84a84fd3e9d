"""The one result type shared by the static and the trace pass, and by every renderer.

Renderers only ever see `Finding` objects: never a libcst node, never a jaxpr equation.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Mapping


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

    @property
    def sort_key(self) -> tuple:
        return (self.path, self.cell or 0, self.line, self.column, self.code)

    def location(self) -> str:
        """`path:line:col`, or `path:cell N:line:col` for a notebook cell."""
        if self.cell is not None:
            return f"{self.path}:cell {self.cell}:{self.line}:{self.column}"
        return f"{self.path}:{self.line}:{self.column}"

    def to_dict(self) -> dict[str, Any]:
        """The documented JSON schema (README, "JSON output")."""
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
        return out
