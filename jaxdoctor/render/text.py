"""`--format text`: code, message, location, the source line with a caret, the fix hint.

The source line is the one the finding quotes (`Finding.quote`): this never reads a file.
Colour only on a terminal (rich decides; NO_COLOR and FORCE_COLOR are honoured).
"""

from __future__ import annotations

from typing import TextIO

from rich.console import Console
from rich.markup import escape
from rich.text import Text

from jaxdoctor.findings import Applicability, Finding, Severity
from jaxdoctor.render.summary import fixable_phrase

_STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "bold yellow", Severity.INFO: "bold cyan"}


def _context(f: Finding) -> dict[int, str]:
    """Line number → text of the lines the finding quotes (its span and its fix's)."""
    q = f.quote
    if q is None or not q.context:
        return {}
    return {q.context_first + i: line for i, line in enumerate(q.context)}


def fix_preview(f: Finding, lines: dict[int, str]) -> tuple[int, list[str], list[str]] | None:
    """(first line, old lines, new lines) of the text the finding's fix changes, or None."""
    if f.fix is None or not f.fix.edits:
        return None
    first = min(e.line for e in f.fix.edits)
    last = max(e.end_line for e in f.fix.edits)
    if any(n not in lines for n in range(first, last + 1)):
        return None
    old = [lines[n] for n in range(first, last + 1)]
    starts = [0]
    for line in old:
        starts.append(starts[-1] + len(line) + 1)
    text = "\n".join(old)
    spans = []
    for e in f.fix.edits:
        begin = starts[e.line - first] + e.column - 1
        end = starts[e.end_line - first] + e.end_column - 1
        if not 0 <= begin <= end <= len(text):
            return None
        spans.append((begin, end, e.content))
    spans.sort()
    out, pos = [], 0
    for begin, end, content in spans:
        if begin < pos:
            return None
        out.append(text[pos:begin])
        out.append(content)
        pos = end
    out.append(text[pos:])
    new = "".join(out).split("\n")
    if new == [""] and old != [""]:
        new = []
    return first, old, new


def render_text(
    findings: list[Finding],
    out: TextIO,
    *,
    summary: bool = True,
    files: int | None = None,
    show_fixes: bool = False,
    failure: str | None = None,
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
        if show_fixes:
            _print_preview(console, f)
        console.print()
    if summary:
        if failure:  # never "All checks passed" after the program failed
            n = len(findings)
            found = f"Found {n} problem{'s' if n != 1 else ''}; the" if findings else "The"
            console.print(f"[bold red]{escape(f'{found} run failed: {failure}')}.[/]")
        elif findings:
            n = len(findings)
            msg = f"Found {n} problem{'s' if n != 1 else ''}{fixable_phrase(findings)}"
            console.print(f"[bold]{escape(msg)}.[/]")
        else:
            checked = f" in {files} file{'s' if files != 1 else ''}" if files is not None else ""
            console.print(f"[bold green]All checks passed{checked}.[/]")


def _print_preview(console: Console, f: Finding) -> None:
    """`--show-fixes`: the lines the fix changes, as `-` old / `+` new."""
    preview = fix_preview(f, _context(f)) if f.fix is not None else None
    if preview is None:
        return
    first, old, new = preview
    width = len(str(first + max(len(old), len(new))))
    label = "fix" if f.fix is None or f.fix.applicability is Applicability.SAFE else "unsafe fix"
    console.print(f"{' ' * width} [blue]|[/] [dim]{label}:[/]")
    for i, line in enumerate(old):
        console.print(f"[blue]{first + i:>{width}}[/] [red]-[/] [red]{escape(line.expandtabs(4))}[/]")
    for i, line in enumerate(new):
        console.print(f"[blue]{first + i:>{width}}[/] [green]+[/] [green]{escape(line.expandtabs(4))}[/]")
