"""Import-alias resolution: which qualified name does an expression refer to?

Rules match qualified names (`jax.lax.cond`), never spellings: `from jax import lax as L` makes
`L.cond` resolve to `jax.lax.cond`, and `import numpy as jnp` makes `jnp.where` resolve to
`numpy.where`. A per-file import table is enough for this (measured: full libcst scope analysis
costs several times the parse); local variables simply do not resolve.
"""

from __future__ import annotations

import builtins

import libcst as cst

_BUILTINS = frozenset(dir(builtins))

#: Old or alternative module paths, mapped to the canonical one rules match against.
_CANONICAL_PREFIXES: tuple[tuple[str, str], ...] = (
    ("flax.experimental.nnx", "flax.nnx"),
    ("flax.linen.module.Module", "flax.linen.Module"),
    ("jax._src.numpy.lax_numpy", "jax.numpy"),
    ("jax.lax.control_flow", "jax.lax"),
)


def canonical(name: str) -> str:
    for old, new in _CANONICAL_PREFIXES:
        if name == old or name.startswith(old + "."):
            return new + name[len(old) :]
    return name


def dotted_parts(expr: cst.BaseExpression) -> list[str] | None:
    """`a.b.c` → ["a", "b", "c"]; None for anything that is not a plain dotted name."""
    parts: list[str] = []
    while isinstance(expr, cst.Attribute):
        parts.append(expr.attr.value)
        expr = expr.value
    if not isinstance(expr, cst.Name):
        return None
    parts.append(expr.value)
    parts.reverse()
    return parts


def _dotted_name(node: cst.BaseExpression) -> str:
    parts = dotted_parts(node)
    return ".".join(parts) if parts else ""


class ImportTable:
    """Aliases bound by `import` statements anywhere in a file (last binding wins)."""

    __slots__ = ("aliases", "shadowed", "overrides", "_memo")

    def __init__(self) -> None:
        self.aliases: dict[str, str] = {}
        #: uses whose name a local binding shadows (None) or a function-level import rebinds
        #: (filled by the file index, which knows the scopes)
        self.overrides: dict[cst.Name, str | None] = {}
        #: names bound by a `def`, `class` or assignment at module level (they shadow builtins).
        self.shadowed: set[str] = set()
        #: node → qualname, once the file index has filled the table (`freeze`)
        self._memo: dict[cst.BaseExpression, str | None] | None = None

    def freeze(self) -> None:
        """The table is complete: answers may be remembered from now on."""
        self._memo = {}

    def add(self, node: cst.Import | cst.ImportFrom) -> None:
        if isinstance(node, cst.Import):
            for alias in node.names:
                full = _dotted_name(alias.name)
                if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                    self.aliases[alias.asname.name.value] = canonical(full)
                else:
                    head = full.split(".", 1)[0]
                    self.aliases[head] = head
            return
        if node.relative or node.module is None:
            return  # `from . import x`: a local module, never jax/flax/equinox
        module = _dotted_name(node.module)
        if isinstance(node.names, cst.ImportStar):
            return
        for alias in node.names:
            if not isinstance(alias.name, cst.Name):
                continue
            name = alias.name.value
            local = name
            if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                local = alias.asname.name.value
            self.aliases[local] = canonical(f"{module}.{name}")

    def qualname(self, expr: cst.BaseExpression) -> str | None:
        """The qualified name `expr` refers to, or None if it is not an imported/builtin name."""
        memo = self._memo
        if memo is None:
            return self._qualname(expr)
        try:
            return memo[expr]
        except KeyError:
            q = memo[expr] = self._qualname(expr)
            return q

    def _qualname(self, expr: cst.BaseExpression) -> str | None:
        parts = dotted_parts(expr)
        if parts is None:
            return None
        head = parts[0]
        if self.overrides:
            root = expr
            while isinstance(root, cst.Attribute):
                root = root.value
            if root in self.overrides:
                base = self.overrides[root]
                if base is None:
                    return None
                return base if len(parts) == 1 else canonical(base + "." + ".".join(parts[1:]))
        base = self.aliases.get(head)
        if base is None:
            if head in _BUILTINS and head not in self.shadowed and len(parts) == 1:
                return f"builtins.{head}"
            return None
        if len(parts) == 1:
            return base
        return canonical(base + "." + ".".join(parts[1:]))

    def matches(self, expr: cst.BaseExpression, *names: str) -> bool:
        return self.qualname(expr) in names

    def in_module(self, expr: cst.BaseExpression, *modules: str) -> bool:
        """True when `expr` names something inside one of `modules` (e.g. `jax.numpy`)."""
        q = self.qualname(expr)
        return q is not None and any(q.startswith(m + ".") for m in modules)

    @property
    def uses_jax(self) -> bool:
        return any(v.split(".", 1)[0] in ("jax", "flax", "equinox") for v in self.aliases.values())
