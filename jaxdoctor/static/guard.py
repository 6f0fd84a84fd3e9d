"""`parse_module`: libcst's parser, behind a cheap check for input that would crash or stall it.

libcst's native parser recurses on nesting: measured with libcst 1.9, ~1,000-2,000 nested
brackets (`((((...` or `a[a[a[...`) kill the process with a segmentation fault, 10,000 nested
`lambda:` too, and 3,000 unary operators take 6 s (quadratic). CPython's own parser refuses all
of these in milliseconds ("too many nested parentheses", "too complex", RecursionError), so such
a file is not runnable Python anyway. A fast text scan decides whether a file *could* be that
deep; only then is it parsed with CPython first, and rejected with CPython's message if CPython
rejects it for its depth. Every other file goes straight to libcst (real code never trips it).
"""

from __future__ import annotations

import ast
import itertools
import re
import threading
import warnings

import libcst as cst
from libcst._nodes.base import CSTNode  # its __post_init__ validates every node

#: Bracket depth from which CPython is asked first (CPython's own limit is 200).
MAX_BRACKET_DEPTH = 150
_NOT_BRACKET = re.compile(r"[^()\[\]{}]+")
_DELTA = {"(": 1, "[": 1, "{": 1, ")": -1, "]": -1, "}": -1}
#: A long run of prefix operators, `not`, `await` or `lambda:` (each regex starts with a literal
#: or a class, so the scan stays fast; ~0.1 s for jax+flax+optax+equinox, 16 MB).
_CHAINS = tuple(
    re.compile(p)
    for p in (
        r"[-+~](?:[\s\\]*[-+~]){49}",
        r"not[\s\\]+(?:not[\s\\]+){49}",
        r"await[\s\\]+(?:await[\s\\]+){49}",
        r"lambda\b[^:\n]{0,80}:[\s\\]*(?:lambda\b[^:\n]{0,80}:[\s\\]*){49}",
    )
)
#: Lines longer than this are parsed by CPython first too (no real code has them).
MAX_LINE = 5000
#: CPython messages that mean "too deep", as opposed to syntax CPython does not know yet.
_DEPTH_MESSAGES = ("too many nested", "too complex", "too many indentation", "maximum recursion")


class TooDeeplyNested(RecursionError):
    """Python itself cannot parse the file: nested too deeply."""


def _max_depth(source: str) -> int:
    brackets = _NOT_BRACKET.sub("", source)
    if len(brackets) < MAX_BRACKET_DEPTH:
        return len(brackets)
    return max(itertools.accumulate(map(_DELTA.__getitem__, brackets)), default=0)


def suspicious(source: str) -> bool:
    """Could this source be nested deeply enough to hurt libcst's parser?"""
    return (
        _max_depth(source) >= MAX_BRACKET_DEPTH
        or any(chain.search(source) for chain in _CHAINS)
        or (len(source) > MAX_LINE and len(max(source.split("\n"), key=len)) > MAX_LINE)
    )


def parse_module(source: str) -> cst.Module:
    """`libcst.parse_module`, except that input nested too deeply for CPython raises
    `TooDeeplyNested` (a `RecursionError`) instead of reaching libcst."""
    if suspicious(source):
        try:
            with warnings.catch_warnings():  # SyntaxWarnings about the user's code: not ours to print
                warnings.simplefilter("ignore")
                compile(source, "<jaxdoctor>", "exec", ast.PyCF_ONLY_AST, dont_inherit=True)
        except (RecursionError, MemoryError) as e:
            raise TooDeeplyNested(f"nested too deeply for Python to parse ({type(e).__name__})") from None
        except SyntaxError as e:
            message = str(e.msg or e)
            if any(m in message for m in _DEPTH_MESSAGES):
                raise TooDeeplyNested(f"nested too deeply for Python to parse: {message}") from None
            # any other syntax error: libcst reports it (it knows newer syntax than this Python)
        except (ValueError, OverflowError):
            pass  # e.g. NUL bytes; libcst reports it
    return _parse_unvalidated(source)


_VALIDATION_LOCK = threading.RLock()


def _no_validation(self: CSTNode) -> None:
    pass


def _parse_unvalidated(source: str) -> cst.Module:
    """`libcst.parse_module` without each node's `_validate()` on construction: the parser only
    builds valid trees, and validating them costs ~20% of the parse (measured on flax: 2.9 s →
    2.3 s). libcst's own `CSTNode.__post_init__` says as much ("avoid validating the tree when
    parsing a file"). Nodes built afterwards (fixes) are validated as usual; the lock keeps two
    threads from restoring each other's hook."""
    with _VALIDATION_LOCK:
        saved = CSTNode.__dict__["__post_init__"]
        CSTNode.__post_init__ = _no_validation  # type: ignore[method-assign]
        try:
            return cst.parse_module(source)
        finally:
            CSTNode.__post_init__ = saved  # type: ignore[method-assign]


__all__ = ["parse_module", "TooDeeplyNested", "suspicious"]
