"""`--format sarif`: a SARIF 2.1.0 log for GitHub code scanning and other SARIF viewers.

One run. `tool.driver.rules` lists every jaxdoctor rule (so `ruleIndex` is stable from run to
run) with its summary, the "What it does" section and the whole doc from `rules/JDxxx.md` as help.
Each result has its rule, level, message and location; a fix becomes a SARIF `fix` with the
replacement text.

Locations: a path under the working directory is written relative to it with
`uriBaseId: %SRCROOT%` (the working directory, given in `originalUriBaseIds`); columns count
Unicode code points, as jaxdoctor's do. A notebook finding points at the line of the `.ipynb`
file that holds that line of the cell's source (so annotations land on it; the pass that read the
file put it in `Finding.quote`), the cell and its line are named in the message and in the
result's properties, and its fix is left out: a fix to a cell is not an edit of the JSON text.
"""

from __future__ import annotations

import functools
import json
import os
import re
from pathlib import Path, PurePath
from typing import Any, TextIO
from urllib.parse import quote

from jaxdoctor import __version__
from jaxdoctor.findings import Finding, Severity

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
VERSION = "2.1.0"
SRCROOT = "%SRCROOT%"

LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}
#: GitHub code scanning's own severity scale (`properties.problem.severity`).
PROBLEM_SEVERITY = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "recommendation"}


def _section(doc: str, heading: str) -> str | None:
    """The text under `## heading` of a rule doc, up to the next heading."""
    m = re.search(rf"^##\s+{re.escape(heading)}\s*$\n(.*?)(?=^#{{1,2}}\s|\Z)", doc, re.MULTILINE | re.DOTALL)
    if not m:
        return None
    text = " ".join(m.group(1).split())
    return text or None


@functools.cache
def _information_uri() -> str | None:
    """The project's home page from the installed package's metadata, if it declares one."""
    try:
        from importlib.metadata import PackageNotFoundError, metadata

        meta = metadata("jaxdoctor")
    except (ImportError, PackageNotFoundError):
        return None
    for entry in meta.get_all("Project-URL") or []:
        label, _, url = entry.partition(",")
        if label.strip().lower() in ("homepage", "home", "repository", "source") and url.strip():
            return url.strip()
    home = meta.get("Home-page")
    return home.strip() if home and home.strip() not in ("", "UNKNOWN") else None


def rule_descriptors() -> list[dict[str, Any]]:
    from jaxdoctor import registry
    from jaxdoctor.docs import read_doc

    out = []
    for code, rule in registry.all_rules().items():
        doc = read_doc(code)
        what = _section(doc, "What it does") if doc else None
        help_text = doc if doc else rule.summary + (f"\n\nFix: {rule.fix_title}" if rule.fix_title else "")
        tags = ["jax", rule.origin.value]
        descriptor: dict[str, Any] = {
            "id": code,
            "name": rule.name,
            "shortDescription": {"text": rule.summary},
            "fullDescription": {"text": what or rule.summary},
            "help": {"text": help_text, "markdown": help_text},
            "defaultConfiguration": {
                "enabled": bool(rule.default_enabled),
                "level": LEVEL.get(rule.severity, "warning"),
            },
            "properties": {
                "tags": tags,
                "precision": "high",
                "problem.severity": PROBLEM_SEVERITY.get(rule.severity, "warning"),
                "fix": rule.fix_applicability.value if rule.fix_applicability else None,
            },
        }
        if rule.fix_applicability is None:
            del descriptor["properties"]["fix"]
        out.append(descriptor)
    return out


def _artifact_location(path: str) -> dict[str, Any]:
    p = PurePath(path)
    if p.is_absolute():
        return {"uri": Path(path).as_uri()}
    return {"uri": quote(p.as_posix()), "uriBaseId": SRCROOT}


def _region(line: int, column: int, end_line: int, end_column: int) -> dict[str, int]:
    line, column = max(1, line), max(1, column)
    end_line, end_column = max((end_line, end_column), (line, column))
    return {"startLine": line, "startColumn": column, "endLine": end_line, "endColumn": end_column}


def _notebook_region(f: Finding) -> dict[str, int] | None:
    start = f.quote.file_start if f.quote is not None else None
    if start is None:
        return None
    end = f.quote.file_end
    if end is None or end[0] != start[0]:  # a span over several source strings: keep the start line
        return {"startLine": start[0], "startColumn": start[1]}
    return _region(start[0], start[1], end[0], end[1])


def _result(f: Finding, index: dict[str, int]) -> dict[str, Any]:
    message = f.message
    properties: dict[str, Any] = {"origin": f.origin.value}
    if f.cell is not None:
        message += f" (notebook cell {f.cell}, line {f.line})"
        region = _notebook_region(f)
        properties.update(cell=f.cell, cellLine=f.line, cellColumn=f.column)
    else:
        region = _region(f.line, f.column, f.end_line, f.end_column)
    physical: dict[str, Any] = {"artifactLocation": _artifact_location(f.path)}
    if region is not None:
        physical["region"] = region
    result: dict[str, Any] = {
        "ruleId": f.code,
        "level": LEVEL.get(f.severity, "warning"),
        "message": {"text": message},
        "locations": [{"physicalLocation": physical}],
    }
    if f.code in index:
        result["ruleIndex"] = index[f.code]
    if f.fix is not None and f.cell is None and f.fix.edits:
        result["fixes"] = [
            {
                "description": {"text": f.fix.title},
                "artifactChanges": [
                    {
                        "artifactLocation": _artifact_location(f.path),
                        "replacements": [
                            {
                                "deletedRegion": _region(e.line, e.column, e.end_line, e.end_column),
                                "insertedContent": {"text": e.content},
                            }
                            for e in f.fix.edits
                        ],
                    }
                ],
                "properties": {"applicability": f.fix.applicability.value},
            }
        ]
    if f.fix_title:
        properties["fixTitle"] = f.fix_title
    if f.details:
        properties["details"] = json.loads(json.dumps(dict(f.details), default=str))
    result["properties"] = properties
    return result


def sarif_log(findings: list[Finding]) -> dict[str, Any]:
    rules = rule_descriptors()
    index = {r["id"]: i for i, r in enumerate(rules)}
    driver: dict[str, Any] = {
        "name": "jaxdoctor",
        "version": __version__,
        "semanticVersion": __version__,
        "rules": rules,
    }
    uri = _information_uri()
    if uri:
        driver["informationUri"] = uri
    cwd = Path(os.getcwd()).as_uri().rstrip("/") + "/"
    return {
        "$schema": SCHEMA_URI,
        "version": VERSION,
        "runs": [
            {
                "tool": {"driver": driver},
                "originalUriBaseIds": {SRCROOT: {"uri": cwd}},
                "columnKind": "unicodeCodePoints",
                "results": [_result(f, index) for f in findings],
            }
        ],
    }


def render_sarif(findings: list[Finding], out: TextIO, **_options) -> None:
    json.dump(sarif_log(findings), out, indent=2)
    out.write("\n")
