"""Helpers the sharding analyzers share: the user's line of an instruction (through the jaxpr's
`with_sharding_constraint` equations XLA never names), sizes, and building findings."""

from __future__ import annotations

import ast
from collections.abc import Mapping, Sequence
from typing import Any

from jaxdoctor.findings import Finding
from jaxdoctor.rule import TraceRule
from jaxdoctor.trace.analyzers._common import fmt_bytes
from jaxdoctor.trace.frames import is_user_file, source_line
from jaxdoctor.trace.sharding.program import Constraint, Program
from jaxdoctor.trace.source_map import SourceLocation, parse_file

__all__ = ["blame", "call_location", "constraint_location", "finding", "fmt_bytes", "jit_keyword_line", "snippet",
           "user_location", "where"]


def user_location(frames: Sequence[Any]) -> SourceLocation | None:
    """The innermost frame in the user's code, as a location."""
    for fr in frames:
        if is_user_file(fr.file) and fr.line > 0:
            return SourceLocation.of_frame(fr).at_line(fr.line)
    return None


def constraint_location(c: Constraint) -> SourceLocation | None:
    return user_location(c.frames)


def blame(prog: Program, frames: Sequence[Any]) -> tuple[SourceLocation | None, Constraint | None]:
    """Where an instruction of the compiled program comes from. XLA attributes what a
    `with_sharding_constraint` causes to the operation next to it (the one that makes or uses the
    constrained value): such an instruction is blamed on the constraint itself."""
    loc = user_location(frames)
    if loc is None:
        return None, None
    key = (loc.path, loc.line)
    for c in prog.constraints:
        cloc = constraint_location(c)
        if cloc is not None and (cloc.path, cloc.line) == key:
            return cloc, c
    for c in prog.constraints:
        cloc = constraint_location(c)
        if cloc is not None and key in c.neighbours:
            return cloc, c
    return loc, None


def call_location(prog: Program) -> SourceLocation | None:
    """The user's call that compiled the function; else its definition (abstract tracing)."""
    if prog.call_site is not None:
        path, line, function = prog.call_site
        return SourceLocation.at(path, line, function)
    if prog.def_site is not None:
        return SourceLocation.at(prog.def_site[0], prog.def_site[1])
    return None


def snippet(loc: SourceLocation | None) -> str:
    """The user's line in backticks for a message ("this line" when it is long or unknown)."""
    if loc is None:
        return "this line"
    text = source_line(loc.path, loc.line)
    return f"`{text}`" if text and len(text) <= 80 else "this line"


def where(prog: Program) -> str:
    """" on the simulated mesh data=4,model=2" when the doctor supplied the mesh."""
    return f" (on the simulated mesh `{prog.simulated}`)" if prog.simulated else ""


def finding(rule: type[TraceRule], loc: SourceLocation, message: str,
            details: Mapping[str, Any] | None = None, *, fix_title: str | None = None) -> Finding:
    return rule.finding(message, loc.path, loc.line, loc.column, loc.end_line, loc.end_column,
                        fix_title=fix_title, details=details)


def _passes(call: ast.AST, keywords: Sequence[str]) -> bool:
    return isinstance(call, ast.Call) and any(k.arg in keywords for k in call.keywords)


def jit_keyword_line(path: str, def_line: int, name: str, keywords: Sequence[str]) -> int:
    """The line that gives a jitted function one of `keywords` (`donate_argnums`, `out_shardings`):
    a decorator of the function `name` defined at `def_line`, else a call passing the function by
    name (`jax.jit(step, donate_argnums=0)`), else `def_line`."""
    tree = parse_file(path)
    if tree is None:
        return def_line
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name:
            first = min([d.lineno for d in node.decorator_list] + [node.lineno])
            if def_line in (first, node.lineno):
                for d in node.decorator_list:
                    if _passes(d, keywords):
                        return d.lineno
    # the function under other names: `halo = jax.shard_map(f_shard, ...)`, `g = partial(f, ...)`
    names = {name}
    for _ in range(3):
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name) \
                    and _wraps(node.value, names):
                names.add(node.targets[0].id)
    for node in ast.walk(tree):
        if _passes(node, keywords) and node.args and _wraps(node.args[0], names):
            return node.lineno
    return def_line


def _wraps(expr: ast.AST, names: set) -> bool:
    """`expr` is one of `names`, or a call whose first argument is one, to any depth:
    `jax.shard_map(f, ...)`, `jax.vmap(partial(f, k))`."""
    while isinstance(expr, ast.Call) and expr.args:
        expr = expr.args[0]
    return isinstance(expr, ast.Name) and expr.id in names
