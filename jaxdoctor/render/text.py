"""`--format text`: code, message, location, the source line with a caret, the fix hint.

The source line is the one the finding quotes (`Finding.quote`): this never reads a file.
Colour only on a terminal (rich decides; NO_COLOR and FORCE_COLOR are honoured).
"""

from __future__ import annotations

from typing import TextIO

from rich.console import Console
from rich.markup import escape
from rich.text import Text

from jaxdoctor.findings import Finding, Severity

_STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "bold yellow", Severity.INFO: "bold cyan"}


def render_text(
    findings: list[Finding],
    out: TextIO,
    *,
    summary: bool = True,
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
        line = f.quote.text if f.quote is not None else None
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
