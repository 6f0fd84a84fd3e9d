"""`--format github`: GitHub Actions workflow commands, one annotation per finding.

    ::error file=model.py,line=7,col=8,endLine=7,endColumn=19,title=JD101 python-control-flow-on-tracer::Python `if` ...

`::error` for errors, `::warning` for warnings, `::notice` for info. Values are escaped as the
Actions toolkit does (`@actions/core`, `command.ts`): in the message `%`, `\\r` and `\\n`; in
properties also `:` and `,`. A notebook finding is placed on the line of the `.ipynb` file that
holds that line of the cell (`Finding.quote`), and the message starts with `cell N, line L:`.
"""

from __future__ import annotations

from typing import TextIO

from jaxdoctor.findings import Finding, Severity

COMMAND = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice"}


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def _position(f: Finding) -> dict[str, int]:
    if f.cell is None:
        return {"line": f.line, "col": f.column, "endLine": f.end_line, "endColumn": f.end_column}
    start = f.quote.file_start if f.quote is not None else None
    if start is None:
        return {}
    end = f.quote.file_end
    if end is None or end[0] != start[0]:
        return {"line": start[0], "col": start[1]}
    return {"line": start[0], "col": start[1], "endLine": end[0], "endColumn": end[1]}


def annotation(f: Finding) -> str:
    props = {"file": f.path, **{k: str(v) for k, v in _position(f).items()}, "title": f"{f.code} {f.name}"}
    message = f.message
    if f.cell is not None:
        message = f"cell {f.cell}, line {f.line}: {message}"
    if f.fix_title:
        message += f"\nhelp: {f.fix_title}"
    joined = ",".join(f"{k}={escape_property(v)}" for k, v in props.items())
    return f"::{COMMAND.get(f.severity, 'warning')} {joined}::{escape_data(message)}"


def render_github(findings: list[Finding], out: TextIO, **_options) -> None:
    out.writelines(annotation(f) + "\n" for f in findings)
