"""The lint engine: for each file, gate → parse once → index → one batched walk → findings.

Per file: the text gate skips files that never mention jax/flax/equinox; libcst parses once;
`SemanticModel` indexes names and tracedness; then every enabled rule's `visit_*`/`leave_*`
methods run in a single walk. Positions (the expensive part of libcst metadata) are computed only
for files that have findings; suppression comments are read only then too. Each finding quotes
its line of the text, for the renderers. Reading a notebook instead is `static.notebook`'s.
"""

from __future__ import annotations

import ast
import fnmatch
import re
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterable, Mapping

import libcst as cst

from jaxdoctor import registry
from jaxdoctor.findings import Edit, Finding, Fix, Quote, Severity, unique
from jaxdoctor.source import SourceError, read_text, split_lines
from jaxdoctor.static.discovery import Candidate
from jaxdoctor.static.guard import TooDeeplyNested
from jaxdoctor.static.guard import parse_module as guarded_parse
from jaxdoctor.static.positions import positions as node_positions
from jaxdoctor.static.rule import FileContext, LintRule, Report
from jaxdoctor.static.model import SemanticModel
from jaxdoctor.static.suppress import ALL, suppressing, suppressions, unused_directives
from jaxdoctor.static.walker import walk

#: Files that never mention these are not parsed (torchfix's MARKER idea).
GATE = re.compile(r"\b(?:jax|flax|equinox)\b")

PARSE_ERROR = "JD001"
UNUSED_SUPPRESSION = "JD002"


def static_rules(codes: Iterable[str]) -> list[type[LintRule]]:
    rules = registry.all_rules()
    return [rules[c] for c in sorted(codes) if c in rules and issubclass(rules[c], LintRule)]


def parse_error(path: str, message: str, line: int = 1, column: int = 1, cell: int | None = None) -> Finding:
    return registry.all_rules()[PARSE_ERROR].finding(message, path, line, column, line, column, cell=cell)


_HANDLERS: dict[type, list[tuple[str, type, bool]]] = {}


def _handler_names(rule_cls: type[LintRule]) -> list[tuple[str, type, bool]]:
    """(method name, node class, is_leave) for a rule class, computed once per class."""
    found = _HANDLERS.get(rule_cls)
    if found is None:
        found = []
        for attr in dir(rule_cls):
            for prefix, leaving in (("visit_", False), ("leave_", True)):
                if attr.startswith(prefix):
                    node_cls = getattr(cst, attr[len(prefix):], None)
                    if not (isinstance(node_cls, type) and issubclass(node_cls, cst.CSTNode)):
                        raise TypeError(f"{rule_cls.__name__}.{attr}: no libcst node named {attr[len(prefix):]}")
                    found.append((attr, node_cls, leaving))
        _HANDLERS[rule_cls] = found
    return found


@dataclass
class FileResult:
    findings: list[Finding] = field(default_factory=list)
    parsed: bool = False  # False when gated out or unreadable


def lint_source(source: str, path: str, rules: list[type[LintRule]],
                options: Mapping[str, str] | None = None) -> FileResult:
    """Lint Python source text. `path` is only used in findings; `options` reach rules as
    `ctx.options` (see `jaxdoctor.static.options.run_options`). Each finding quotes its line."""
    result = _lint(source, path, rules, options)
    if result.findings:
        result.findings = quoted(result.findings, source)
    return result


def quoted(findings: list[Finding], text: str) -> list[Finding]:
    """The findings, each with the text of its first line of `text` as its quote."""
    lines = split_lines(text)
    return [replace(f, quote=Quote.of(f, lines)) for f in findings]


def _lint(source: str, path: str, rules: list[type[LintRule]],
          options: Mapping[str, str] | None) -> FileResult:
    want_unused = any(r.code == UNUSED_SUPPRESSION for r in rules)
    if not GATE.search(source):
        # no rule runs on this file, so any suppression of an enabled code suppresses nothing
        return FileResult(_unused_suppressions(source, path, rules, set()) if want_unused else [])
    try:
        module = guarded_parse(source)
    except cst.ParserSyntaxError as e:
        return FileResult([_syntax_error(path, source, e)])
    except TooDeeplyNested as e:
        return FileResult([parse_error(path, str(e))])
    except RecursionError:
        return FileResult([parse_error(path, "too deeply nested to parse")])
    except Exception as e:  # libcst can raise other errors on exotic input
        return FileResult([parse_error(path, f"cannot parse: {type(e).__name__}: {e}")])
    try:
        findings, used = _check(source, path, module, rules, options)
        if want_unused:
            findings += _unused_suppressions(source, path, rules, used)
        return FileResult(findings, parsed=True)
    except RecursionError:
        return FileResult([parse_error(path, "too deeply nested to analyse")], parsed=True)


def _syntax_error(path: str, source: str, error: cst.ParserSyntaxError) -> Finding:
    """JD001 for a file libcst cannot parse. CPython's parser, asked only now, names the line
    and the mistake better (libcst's native parser can point a line off, and says "expected one
    of ..."); libcst's own message is kept for syntax CPython accepts but libcst does not."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ast.parse(source)
        except SyntaxError as e:
            if e.lineno:
                return parse_error(path, f"syntax error: {e.msg}", e.lineno, max(1, e.offset or 1))
        except (RecursionError, MemoryError, ValueError):
            pass
    message = " ".join(str(getattr(error, "message", str(error).splitlines()[0])).split())
    return parse_error(path, f"syntax error: {message}", error.editor_line, error.editor_column)


def _check(source: str, path: str, module: cst.Module, rule_classes: list[type[LintRule]],
           options: Mapping[str, str] | None = None) -> tuple[list[Finding], set[tuple[int, str]]]:
    """The findings of one walk, and the (line, code) suppressions that silenced some."""
    semantic = SemanticModel(module)
    modules = set(semantic.names.aliases.values())
    active = [
        cls for cls in rule_classes
        if not cls.requires or any(m == r or m.startswith(r + ".") for m in modules for r in cls.requires)
    ]
    if not active:
        return [], set()
    ctx = FileContext(path, source, module, semantic, options)
    enter: dict[type, list] = {}
    leave: dict[type, list] = {}
    for cls in active:
        rule = cls(ctx)
        for attr, node_cls, leaving in _handler_names(cls):
            (leave if leaving else enter).setdefault(node_cls, []).append(getattr(rule, attr))
    walk(module, enter, leave, ctx.ancestors)
    if not ctx.reports:
        return [], set()
    return _to_findings(ctx)


def _report_nodes(reports: list[Report]) -> Iterable[cst.CSTNode]:
    for report in reports:
        yield report.node
        if report.fix is not None:
            for old, _new in report.fix.replacements:
                yield old


def _to_findings(ctx: FileContext) -> tuple[list[Finding], set[tuple[int, str]]]:
    # positions of the reported nodes (and the nodes their fixes replace) only: see positions.py
    positions = node_positions(ctx.module, _report_nodes(ctx.reports))
    table = suppressions(ctx.source)
    out: list[Finding] = []
    used: set[tuple[int, str]] = set()
    for report in ctx.reports:
        rng = positions.get(report.node)
        if rng is None:
            continue
        line, col = rng.start.line, rng.start.column + 1
        end_line, end_col = rng.end.line, rng.end.column + 1
        code = report.rule.code
        silenced = suppressing(table, code, line, end_line) if table else []
        if silenced:
            used.update(silenced)
            continue
        out.append(report.rule.finding(report.message, ctx.path, line, col, end_line, end_col,
                                       fix_title=report.fix_title, fix=_to_fix(ctx, report, positions)))
    return unique(out), used


def _unused_suppressions(source: str, path: str, rules: list[type[LintRule]],
                         used: set[tuple[int, str]]) -> list[Finding]:
    """JD002 for each suppression comment that silenced nothing (or names unknown codes), with a
    safe fix that takes the unused codes out (the whole comment when none is left)."""
    enabled = frozenset(r.code for r in rules)
    found = unused_directives(source, used, enabled, frozenset(registry.all_rules()))
    if not found:
        return []
    rule = registry.all_rules()[UNUSED_SUPPRESSION]
    lines = source.splitlines()
    out = []
    for u in found:
        d = u.directive
        text = lines[d.line - 1] if d.line <= len(lines) else ""
        start = d.comment_start
        if not u.replacement:  # the whole comment goes, with the blanks before it
            while start > 0 and text[start - 1] in " \t":
                start -= 1
        spelled = text[d.start:d.end]
        parts = []
        if u.unused == (ALL,):
            parts.append(f"`{spelled}` suppresses nothing: no finding on this line")
        elif u.unused:
            codes = ", ".join(f"`{c}`" for c in u.unused)
            parts.append(f"`{spelled}` suppresses nothing: no {codes} finding on this line")
        if u.unknown:
            codes = ", ".join(f"`{c}`" for c in u.unknown)
            what = "unknown rule code" + ("s" if len(u.unknown) > 1 else "")
            parts.append(f"and names {what} {codes}" if parts else f"`{spelled}` names {what} {codes}")
        fix = Fix(rule.fix_title or "", rule.fix_applicability,
                  (Edit(d.line, start + 1, d.line, d.comment_end + 1, u.replacement),))
        out.append(rule.finding(" ".join(parts), path, d.line, d.start + 1, d.line, d.end + 1, fix=fix))
    return out


def _to_fix(ctx: FileContext, report: Report, positions) -> Fix | None:
    nf = report.fix
    if nf is None:
        return None
    edits = []
    for old, new in nf.replacements:
        rng = positions.get(old)
        if rng is None:
            return None
        content = new if isinstance(new, str) else ctx.module.code_for_node(new)
        edits.append(Edit(rng.start.line, rng.start.column + 1, rng.end.line, rng.end.column + 1, content))
    return Fix(nf.title, nf.applicability, tuple(edits))


def codes_for(display: str, codes: frozenset[str], per_file_ignores: dict[str, frozenset[str]]) -> frozenset[str]:
    """Enabled codes for one file, after `per-file-ignores`."""
    name = Path(display).name
    for pattern, ignored in per_file_ignores.items():
        if fnmatch.fnmatchcase(display, pattern) or fnmatch.fnmatchcase(name, pattern):
            codes = codes - ignored
    return codes


def check_file(candidate: Candidate, codes: frozenset[str],
               options: Mapping[str, str] | None = None) -> FileResult:
    """Read and lint one Python file; an unreadable or undecodable file is a JD001 finding.
    (A notebook is `static.notebook.check_notebook`'s: the runner chooses.)"""
    try:
        source = read_text(candidate.path)
    except SourceError as e:
        if PARSE_ERROR not in codes:
            return FileResult()
        return FileResult([parse_error(candidate.display, str(e))])
    result = lint_source(source, candidate.display, static_rules(codes), options)
    result.findings = [f for f in result.findings if f.code in codes]
    return result


def sort_findings(findings: Iterable[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: f.sort_key)


__all__ = ["check_file", "lint_source", "codes_for", "static_rules", "sort_findings", "Severity"]
