"""`--format text`: code, message, location, the source line with a caret, the fix hint.

Colour only on a terminal (rich decides; NO_COLOR and FORCE_COLOR are honoured).
"""

from __future__ import annotations

import linecache
from typing import TextIO

from rich.console import Console
from rich.markup import escape
from rich.text import Text

from jaxdoctor.findings import Finding, Severity

_STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "bold yellow", Severity.INFO: "bold cyan"}


def _source_line(f: Finding, sources: dict[str, list[str]] | None) -> str | None:
    """The finding's line: from `sources` (keyed by path, or `path:cell N` for a notebook cell),
    else from the file (a notebook's cell is read from the `.ipynb`: linecache can't see it)."""
    key = f.path if f.cell is None else f"{f.path}:cell {f.cell}"
    lines: list[str] | None = None
    if sources is not None and key in sources:
        lines = sources[key]
    elif f.cell is not None:
        from jaxdoctor.static.notebook import cell_lines

        lines = cell_lines(f.path, f.cell)
    if lines is not None:
        return lines[f.line - 1] if 0 < f.line <= len(lines) else None
    line = linecache.getline(f.path, f.line)
    return line.rstrip("\r\n") if line else None


def render_text(
    findings: list[Finding],
    out: TextIO,
    *,
    summary: bool = True,
    sources: dict[str, list[str]] | None = None,
    files: int | None = None,
    **_options,
) -> None:
    console = Console(file=out, highlight=False, soft_wrap=True, emoji=False)
    for f in findings:
        head = Text()
        head.append(f.location(), style="bold")
        head.append(": ")
        head.append(f.code, style=_STYLE.get(f.severity, "bold"))
        head.append(f" [{f.name}] ", style="dim")
        head.append(f.message)
        console.print(head)
        line = _source_line(f, sources)
        if line is not None and line.strip():
            expanded = line.expandtabs(4)
            width = len(str(f.line))
            col = max(1, f.column)
            start = len(line[: col - 1].expandtabs(4))
            if f.end_line == f.line and f.end_column > f.column:
                span = len(line[col - 1 : f.end_column - 1].expandtabs(4))
            else:
                span = max(1, len(expanded.rstrip()) - start)
            console.print(f"{' ' * width} [blue]|[/]")
            console.print(f"[blue]{f.line}[/] [blue]|[/] {escape(expanded)}")
            console.print(f"{' ' * width} [blue]|[/] {' ' * start}[{_STYLE.get(f.severity, 'bold')}]{'^' * max(1, span)}[/]")
        for key, value in f.details.items():
            if key in ("notes",) and isinstance(value, list):
                for note in value:
                    console.print(f"{' ' * len(str(f.line))} [blue]=[/] note: {escape(str(note))}")
        if f.fix_title:
            applicable = f" ({f.fix.applicability.value} fix available)" if f.fix else ""
            console.print(f"{' ' * len(str(f.line))} [blue]=[/] [green]help[/]: {escape(f.fix_title)}{applicable}")
        console.print()
    if summary:
        if findings:
            n = len(findings)
            fixable = sum(1 for f in findings if f.fix is not None)
            msg = f"Found {n} problem{'s' if n != 1 else ''}"
            if fixable:
                msg += f" ({fixable} fixable with `--fix`"
                msg += ")"
            console.print(f"[bold]{msg}.[/]")
        else:
            checked = f" in {files} file{'s' if files != 1 else ''}" if files is not None else ""
            console.print(f"[bold green]All checks passed{checked}.[/]")
