"""Editor buffers → findings → LSP diagnostics, code actions and hover text.

Positions: findings count 1-based lines and code-point columns; LSP counts 0-based lines and
the negotiated position encoding (UTF-16 unless the client offers better), converted with the
document's own lines. A notebook's code cells are linted together (an import in cell 1 is known
in cell 3), each finding lands on its cell's document with cell-relative positions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from lsprotocol import types as lsp

from jaxdoctor.findings import Applicability, Edit, Finding, Severity
from jaxdoctor.static.discovery import Candidate
from jaxdoctor.static.runner import check_text, fix_text
from jaxdoctor.static.noqa import NOT_SUPPRESSIBLE, noqa_edits
from jaxdoctor.static.plan import FilePlan, Planner

SOURCE = "jaxdoctor"
FIX_ALL_KIND = "source.fixAll.jaxdoctor"
SEVERITY = {
    Severity.ERROR: lsp.DiagnosticSeverity.Error,
    Severity.WARNING: lsp.DiagnosticSeverity.Warning,
    Severity.INFO: lsp.DiagnosticSeverity.Information,
}

#: (lines of the document, lsp.Position in code points) → lsp.Position in client units
ToClient = Callable[[Sequence[str], lsp.Position], lsp.Position]


@dataclass
class Linted:
    """The findings of one document (a file, or one cell), with the text they refer to."""

    uri: str
    text: str
    version: int | None
    findings: list[Finding] = field(default_factory=list)

    @property
    def lines(self) -> list[str]:
        return self.text.splitlines(keepends=True) or [""]


@dataclass
class Cell:
    uri: str
    text: str
    version: int | None


def plan_for(planner: Planner, path: Path | None, display: str) -> FilePlan:
    """The rules and options for a document: those of its file's own configuration."""
    target = path if path is not None else Path.cwd() / "untitled.py"
    return planner.plan(Candidate(target, display, explicit=True), revalidate=True)


def lint_file(uri: str, text: str, version: int | None, path: Path | None, display: str,
              planner: Planner) -> Linted:
    plan = plan_for(planner, path, display)
    findings = check_text(text, display, plan.codes, plan.options).findings
    return Linted(uri, text, version, findings)


def notebook_json(cells: Sequence[Cell]) -> str:
    """The code cells as a minimal notebook, for the notebook linter (magics are blanked there)."""
    return json.dumps({
        "cells": [{"cell_type": "code", "source": c.text, "metadata": {}, "outputs": [],
                   "execution_count": None} for c in cells],
        "metadata": {"language_info": {"name": "python"}},
        "nbformat": 4, "nbformat_minor": 5,
    })


def lint_notebook(cells: Sequence[Cell], path: Path | None, display: str, planner: Planner) -> list[Linted]:
    """One `Linted` per code cell (every cell is published, so fixed cells get cleared)."""
    plan = plan_for(planner, path, display)
    out = [Linted(c.uri, c.text, c.version) for c in cells]
    if not cells:
        return out
    findings = check_text(notebook_json(cells), display, plan.codes, plan.options, notebook=True).findings
    for f in findings:
        index = (f.cell or 1) - 1
        if 0 <= index < len(out):
            out[index].findings.append(f)
    return out


# ----------------------------------------------------------------------------- conversion


def to_range(lines: Sequence[str], line: int, column: int, end_line: int, end_column: int,
             to_client: ToClient) -> lsp.Range:
    start = to_client(lines, lsp.Position(max(0, line - 1), max(0, column - 1)))
    end = to_client(lines, lsp.Position(max(0, end_line - 1), max(0, end_column - 1)))
    if (end.line, end.character) < (start.line, start.character):
        end = start
    return lsp.Range(start, end)


def rule_link(code: str) -> str | None:
    from jaxdoctor.docs import doc_path

    path = doc_path(code)
    return path.resolve().as_uri() if path.is_file() else None


def diagnostic(f: Finding, doc: Linted, to_client: ToClient) -> lsp.Diagnostic:
    link = rule_link(f.code)
    message = f.message + (f"\nhelp: {f.fix_title}" if f.fix_title else "")
    return lsp.Diagnostic(
        range=to_range(doc.lines, f.line, f.column, f.end_line, f.end_column, to_client),
        message=message,
        severity=SEVERITY.get(f.severity, lsp.DiagnosticSeverity.Warning),
        code=f.code,
        code_description=lsp.CodeDescription(href=link) if link else None,
        source=SOURCE,
        data={"name": f.name, "fixable": f.fix.applicability.value if f.fix and f.fix.edits else None},
    )


def text_edits(edits: Sequence[Edit], doc: Linted, to_client: ToClient) -> list[lsp.TextEdit]:
    return [lsp.TextEdit(to_range(doc.lines, e.line, e.column, e.end_line, e.end_column, to_client), e.content)
            for e in edits]


def _overlaps(a: lsp.Range, b: lsp.Range) -> bool:
    return (a.start.line, a.start.character) <= (b.end.line, b.end.character) and \
        (b.start.line, b.start.character) <= (a.end.line, a.end.character)


def findings_at(doc: Linted, rng: lsp.Range, to_client: ToClient) -> list[tuple[Finding, lsp.Diagnostic]]:
    out = []
    for f in doc.findings:
        d = diagnostic(f, doc, to_client)
        if _overlaps(d.range, rng):
            out.append((f, d))
    return out


def code_actions(doc: Linted, rng: lsp.Range, to_client: ToClient, *, only: Sequence[str] | None,
                 fix_all: Callable[[], dict[str, list[lsp.TextEdit]] | None]) -> list[lsp.CodeAction]:
    """Quick fixes for the findings under `rng` (safe ones preferred, unsafe ones labelled),
    "ignore this finding" for each, and "fix all safe fixes" for the document."""

    def wanted(kind: str) -> bool:
        return not only or any(kind == k or kind.startswith(k + ".") for k in only)

    actions: list[lsp.CodeAction] = []
    if wanted(lsp.CodeActionKind.QuickFix):
        here = findings_at(doc, rng, to_client)
        for f, d in here:
            if f.fix is not None and f.fix.edits:
                safe = f.fix.applicability is Applicability.SAFE
                title = f"{f.fix.title} ({f.code})" if safe else f"{f.fix.title} ({f.code}, unsafe: may change behaviour)"
                actions.append(lsp.CodeAction(
                    title=title, kind=lsp.CodeActionKind.QuickFix, diagnostics=[d], is_preferred=safe,
                    edit=lsp.WorkspaceEdit(changes={doc.uri: text_edits(f.fix.edits, doc, to_client)}),
                ))
        for f, d in here:
            if f.code in NOT_SUPPRESSIBLE:
                continue
            edits = noqa_edits(doc.text, [f])
            if edits:
                actions.append(lsp.CodeAction(
                    title=f"Ignore {f.code} on this line (# jaxdoctor: ignore[{f.code}])",
                    kind=lsp.CodeActionKind.QuickFix, diagnostics=[d],
                    edit=lsp.WorkspaceEdit(changes={doc.uri: text_edits(edits, doc, to_client)}),
                ))
    has_safe = any(f.fix is not None and f.fix.edits and f.fix.applicability is Applicability.SAFE
                   for f in doc.findings)
    if has_safe and wanted(FIX_ALL_KIND):  # also asked for by `source` and `source.fixAll`
        changes = fix_all()
        if changes:
            actions.append(lsp.CodeAction(
                title="Fix all safe jaxdoctor findings in this file",
                kind=FIX_ALL_KIND, edit=lsp.WorkspaceEdit(changes=changes),
            ))
    return actions


def whole_replacement(old: str, new: str, doc: Linted, to_client: ToClient) -> list[lsp.TextEdit]:
    """One edit replacing the whole document (what formatters do): old text → new text."""
    lines = doc.lines
    last = len(lines) - 1
    end = to_client(lines, lsp.Position(last, len(lines[last]))) if lines else lsp.Position(0, 0)
    if old.endswith(("\n", "\r")):
        end = lsp.Position(len(lines), 0)
    return [lsp.TextEdit(lsp.Range(lsp.Position(0, 0), end), new)]


def fix_all_file(doc: Linted, path: Path | None, display: str, planner: Planner,
                 to_client: ToClient) -> dict[str, list[lsp.TextEdit]] | None:
    plan = plan_for(planner, path, display)
    result = fix_text(doc.text, display, plan.codes, options=plan.options)
    if result.source == doc.text:
        return None
    return {doc.uri: whole_replacement(doc.text, result.source, doc, to_client)}


def fix_all_notebook(cells: Sequence[Cell], path: Path | None, display: str, planner: Planner,
                     to_client: ToClient) -> dict[str, list[lsp.TextEdit]] | None:
    from jaxdoctor.static.notebook import NotebookError, parse_notebook

    plan = plan_for(planner, path, display)
    before = notebook_json(cells)
    result = fix_text(before, display, plan.codes, options=plan.options, notebook=True)
    if result.source == before:
        return None
    try:
        fixed = parse_notebook(result.source).cells
    except NotebookError:
        return None
    changes: dict[str, list[lsp.TextEdit]] = {}
    for cell, new in zip(cells, fixed):
        if new.source != cell.text:
            doc = Linted(cell.uri, cell.text, cell.version)
            changes[cell.uri] = whole_replacement(cell.text, new.source, doc, to_client)
    return changes or None


def hover(doc: Linted, position: lsp.Position, to_client: ToClient) -> lsp.Hover | None:
    """The rule doc of each finding under the cursor."""
    from jaxdoctor.docs import read_doc

    point = lsp.Range(position, position)
    parts, seen = [], set()
    rng = None
    for f, d in findings_at(doc, point, to_client):
        if f.code in seen:
            continue
        seen.add(f.code)
        rng = rng or d.range
        parts.append(read_doc(f.code) or f"# {f.name} ({f.code})\n\n{f.message}")
    if not parts:
        return None
    return lsp.Hover(contents=lsp.MarkupContent(kind=lsp.MarkupKind.Markdown, value="\n\n---\n\n".join(parts)),
                     range=rng)
