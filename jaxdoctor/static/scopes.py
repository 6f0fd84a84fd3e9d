"""Where a name is bound, and to what: a per-scope table built on first use.

One scan of a scope's own statements (nested functions and classes are not entered), in source
order, records each binding of a name with the expression bound, so a rule can ask "what did
`x` last hold before this statement?" or "is `x` local to this function?". This is the flow a
rule may do for one function; the engine's walk stays the only walk of the whole file.
"""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

from jaxdoctor.static.walker import children

Scope = cst.Module | cst.FunctionDef | cst.Lambda | cst.ClassDef
SCOPE_TYPES = (cst.FunctionDef, cst.Lambda, cst.ClassDef)

PARAM = "param"
ASSIGN = "assign"  # value known: the expression bound
OTHER = "other"  # bound by for/with/import/def/except...: value unknown


@dataclass(frozen=True, slots=True)
class Binding:
    how: str
    value: cst.BaseExpression | None
    index: int  # pre-order index of the binding node within the scope


class _Table:
    __slots__ = ("bindings", "declared", "order")

    def __init__(self) -> None:
        self.order: dict[cst.CSTNode, int] = {}
        self.bindings: dict[str, list[Binding]] = {}
        self.declared: dict[str, str] = {}  # name → "global" / "nonlocal"

    def add(self, name: str, how: str, value, index: int) -> None:
        self.bindings.setdefault(name, []).append(Binding(how, value, index))


def target_names(target: cst.BaseExpression, out: list[cst.Name]) -> None:
    if isinstance(target, cst.Name):
        out.append(target)
    elif isinstance(target, (cst.Tuple, cst.List)):
        for el in target.elements:
            target_names(el.value, out)
    elif isinstance(target, cst.StarredElement):
        target_names(target.value, out)


class ScopeIndex:
    """Binding tables, one per scope, built lazily."""

    def __init__(self, module: cst.Module) -> None:
        self.module = module
        self._tables: dict[cst.CSTNode, _Table] = {}

    def table(self, scope: Scope) -> _Table:
        found = self._tables.get(scope)
        if found is None:
            found = self._tables[scope] = self._build(scope)
        return found

    def _build(self, scope: Scope) -> _Table:
        t = _Table()
        if isinstance(scope, (cst.FunctionDef, cst.Lambda)):
            p = scope.params
            params = [*p.posonly_params, *p.params, *p.kwonly_params]
            if isinstance(p.star_arg, cst.Param):
                params.append(p.star_arg)
            if p.star_kwarg is not None:
                params.append(p.star_kwarg)
            for param in params:
                t.add(param.name.value, PARAM, None, -1)
            roots = [scope.body]
        elif isinstance(scope, cst.ClassDef):
            roots = [scope.body]
        else:
            roots = list(scope.body)
        counter = 0
        stack = list(reversed(roots))
        while stack:
            node = stack.pop()
            t.order[node] = counter
            i = counter
            counter += 1
            if isinstance(node, cst.Assign):
                for target in node.targets:
                    names: list[cst.Name] = []
                    target_names(target.target, names)
                    single = isinstance(target.target, cst.Name)
                    for n in names:
                        t.add(n.value, ASSIGN if single else OTHER, node.value if single else None, i)
            elif isinstance(node, cst.AnnAssign):
                if isinstance(node.target, cst.Name) and node.value is not None:
                    t.add(node.target.value, ASSIGN, node.value, i)
            elif isinstance(node, cst.AugAssign):
                if isinstance(node.target, cst.Name):
                    t.add(node.target.value, "aug", None, i)
            elif isinstance(node, (cst.For, cst.CompFor)):
                names = []
                target_names(node.target, names)
                for n in names:
                    t.add(n.value, OTHER, None, i)
            elif isinstance(node, cst.WithItem) and node.asname is not None:
                names = []
                target_names(node.asname.name, names)
                for n in names:
                    t.add(n.value, OTHER, None, i)
            elif isinstance(node, cst.NamedExpr) and isinstance(node.target, cst.Name):
                t.add(node.target.value, ASSIGN, node.value, i)
            elif isinstance(node, cst.ExceptHandler) and node.name is not None:
                if isinstance(node.name.name, cst.Name):
                    t.add(node.name.name.value, OTHER, None, i)
            elif isinstance(node, (cst.Import, cst.ImportFrom)):
                if not isinstance(node.names, cst.ImportStar):
                    for alias in node.names:
                        if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                            t.add(alias.asname.name.value, OTHER, None, i)
                        else:
                            parts = alias.name
                            while isinstance(parts, cst.Attribute):
                                parts = parts.value
                            if isinstance(parts, cst.Name):
                                t.add(parts.value, OTHER, None, i)
            elif isinstance(node, (cst.Global, cst.Nonlocal)):
                how = "global" if isinstance(node, cst.Global) else "nonlocal"
                for item in node.names:
                    t.declared[item.name.value] = how
            if isinstance(node, SCOPE_TYPES):
                if isinstance(node, (cst.FunctionDef, cst.ClassDef)):
                    t.add(node.name.value, OTHER, None, i)
                    # decorators and defaults are evaluated in this scope
                    for dec in node.decorators:
                        stack.append(dec)
                continue
            if isinstance(node, (cst.ListComp, cst.SetComp, cst.DictComp, cst.GeneratorExp)):
                continue  # their own scope
            kids = list(children(node))
            kids.reverse()
            stack.extend(kids)
        return t

    # ------------------------------------------------------------------ queries
    def last_before(self, scope: Scope, name: str, node: cst.CSTNode) -> Binding | None:
        """The last binding of `name` in `scope` textually before `node` (a node in `scope`)."""
        t = self.table(scope)
        limit = t.order.get(node)
        found = None
        for b in t.bindings.get(name, ()):
            if limit is None or b.index < limit:
                found = b
        return found

    def is_local(self, scope: Scope, name: str) -> bool:
        t = self.table(scope)
        return name in t.bindings and name not in t.declared

    def declared(self, scope: Scope, name: str) -> str | None:
        return self.table(scope).declared.get(name)

    def bindings(self, scope: Scope, name: str) -> list[Binding]:
        return self.table(scope).bindings.get(name, [])

    def defining_scope(self, name: str, chain: list[Scope]) -> Scope | None:
        """The innermost scope of `chain` (outermost first) that binds `name`; class bodies are
        skipped for names used in nested functions, as Python does."""
        innermost = chain[-1] if chain else None
        for scope in reversed(chain):
            if isinstance(scope, cst.ClassDef) and scope is not innermost:
                continue
            t = self.table(scope)
            if t.declared.get(name) == "global":
                return self.module
            if name in t.bindings and name not in t.declared:
                return scope
        return None


def scope_chain(ancestors: list[cst.CSTNode], module: cst.Module) -> list[Scope]:
    """The scopes around the current node, outermost (the module) first."""
    chain: list[Scope] = [module]
    for node in ancestors:
        if isinstance(node, SCOPE_TYPES):
            chain.append(node)
    return chain


def statement_of(ancestors: list[cst.CSTNode], node: cst.CSTNode) -> cst.CSTNode:
    """The small statement (or compound statement) containing `node`, or `node` itself."""
    for anc in reversed(ancestors):
        if isinstance(anc, (cst.BaseSmallStatement, cst.BaseCompoundStatement)):
            return anc
    return node
