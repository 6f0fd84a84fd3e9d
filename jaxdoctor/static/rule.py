"""The base class of static rules, and what a rule may see of the file it checks.

A rule declares `visit_<Node>` / `leave_<Node>` methods (libcst node class names) and calls
`self.report(...)`. It never parses, re-walks the whole tree, reads config, handles suppression
comments or prints: the engine does all of that once for every enabled rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Mapping

import libcst as cst

from jaxdoctor.findings import Applicability
from jaxdoctor.rule import Rule
from jaxdoctor.static.index import COMPREHENSIONS, Bind, FileIndex, FunctionInfo
from jaxdoctor.static.model import SemanticModel
from jaxdoctor.static.names import ImportTable

_SCOPES = (cst.FunctionDef, cst.Lambda, cst.ClassDef, *COMPREHENSIONS)


@dataclass(frozen=True, slots=True)
class NodeFix:
    """Replace each old node by a new node (or by source text)."""

    replacements: tuple[tuple[cst.CSTNode, cst.CSTNode | str], ...]
    title: str
    applicability: Applicability


@dataclass(frozen=True, slots=True)
class Report:
    rule: type["LintRule"]
    node: cst.CSTNode
    message: str
    fix_title: str | None
    fix: NodeFix | None


class FileContext:
    """What rules can ask about the file being checked (shared by all rules of one run)."""

    def __init__(self, path: str, source: str, module: cst.Module, semantic: SemanticModel,
                 options: Mapping[str, str] | None = None) -> None:
        self.path = path
        #: run options from config/CLI that rules may read (e.g. "target-jax-version");
        #: the engine fills them from `Settings` (see `jaxdoctor.static.options`)
        self.options: Mapping[str, str] = options or {}
        self.source = source
        self.module = module
        self.semantic = semantic
        self.names: ImportTable = semantic.names
        self.index: FileIndex = semantic.index
        #: the chain of nodes from the module down to the current node's parent
        self.ancestors: list[cst.CSTNode] = []
        self.reports: list[Report] = []
        #: (parent, depth, scope) of the last `scope()` answer
        self._scope_at: tuple | None = None

    @property
    def parent(self) -> cst.CSTNode | None:
        return self.ancestors[-1] if self.ancestors else None

    def enclosing(self, *types: type) -> cst.CSTNode | None:
        for node in reversed(self.ancestors):
            if isinstance(node, types):
                return node
        return None

    def scope(self) -> cst.CSTNode:
        """The innermost scope (function, lambda, class, comprehension, or the module) around
        the current node. A decorator is evaluated in the scope around its function."""
        ancestors = self.ancestors
        if not ancestors:
            return self.module
        cached = self._scope_at
        if cached is not None and cached[0] is ancestors[-1] and cached[1] == len(ancestors):
            return cached[2]  # several rules ask at the same node: its ancestors have not moved
        found = self._scope_of_ancestors()
        self._scope_at = (ancestors[-1], len(ancestors), found)
        return found

    def _scope_of_ancestors(self) -> cst.CSTNode:
        skip = None
        for i in range(len(self.ancestors) - 1, -1, -1):
            node = self.ancestors[i]
            if node is skip:
                skip = None
                continue
            if isinstance(node, cst.Decorator) and i > 0:
                skip = self.ancestors[i - 1]
                continue
            if isinstance(node, _SCOPES):
                return node
        return self.module

    def statement(self, node: cst.CSTNode | None = None) -> cst.CSTNode | None:
        """The statement around the current node (or `node` itself, when it is one)."""
        order = self.index.order
        if node is not None and node in order:
            return node
        for anc in reversed(self.ancestors):
            if anc in order:
                return anc
        return None

    def lookup(self, name: str, node: cst.CSTNode | None = None, scope: cst.CSTNode | None = None) -> Bind | None:
        """The binding of `name` that reaches the current node (or statement `node`)."""
        return self.index.lookup_at(name, scope if scope is not None else self.scope(), self.statement(node))

    def resolve_functions(self, expr: cst.BaseExpression, node: cst.CSTNode | None = None) -> list[FunctionInfo]:
        """The functions of this file that `expr` denotes here."""
        return self.semantic.resolve_functions(expr, self.scope(), self.statement(node))

    def function(self) -> FunctionInfo | None:
        """The innermost function (def or lambda) around the current node."""
        node = self.enclosing(cst.FunctionDef, cst.Lambda)
        return self.semantic.function(node) if node is not None else None

    def traced_function(self) -> FunctionInfo | None:
        """The innermost function around the current node, if JAX traces it."""
        info = self.function()
        return info if info is not None and info.traced else None

    def qualname(self, expr: cst.BaseExpression) -> str | None:
        return self.names.qualname(expr)

    def code(self, node: cst.CSTNode) -> str:
        """Source text of a node, for messages (whitespace-normalised, shortened)."""
        text = " ".join(self.module.code_for_node(node).split())
        return text if len(text) <= 60 else text[:57] + "..."


class LintRule(Rule):
    """A static rule. Subclasses set the `Rule` metadata and define visit/leave methods."""

    #: rules that only make sense in files importing one of these (e.g. "flax.linen")
    requires: ClassVar[tuple[str, ...]] = ()

    def __init__(self, ctx: FileContext) -> None:
        self.ctx = ctx

    def report(
        self,
        node: cst.CSTNode,
        message: str,
        *,
        fix: NodeFix | None = None,
        fix_title: str | None = None,
    ) -> None:
        title = fix_title or (fix.title if fix is not None else None) or self.fix_title
        self.ctx.reports.append(Report(type(self), node, message, title, fix))

    def fix(self, *replacements: tuple[cst.CSTNode, cst.CSTNode | str], title: str | None = None) -> NodeFix:
        """A fix for this rule, with the rule's declared applicability."""
        applicability = self.fix_applicability or Applicability.UNSAFE
        return NodeFix(tuple(replacements), title or self.fix_title or "", applicability)
