"""Small local questions about one function's own code, shared by the control-flow, vmap and
NNX rules: its `return` values, the names it rebinds, the calls it makes.

These look only inside one function (never into nested defs, lambdas or classes) and never
walk the whole file: the engine's single walk stays the only full traversal.
"""

from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from jaxdoctor.static.names import ImportTable
from jaxdoctor.static.index import target_names
from jaxdoctor.static.syntax import call_arg
from jaxdoctor.static.index import FunctionInfo
from jaxdoctor.static.model import SemanticModel
from jaxdoctor.static.transforms import PARTIALS, TRANSFORMS, Flow
from jaxdoctor.static.walker import children

_SCOPES = (cst.FunctionDef, cst.Lambda, cst.ClassDef)

#: The transforms these rules reason about. Linen's lifted loops and branches take the module
#: first and are the Linen rules' (JD201, JD202): they are left out.
_OURS = {q: t for q, t in TRANSFORMS.items() if t.family != "linen"}

#: Loops with a `(carry) -> carry`-style body, by qualified name:
#: (kind, body position, body keyword, init position, init keyword)
LOOPS: dict[str, tuple[str, int, str, int, str]] = {
    q: (q.rsplit(".", 1)[1].split("_")[0], t.fn_positions[-1], t.fn_keywords[-1], *t.carry)
    for q, t in _OURS.items() if t.carry is not None
}
#: Every loop primitive (`nnx.scan` and `lax.map` have other signatures but are loops too).
LOOP_NAMES = frozenset(q for q, t in _OURS.items() if t.flow is Flow.LOOP)
CONDS = frozenset(q for q, t in _OURS.items() if t.flow is Flow.BRANCH)
VMAPS = frozenset(q for q, t in _OURS.items() if t.maps)


def own_nodes(fn: cst.FunctionDef | cst.Lambda) -> Iterator[cst.CSTNode]:
    """Every node of a function's body that belongs to it (not to nested functions/classes)."""
    stack: list[cst.CSTNode] = [fn.body]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, _SCOPES):
            continue
        kids = list(children(node))
        kids.reverse()
        stack.extend(kids)


def returns(fn: cst.FunctionDef | cst.Lambda) -> list[cst.BaseExpression | None]:
    """The returned expressions (None for a bare `return`); a lambda returns its body.
    A generator (a function that yields) returns [] (its returns aren't its values)."""
    if isinstance(fn, cst.Lambda):
        return [fn.body]
    out: list[cst.BaseExpression | None] = []
    for node in own_nodes(fn):
        if isinstance(node, (cst.Yield,)):
            return []
        if isinstance(node, cst.Return):
            out.append(node.value)
    return out


def falls_off_end(fn: cst.FunctionDef) -> bool:
    """True when the last statement of the body is not a `return`/`raise` (implicit `None`)."""
    body = fn.body
    stmts = body.body if isinstance(body, cst.IndentedBlock) else []
    if not stmts:
        return True
    last = stmts[-1]
    if isinstance(last, cst.SimpleStatementLine):
        return not any(isinstance(s, (cst.Return, cst.Raise)) for s in last.body)
    if isinstance(last, cst.If):
        return True  # conservatively: don't follow branches
    return not isinstance(last, (cst.With, cst.Try))


def bindings(fn: cst.FunctionDef | cst.Lambda) -> dict[str, int]:
    """How many times each name is bound in the function's own body (not its parameters)."""
    out: dict[str, int] = {}
    targets: list[cst.Name] = []
    for node in own_nodes(fn):
        if isinstance(node, cst.Assign):
            for t in node.targets:
                target_names(t.target, targets)
        elif isinstance(node, (cst.AugAssign, cst.AnnAssign, cst.For, cst.CompFor, cst.NamedExpr)):
            target_names(node.target, targets)
        elif isinstance(node, cst.WithItem) and node.asname is not None:
            target_names(node.asname.name, targets)
        elif isinstance(node, (cst.FunctionDef, cst.ClassDef)) and node is not fn:
            out[node.name.value] = out.get(node.name.value, 0) + 1
        elif isinstance(node, (cst.Global, cst.Nonlocal)):
            for n in node.names:
                out[n.name.value] = out.get(n.name.value, 0) + 99
    for name in targets:
        out[name.value] = out.get(name.value, 0) + 1
    return out


def unpackings(fn: cst.FunctionDef, source: str) -> list[tuple[cst.BaseExpression, ...]]:
    """Targets of top-level `a, b = source` statements at the start of a def's body."""
    out = []
    body = fn.body
    if not isinstance(body, cst.IndentedBlock):
        return out
    for stmt in body.body:
        if not isinstance(stmt, cst.SimpleStatementLine):
            continue
        for small in stmt.body:
            if (
                isinstance(small, cst.Assign)
                and len(small.targets) == 1
                and isinstance(small.targets[0].target, (cst.Tuple, cst.List))
                and isinstance(small.value, cst.Name)
                and small.value.value == source
            ):
                out.append(tuple(el.value for el in small.targets[0].target.elements))
    return out


def resolve_bound(
    semantic: SemanticModel, expr: cst.BaseExpression, scope, at: cst.CSTNode | None = None
) -> tuple[FunctionInfo, int, frozenset[str]] | None:
    """The single in-file function `expr` denotes, with the number of positional arguments and
    the keyword names that `functools.partial` binds; None when not exactly one."""
    bound = 0
    kw: set[str] = set()
    names = semantic.names
    while isinstance(expr, cst.Call) and names.qualname(expr.func) in PARTIALS and expr.args:
        if expr.args[0].keyword is not None or any(a.star for a in expr.args):
            return None
        bound += sum(1 for a in expr.args[1:] if a.keyword is None)
        kw.update(a.keyword.value for a in expr.args[1:] if a.keyword is not None)
        expr = expr.args[0].value
    found = semantic.resolve_functions(expr, scope, at)
    if len(found) != 1:
        return None
    return found[0], bound, frozenset(kw)


def free_params(info: FunctionInfo, bound: int, kw: frozenset[str]) -> list[str] | None:
    """Positional parameters left for the caller after `partial` binding; None with *args."""
    node = info.node
    if isinstance(node.params.star_arg, cst.Param):
        return None
    return [n for n in info.positional[bound:] if n not in kw]


def arg(call: cst.Call, position: int | None, keyword: str) -> cst.BaseExpression | None:
    if any(a.star for a in call.args):
        return None
    return call_arg(call, position, keyword)


def is_none(expr: cst.BaseExpression | None) -> bool:
    return isinstance(expr, cst.Name) and expr.value == "None"


def transform_name(names: ImportTable, expr: cst.BaseExpression) -> tuple[str | None, cst.Call | None]:
    """For a decorator or transform expression: (`jax.vmap`, options call) for `jax.vmap`,
    `jax.vmap(in_axes=...)` and `partial(jax.vmap, in_axes=...)`."""
    q = names.qualname(expr)
    if q is not None:
        return q, None
    if isinstance(expr, cst.Call):
        q = names.qualname(expr.func)
        if q in PARTIALS and expr.args:
            return names.qualname(expr.args[0].value), expr
        return q, expr
    return None, None
