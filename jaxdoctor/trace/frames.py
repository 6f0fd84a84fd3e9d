"""Which source files belong to the user, as opposed to JAX, its ecosystem, the stdlib or us.

Used by the error explainer (first user frame of a traceback) and by the jaxpr analyzers
(first user frame of an equation's source info), so both agree on what "the user's line" is.
"""

from __future__ import annotations

import functools
import io
import linecache
import os
import sys
import sysconfig
import tokenize

#: Top-level packages whose frames are never "the user's code".
LIBRARY_PACKAGES = frozenset(
    {
        "jax", "jaxlib", "flax", "equinox", "optax", "chex", "numpy", "scipy", "ml_dtypes",
        "opt_einsum", "jaxtyping", "typeguard", "orbax", "haiku", "absl", "typer", "click",
        "rich", "libcst", "jaxdoctor", "_pytest", "pytest", "pluggy", "runpy", "importlib",
    }
)


@functools.cache
def _library_roots() -> tuple[str, ...]:
    roots = set()
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        path = sysconfig.get_paths().get(key)
        if path:
            roots.add(os.path.realpath(path))
    roots.add(os.path.realpath(os.path.dirname(os.__file__)))
    return tuple(sorted(roots))


def _package_of(path: str) -> str | None:
    for root in _library_roots():
        if path.startswith(root + os.sep):
            rest = path[len(root) + 1 :]
            return rest.split(os.sep, 1)[0].removesuffix(".py")
    return None


@functools.cache
def is_user_file(filename: str) -> bool:
    """True for a file the user wrote: not a library, not the stdlib, not jaxdoctor itself."""
    if not filename or (filename.startswith("<") and filename not in ("<stdin>", "<string>")):
        return False
    path = os.path.realpath(filename)
    here = os.path.realpath(os.path.dirname(os.path.dirname(__file__)))
    if path.startswith(here + os.sep):
        return False
    if _package_of(path) is not None:
        # Anything installed in site-packages or the stdlib is a library, whatever its name.
        return False
    # A source checkout of a library (e.g. jax built from source) outside site-packages.
    parts = path.split(os.sep)
    return not any(
        part in LIBRARY_PACKAGES and os.path.isfile(os.path.join(os.sep.join(parts[: i + 1]), "__init__.py"))
        for i, part in enumerate(parts[:-1])
    )


@functools.cache
def is_jaxdoctor_file(filename: str) -> bool:
    """A file of jaxdoctor itself (its own checks jit small helpers while a program runs)."""
    here = os.path.realpath(os.path.dirname(os.path.dirname(__file__)))
    return os.path.realpath(filename).startswith(here + os.sep)


def user_frames_on_stack(skip: int = 2) -> list[tuple[str, str, int]]:
    """(file, qualname, line) of the user's frames now on the Python stack, innermost first."""
    out = []
    f = sys._getframe(skip)
    while f is not None:
        code = f.f_code
        if is_user_file(code.co_filename):
            out.append((code.co_filename, getattr(code, "co_qualname", code.co_name), f.f_lineno))
        f = f.f_back
    return out


def line_span(path: str, line: int) -> tuple[str, int, int, int, int]:
    """(path, line, column, line, end column) of a whole statement line, from its indentation."""
    text = linecache.getline(path, line)
    col = len(text) - len(text.lstrip()) + 1 if text.strip() else 1
    end = len(text.rstrip("\n")) + 1 if text.strip() else col
    return path, line, col, line, end


def innermost_user_line(skip: int = 2) -> tuple[str, int] | None:
    """(file, line) of the innermost user frame on the stack (cheap: no positions)."""
    f = sys._getframe(skip)
    while f is not None:
        if is_user_file(f.f_code.co_filename):
            return f.f_code.co_filename, f.f_lineno
        f = f.f_back
    return None


@functools.lru_cache(maxsize=1024)
def _positions(code) -> tuple:  # noqa: ANN001 - a code object
    return tuple(code.co_positions())


def user_call_site(skip: int = 2) -> tuple[str, int, int, int, int] | None:
    """(file, line, column, end_line, end_column) of the expression the innermost user frame on
    the stack is running (1-based; the whole statement when the position is unknown)."""
    f = sys._getframe(skip)
    while f is not None and not is_user_file(f.f_code.co_filename):
        f = f.f_back
    if f is None:
        return None
    line, col, end_line, end_col = f.f_lineno, None, None, None
    try:
        positions = _positions(f.f_code)
        pos = positions[f.f_lasti // 2] if f.f_lasti >= 0 else None
    except (AttributeError, IndexError):  # Python < 3.11
        pos = None
    if pos is not None and pos[0] == line and pos[2] is not None and pos[3] is not None:
        col, end_line, end_col = pos[2] + 1, pos[1], pos[3] + 1
    if col is None:
        text = linecache.getline(f.f_code.co_filename, line)
        col = len(text) - len(text.lstrip()) + 1 if text.strip() else 1
        end_line, end_col = line, len(text.rstrip("\n")) + 1 if text.strip() else col
    return f.f_code.co_filename, line, col, end_line or line, end_col


def source_line(path: str, line: int) -> str:
    """The code of a user's line for a message: stripped, without its trailing comment."""
    text = linecache.getline(path, line).strip()
    if "#" not in text:
        return text
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.type == tokenize.COMMENT:
                return text[: tok.start[1]].rstrip()
    except (tokenize.TokenError, SyntaxError):  # an unclosed bracket: the line is partial
        pass
    return text
