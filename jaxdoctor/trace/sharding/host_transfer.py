"""JD537 host-transfer-in-step: a device value copied to the host on every step of the loop.

`float(loss)`, `loss.item()`, `np.asarray(metrics)`, `print(x)` all go through one fetch of the
array's value; the doctor watches it (`xla_internals.install_fetch_hook`) and remembers the
user's line. JAX's own `jax_transfer_guard` cannot serve here: it logs from C++ with no Python
line, and on CPU a device-to-host "copy" is zero-copy and never reaches it (jax-ml/jax#16602).
A line is reported when it fetched at least `MIN_STEPS` different arrays and sits, not under an
`if`, in the body of a Python loop (itself, or a function called from one).
"""

from __future__ import annotations

import ast
import weakref
from dataclasses import dataclass, field

from jaxdoctor.findings import Finding
from jaxdoctor.rules.sharding import HostTransferInStep
from jaxdoctor.trace.frames import is_jaxdoctor_file, is_user_file, source_line
from jaxdoctor.trace.sharding._common import finding, fmt_bytes
from jaxdoctor.trace.source_map import SourceLocation, parse_file

MIN_STEPS = 3


@dataclass
class _Site:
    count: int = 0
    nbytes: int = 0
    shape: str = ""
    stack: tuple = ()  # (file, line) of the user's frames, innermost first
    ids: dict = field(default_factory=dict)  # id → weakref of the arrays counted


class FetchLog:
    """Every first fetch of a device array's value, by the user's line that asked for it."""

    def __init__(self) -> None:
        self.sites: dict[tuple[str, int], _Site] = {}

    def on_fetch(self, array) -> None:
        import sys

        # the user's frames that asked for the value: the innermost run of them (what called
        # the user's program, a test runner or jaxdoctor itself, is not part of it)
        stack = []
        f = sys._getframe(2)
        while f is not None and len(stack) < 16:
            if not stack and is_jaxdoctor_file(f.f_code.co_filename):
                return  # the doctor's own checks read a value (a NaN test in run mode), not the user
            if is_user_file(f.f_code.co_filename):
                stack.append((f.f_code.co_filename, f.f_lineno))
            elif stack:
                break
            f = f.f_back
        if not stack:
            return
        site = self.sites.setdefault(stack[0], _Site(stack=tuple(stack)))
        seen = site.ids.get(id(array))
        if seen is not None and seen() is array:  # on CPU nothing is cached: the same array again
            return
        try:
            site.ids[id(array)] = weakref.ref(array)
        except TypeError:
            site.ids[id(array)] = lambda: None
        if len(site.ids) > 4096:
            site.ids = {k: r for k, r in site.ids.items() if r() is not None}
        site.count += 1
        try:
            site.nbytes = int(array.nbytes)
            site.shape = f"{array.dtype}[{','.join(map(str, array.shape))}]"
        except Exception:  # noqa: BLE001 - a deleted array
            pass

    def findings(self) -> list[Finding]:
        out = []
        for (path, line), site in self.sites.items():
            if site.count < MIN_STEPS:
                continue
            loop = CONDITIONAL
            for p, ln in site.stack:
                loop = every_iteration(p, ln)
                if loop != IN_FUNCTION:
                    break
            if loop <= 0:
                continue
            loc = SourceLocation.at(path, line)
            code = source_line(path, line)
            what = f"`{code}`" if code and len(code) <= 80 else "this line"
            msg = (f"{what} copies `{site.shape}` ({fmt_bytes(site.nbytes)}) from the device to the host on "
                   f"every iteration of the loop at line {loop} ({site.count} times in this run): each copy "
                   "waits for the step that computes it, so JAX cannot queue the next step meanwhile")
            out.append(finding(HostTransferInStep, loc, msg, {
                "fetches": site.count, "bytes": site.nbytes, "shape": site.shape, "loop_line": loop,
            }))
        return out


#: `every_iteration` results that are not a loop's line
IN_FUNCTION, CONDITIONAL = 0, -1


def every_iteration(path: str, line: int) -> int:
    """The line of the innermost `for`/`while` whose body runs `line` on every iteration;
    `IN_FUNCTION` when `line` is in a function's body outside any loop (its caller decides);
    `CONDITIONAL` when it runs under an `if`/`except`, outside any loop, or in a loop whose body
    holds another loop (one read per epoch or per sweep point is not one per step)."""
    tree = parse_file(path)
    if tree is None:
        return CONDITIONAL
    chain = []  # (parent, field, child) from the module down to the statement at `line`
    node: ast.AST = tree
    while True:
        step = None
        for name, value in ast.iter_fields(node):
            if not isinstance(value, list):
                continue
            for child in value:
                if isinstance(child, (ast.stmt, ast.excepthandler, ast.match_case)) and _spans(child, line):
                    step = (node, name, child)
                    break
            if step:
                break
        if step is None:
            break
        chain.append(step)
        node = step[2]
    for parent, name, _ in reversed(chain):
        if isinstance(parent, (ast.For, ast.AsyncFor, ast.While)):
            if name != "body":
                return CONDITIONAL
            # a loop whose body runs another loop is an outer one (epochs, a sweep over
            # hyper-parameters): reading one value per pass of it is what logging does
            if any(isinstance(n, (ast.For, ast.AsyncFor, ast.While)) for stmt in parent.body for n in ast.walk(stmt)):
                return CONDITIONAL
            return parent.lineno
        if isinstance(parent, (ast.FunctionDef, ast.AsyncFunctionDef)):
            return IN_FUNCTION
        if isinstance(parent, (ast.If, ast.Match, ast.match_case, ast.ClassDef)):
            return CONDITIONAL
        if isinstance(parent, ast.Try) and name == "handlers":
            return CONDITIONAL
    return CONDITIONAL


def _spans(node: ast.AST, line: int) -> bool:
    start = getattr(node, "lineno", None)
    if start is None and isinstance(node, ast.match_case):
        start = node.pattern.lineno
    end = getattr(node, "end_lineno", None) or start
    return start is not None and start <= line <= end
