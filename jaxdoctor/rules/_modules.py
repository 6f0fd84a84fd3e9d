"""Shared helpers for the Linen and Equinox rules: which expressions build or call a module.

Small queries over the nodes a rule already holds (a class, a method, a call); they look at
subtrees of one function or class, never at the whole file.
"""

from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from jaxdoctor.static.rule import FileContext
from jaxdoctor.static.walker import iter_tree

#: Capitalised names in `flax.linen` that are not modules.
_LINEN_NON_MODULES = frozenset(
    {"Module", "FrozenDict", "Partitioned", "LogicallyPartitioned", "Variable", "Sequential_"}
)


def find_class(ctx: FileContext, name: str) -> cst.ClassDef | None:
    """A class defined in this file under `name` (any scope; the last one wins)."""
    found = None
    for cls in ctx.semantic.classes:
        if cls.name.value == name:
            found = cls
    return found


def class_of_ctor(ctx: FileContext, call: cst.Call) -> tuple[str, cst.ClassDef | None] | None:
    """For `nn.Dense(3)` → ("flax.linen.Dense", None); for `Block(...)` with `Block` a class of
    this file → ("Block", classdef); else None."""
    q = ctx.qualname(call.func)
    if q is not None:
        return q, None
    if isinstance(call.func, cst.Name):
        cls = find_class(ctx, call.func.value)
        if cls is not None:
            return cls.name.value, cls
    return None


def is_linen_ctor(ctx: FileContext, call: cst.Call) -> bool:
    """`nn.Dense(3)`, `linen.Conv(...)`, or a Linen `Module` subclass of this file."""
    found = class_of_ctor(ctx, call)
    if found is None:
        return False
    q, cls = found
    if cls is not None:
        return ctx.semantic.class_family(cls) == "linen"
    if q.startswith("flax.linen."):
        last = q.rsplit(".", 1)[1]
        return last[:1].isupper() and last not in _LINEN_NON_MODULES
    return False


def methods(cls: cst.ClassDef) -> dict[str, cst.FunctionDef]:
    body = cls.body.body if isinstance(cls.body, cst.IndentedBlock) else ()
    return {s.name.value: s for s in body if isinstance(s, cst.FunctionDef)}


def class_fields(cls: cst.ClassDef) -> Iterator[cst.AnnAssign]:
    body = cls.body.body if isinstance(cls.body, cst.IndentedBlock) else ()
    for stmt in body:
        if isinstance(stmt, cst.SimpleStatementLine):
            for small in stmt.body:
                if isinstance(small, cst.AnnAssign) and isinstance(small.target, cst.Name):
                    yield small


def first_param(fn: cst.FunctionDef | cst.Lambda) -> str | None:
    params = [*fn.params.posonly_params, *fn.params.params]
    return params[0].name.value if params else None


def param_names(fn: cst.FunctionDef | cst.Lambda) -> set[str]:
    p = fn.params
    names = {x.name.value for x in (*p.posonly_params, *p.params, *p.kwonly_params)}
    if isinstance(p.star_arg, cst.Param):
        names.add(p.star_arg.name.value)
    if p.star_kwarg is not None:
        names.add(p.star_kwarg.name.value)
    return names


def body_nodes(fn: cst.FunctionDef | cst.Lambda) -> Iterator[cst.CSTNode]:
    """Every node of a function's body (nested functions included), not its decorators."""
    yield from iter_tree(fn.body)
