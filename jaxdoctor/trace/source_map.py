"""Equation → the user's own file, line and column.

An equation's traceback runs through jax, flax, equinox, optax, the stdlib and the user's code;
the user's line is its innermost frame in a file `jaxdoctor.trace.frames.is_user_file` accepts.
Equations JAX emitted with no user frame (a batching rule's helper, a library-only jaxpr) fall back
to the equation that contains them (`parents`, innermost first).
"""

from __future__ import annotations

import ast
import functools
import linecache
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from jaxdoctor.trace import jax_internals as ji
from jaxdoctor.trace.frames import is_user_file


@dataclass(frozen=True)
class SourceLocation:
    path: str
    line: int
    column: int
    end_line: int
    end_column: int
    function: str
    first_line: int  # the function's `def` (or first decorator) line

    @classmethod
    def of_frame(cls, fr: ji.SrcFrame) -> SourceLocation:
        if fr.column <= 1 and fr.end_column <= 1 and fr.end_line <= fr.line:
            # no column recorded (a traceback JAX rebuilt): the statement, not column 1 under the indent
            return cls(fr.file, fr.line, 1, fr.line, 1, fr.function, fr.first_line).at_line(fr.line)
        end_line = max(fr.end_line, fr.line)
        end_col = (
            fr.end_column
            if end_line > fr.line or fr.end_column > fr.column
            else fr.column
        )
        return cls(
            fr.file, fr.line, fr.column, end_line, end_col, fr.function, fr.first_line
        )

    @classmethod
    def at(cls, path: str, line: int, function: str = "") -> SourceLocation:
        """A whole source line (for a location known only by file and line)."""
        return cls(path, line, 1, line, 1, function, line).at_line(line)

    def at_line(self, line: int) -> SourceLocation:
        """The same file at another line, spanning that line's text."""
        text = linecache.getline(self.path, line)
        col = len(text) - len(text.lstrip()) + 1 if text.strip() else 1
        end = len(text.rstrip("\n")) + 1 if text.strip() else col
        return SourceLocation(
            self.path, line, col, line, end, self.function, self.first_line
        )


def user_frames(frames: Iterable[ji.SrcFrame]) -> list[ji.SrcFrame]:
    return [fr for fr in frames if is_user_file(fr.file)]


def user_frames_of(eqn: Any) -> list[ji.SrcFrame]:
    """The user's frames of an equation's traceback, innermost first."""
    return user_frames(ji.eqn_frames(eqn))


def locate(eqn: Any, parents: Sequence[Any] = ()) -> SourceLocation | None:
    """The user's innermost line that produced `eqn`; else that of the nearest parent equation."""
    for e in (eqn, *parents):
        frs = user_frames_of(e)
        if frs:
            return SourceLocation.of_frame(frs[0])
    return None


def locate_frames(frames: Sequence[ji.SrcFrame]) -> SourceLocation | None:
    frs = user_frames(frames)
    return SourceLocation.of_frame(frs[0]) if frs else None


# --- source text helpers (for rules whose right line is not the innermost frame) ---------------


@functools.lru_cache(maxsize=256)
def parse_file(path: str) -> ast.Module | None:
    """The `ast` of a user's file as the program sees it (linecache), once per file; None without
    source or when it does not parse."""
    lines = linecache.getlines(path)
    if not lines:
        return None
    try:
        return ast.parse("".join(lines), filename=path)
    except (SyntaxError, ValueError):
        return None


def source_line(path: str, line: int) -> str:
    return linecache.getline(path, line)


def enclosing_loop_line(path: str, line: int) -> int | None:
    """Line of the innermost Python `for`/`while` statement whose body contains `line`."""
    tree = parse_file(path)
    if tree is None:
        return None
    best: ast.stmt | None = None
    for node in ast.walk(tree):
        if isinstance(node, (ast.For, ast.While, ast.AsyncFor)) and node.body:
            start = node.body[0].lineno
            end = getattr(node, "end_lineno", None) or start
            if start <= line <= end and (best is None or node.lineno > best.lineno):
                best = node
        elif isinstance(
            node, (ast.ListComp, ast.GeneratorExp, ast.SetComp, ast.DictComp)
        ):
            start, end = node.lineno, getattr(node, "end_lineno", node.lineno)
            if start <= line <= end and (best is None or node.lineno >= best.lineno):
                best = node  # type: ignore[assignment]
    return best.lineno if best is not None else None


def decorator_line_mentioning(path: str, def_line: int, word: str) -> int | None:
    """The decorator line of the function defined at `def_line` (co_firstlineno) mentioning `word`."""
    tree = parse_file(path)
    if tree is None:
        return None
    for node in ast.walk(tree):
        if (
            isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.decorator_list
        ):
            first = min(d.lineno for d in node.decorator_list)
            if first == def_line or node.lineno == def_line:
                src = "".join(linecache.getlines(path))
                for d in node.decorator_list:
                    if word in (ast.get_source_segment(src, d) or ""):
                        return d.lineno
    return None


def call_line_mentioning(
    path: str, near_line: int, word: str, name: str | None = None
) -> int | None:
    """The nearest line at or before `near_line` whose call mentions `word` (and `name`, if given)."""
    tree = parse_file(path)
    if tree is None:
        return None
    src = "".join(linecache.getlines(path))
    best = None
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.lineno <= near_line:
            seg = ast.get_source_segment(src, node.func) or ""
            if not seg.endswith(word):
                continue
            if name is not None:
                args = [ast.get_source_segment(src, a) or "" for a in node.args[:1]]
                if not args or args[0].split(".")[-1] != name:
                    continue
            if best is None or node.lineno > best:
                best = node.lineno
    return best


def called_from_user(eqn: Any) -> bool:
    """True when the first frame outside JAX itself is the user's (not flax, equinox, optax...)."""
    for fr in ji.eqn_frames(eqn):
        path = fr.file.replace("\\", "/")
        if "/jax/" in path or "/jaxlib/" in path:
            continue
        return is_user_file(fr.file)
    return False
