"""JD504 leaked-tracer: what a Flax Linen `init`/`init_with_output`/`apply` returned holds
tracers, created inside a raw JAX transform around submodule calls (failure mode E).

`trace.capture` wraps those Linen methods and hands their output here, with the user's line
where each recent trace started (`callsites`), to point at the transform that leaked.
"""

from __future__ import annotations

import ast
import linecache
import re
from collections.abc import Sequence
from typing import Any

from jaxdoctor.findings import Finding
from jaxdoctor.rules.jaxpr import LeakedTracer
from jaxdoctor.trace.frames import user_call_site

FIX_TITLE = "Use Flax's lifted transforms (`nn.scan`, `nn.cond`, `nn.vmap`, `nn.jit`) inside Linen modules"


def leaked_tracers(out: Any, where: str,
                   callsites: Sequence[tuple[Any, tuple[str, int, int, int, int]]]) -> Finding | None:
    """The JD504 finding for `out`, returned by `where` (e.g. `Model.init`), or None when it
    holds no tracer. `callsites`: (trace debug info, (file, line, column, end line, end column))
    of recent traces."""
    import jax

    from jaxdoctor.trace import jax_internals as ji

    leaked = [(path, leaf) for path, leaf in jax.tree_util.tree_flatten_with_path(out)[0] if ji.is_tracer(leaf)]
    if not leaked:
        return None
    _, tracer = leaked[0]
    dbg = ji.tracer_debug_info(tracer)
    site = next((s for d, s in reversed(callsites) if d is dbg), None)
    func, _ = ji.debug_info_parts(dbg)
    if site is None:
        site = user_call_site()
        if site is None:
            return None
    names = [jax.tree_util.keystr(p) for p, _ in leaked]
    shown = ", ".join(f"`{n}`" for n in names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    message = (
        f"`{where}` returned {len(leaked)} leaked tracer(s) ({shown}) created inside the JAX "
        f"transform traced here (`{func or 'fn'}`): a raw `jax.lax`/`jax.vmap` transform "
        "around Flax submodule calls; using these values later raises `UnexpectedTracerError`"
    )
    return LeakedTracer.finding(message, *site, fix_title=FIX_TITLE,
                                details={"outputs": names[:20], "transform_function": func})


_STORE_CALLS = frozenset({"append", "extend", "insert", "add", "update", "setdefault", "appendleft"})


def store_site(loc: tuple[str, int, int, int, int], held_by: str | None) -> tuple[str, int, int, int, int] | None:
    """Where a leaked value made at `loc` was saved outside the traced function, read from the
    source: the later statement of the same function that assigns it to an attribute named as in
    `held_by` (`Model.last_hidden`), appends it to a container, or stores it into one. The making
    line itself when it assigns a global. None when the source says nothing."""
    path, line = loc[0], loc[1]
    try:
        tree = ast.parse("".join(linecache.getlines(path)))
    except (SyntaxError, ValueError):
        return None
    func = None
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)) and \
                node.lineno <= line <= (node.end_lineno or node.lineno):
            if func is None or node.lineno >= func.lineno:
                func = node
    if func is None or isinstance(func, ast.Lambda):
        return None
    made = [n for n in ast.walk(func) if isinstance(n, (ast.Assign, ast.AugAssign, ast.AnnAssign))
            and n.lineno == line]
    names: set[str] = set()
    for stmt in made:
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
        for t in targets:
            names |= {n.id for n in ast.walk(t) if isinstance(n, ast.Name)}
            if isinstance(t, ast.Attribute) and held_by and held_by.endswith("." + t.attr):
                return loc  # made and saved on one line: `self.cache = jnp.tanh(x)`
    declared = {n for g in ast.walk(func) if isinstance(g, (ast.Global, ast.Nonlocal)) for n in g.names}
    if names & declared:
        return loc
    attr = re.findall(r"\.(\w+)", held_by or "")
    best = None
    for node in ast.walk(func):
        at = getattr(node, "lineno", 0)
        if at <= line or (best is not None and at >= best.lineno):
            continue
        if isinstance(node, ast.Assign):
            for t in node.targets:
                uses = {n.id for n in ast.walk(node.value) if isinstance(n, ast.Name)}
                if isinstance(t, ast.Attribute) and (uses & names) and (not attr or t.attr == attr[-1]):
                    best = node
                elif isinstance(t, ast.Subscript) and (uses & names):
                    best = node
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                node.func.attr in _STORE_CALLS:
            uses = {n.id for a in node.args for n in ast.walk(a) if isinstance(n, ast.Name)}
            if uses & names:
                best = node
    if best is None:
        return None
    text = linecache.getline(path, best.lineno)
    col = len(text) - len(text.lstrip()) + 1
    return path, best.lineno, col, best.lineno, len(text.rstrip("\n")) + 1
