"""The file index: one walk records every scope, every binding of every name, every function,
class and call, and the imports (DESIGN §3, "names resolve with Python's real scoping").

Scopes follow Python: the module, each function and lambda, each class body, each comprehension.
A binding is recorded in the scope Python puts it in (`global`/`nonlocal` declarations, walrus
targets in comprehensions, decorators and defaults evaluated in the enclosing scope), with the
order of the statement that makes it, so that a use can ask which binding actually reaches it:
a later redefinition never explains an earlier call (`lookup`).

A local binding that shadows an import or a builtin (`def f(np): np.sum(x)`, `input = ...`) is
recorded too: the import table then leaves those uses unresolved.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass, field

import libcst as cst

from jaxdoctor.static.names import ImportTable
from jaxdoctor.static.walker import walk

ScopeNode = cst.Module | cst.FunctionDef | cst.Lambda | cst.ClassDef | cst.ListComp | cst.SetComp \
    | cst.DictComp | cst.GeneratorExp
FunctionNode = cst.FunctionDef | cst.Lambda
COMPREHENSIONS = (cst.ListComp, cst.SetComp, cst.DictComp, cst.GeneratorExp)
FUNCTIONS = (cst.FunctionDef, cst.Lambda)

# how a name is bound
PARAM = "param"
ASSIGN = "assign"  # `x = value` (value known); also `a, b = value` with `path` set
AUG = "aug"  # `x += value`
FOR = "for"  # `for x in value` (value is the iterable, `path` the position in the target)
WITH = "with"  # `with value as x`
IMPORT = "import"
DEF = "def"
CLASS = "class"
OTHER = "other"  # except-as, del, match patterns, annotations without a value

_BUILTINS = frozenset(dir(builtins))


@dataclass(eq=False, slots=True)
class Bind:
    """One binding of a name."""

    name: str
    how: str
    #: the statement or node that binds (Assign, FunctionDef, ClassDef, For, Param, ...)
    node: cst.CSTNode
    #: the expression bound (the whole right-hand side for unpacking, the iterable for `for`)
    value: cst.BaseExpression | None
    #: order of the binding statement in the file (statements are numbered in source order)
    order: int
    scope: ScopeNode
    #: position of the name in an unpacking target: `a, (b, c) = v` gives b the path (1, 0)
    path: tuple[int, ...] | None = None


@dataclass(eq=False, slots=True)
class Scope:
    node: ScopeNode
    parent: "Scope | None"
    bindings: dict[str, list[Bind]] = field(default_factory=dict)
    declared: dict[str, str] = field(default_factory=dict)  # name → "global" / "nonlocal"
    #: order of the statement that defines this scope in its parent (the `def`, `class`, ...)
    order: int = 0

    @property
    def is_class(self) -> bool:
        return isinstance(self.node, cst.ClassDef)

    @property
    def is_function(self) -> bool:
        return isinstance(self.node, FUNCTIONS)

    def add(self, bind: Bind) -> None:
        self.bindings.setdefault(bind.name, []).append(bind)

    def binds(self, name: str) -> bool:
        return name in self.bindings and name not in self.declared


@dataclass(eq=False, slots=True, repr=False)
class FunctionInfo:
    """A function or lambda of the file, with what the value model learns about it."""

    node: FunctionNode
    name: str
    scope: ScopeNode  # the scope the function is defined in
    cls: cst.ClassDef | None  # the class, for methods
    #: NOT_TRACED / MAYBE (traced as its callers are: a module method) / TRACED
    state: int = 0
    #: parameter name → value (see `values.py`), for parameters with any evidence
    params: dict[str, int] = field(default_factory=dict)
    #: names closed over from enclosing analysed functions, with their values
    captures: dict[str, int] = field(default_factory=dict)
    #: the join of what the function returns
    returns: int = 0
    #: what makes it traced, for messages: "`jax.jit`", "called from `step`"
    via: str = ""
    transform: object | None = None  # the transform it was given to or decorated with
    #: functions whose flow calls this one (re-run when `returns` grows)
    callers: set = field(default_factory=set)
    #: parameters a plain JAX transform traces as pytrees: their fields are traced too
    trees: set = field(default_factory=set)
    #: runs under `vmap` (its own, or a caller's): its values carry a batch dimension
    batched: bool = False
    #: traced abstractly (jit, vmap, scan, ... — not differentiation alone): its tracers have no
    #: values, so Python cannot branch on them
    staged: bool = False
    #: when every `return` returns a tuple of the same length: the value of each position
    return_elements: list | None = None

    def __repr__(self) -> str:
        return f"<FunctionInfo {self.name} state={self.state} params={self.params}>"

    @property
    def traced(self) -> bool:
        return self.state == TRACED_STATE

    @property
    def traced_params(self) -> dict[str, int]:
        return self.params

    @property
    def positional(self) -> list[str]:
        params = self.node.params
        names = [p.name.value for p in (*params.posonly_params, *params.params)]
        if self.is_method and names and not self.is_staticmethod:
            names = names[1:]
        return names

    @property
    def self_name(self) -> str | None:
        if not self.is_method or self.is_staticmethod:
            return None
        params = self.node.params
        first = [*params.posonly_params, *params.params]
        return first[0].name.value if first else None

    @property
    def is_method(self) -> bool:
        return self.cls is not None and isinstance(self.node, cst.FunctionDef)

    @property
    def is_staticmethod(self) -> bool:
        if not isinstance(self.node, cst.FunctionDef):
            return False
        return any(
            isinstance(d.decorator, cst.Name) and d.decorator.value == "staticmethod"
            for d in self.node.decorators
        )

    def all_params(self):
        p = self.node.params
        yield from p.posonly_params
        yield from p.params
        if isinstance(p.star_arg, cst.Param):
            yield p.star_arg
        yield from p.kwonly_params
        if p.star_kwarg is not None:
            yield p.star_kwarg

    def param(self, name: str) -> cst.Param | None:
        for p in self.all_params():
            if p.name.value == name:
                return p
        return None


NOT_TRACED, MAYBE_STATE, TRACED_STATE = 0, 1, 2


def target_names(target: cst.BaseExpression, out: list[cst.Name]) -> None:
    if isinstance(target, cst.Name):
        out.append(target)
    elif isinstance(target, (cst.Tuple, cst.List)):
        for el in target.elements:
            target_names(el.value, out)
    elif isinstance(target, cst.StarredElement):
        target_names(target.value, out)


def _target_paths(target: cst.BaseExpression, path: tuple[int, ...], out: list) -> None:
    """(Name, path) for each name of an unpacking target; a starred element has no fixed path."""
    if isinstance(target, cst.Name):
        out.append((target, path))
    elif isinstance(target, (cst.Tuple, cst.List)):
        starred = any(isinstance(el, cst.StarredElement) for el in target.elements)
        for i, el in enumerate(target.elements):
            v = el.value
            if isinstance(el, cst.StarredElement) or starred:
                names: list[cst.Name] = []
                target_names(v, names)
                out.extend((n, None) for n in names)
            else:
                _target_paths(v, path + (i,), out)


_SMALL = (cst.Assign, cst.AnnAssign, cst.AugAssign, cst.Expr, cst.Return, cst.Raise, cst.Assert,
          cst.Import, cst.ImportFrom, cst.Global, cst.Nonlocal, cst.Del, cst.Pass, cst.Break,
          cst.Continue)
_COMPOUND = (cst.If, cst.For, cst.While, cst.With, cst.Try, cst.TryStar, cst.FunctionDef,
             cst.ClassDef, cst.Match)


class FileIndex:
    """Scopes, bindings, functions, classes and calls of one file, from one walk."""

    def __init__(self, module: cst.Module) -> None:
        self.module = module
        self.names = ImportTable()
        self.scopes: dict[cst.CSTNode, Scope] = {}
        self.functions: dict[FunctionNode, FunctionInfo] = {}
        #: class → the scope node it is defined in
        self.classes: dict[cst.ClassDef, ScopeNode] = {}
        #: every call, with its scope and statement order
        self.calls: list[tuple[cst.Call, ScopeNode, int]] = []
        #: statement (or call) → its order (source order, nested bodies included; a call has
        #: the order of its statement)
        self.order: dict[cst.CSTNode, int] = {}
        #: every node that opens a scope → the scope it is in
        self.scope_of_node: dict[cst.CSTNode, ScopeNode] = {}
        #: class-body annotated fields: (class, name) → AnnAssign
        self.fields: dict[tuple[cst.ClassDef, str], cst.AnnAssign] = {}
        self._build()
        self.names.freeze()

    # ------------------------------------------------------------------ build
    def _build(self) -> None:
        module_scope = Scope(self.module, None)
        self.scopes[self.module] = module_scope
        stack: list[Scope] = [module_scope]
        counter = [0]
        decorators = [0]  # depth inside decorators / class bases: evaluated in the outer scope
        names = self.names
        uses: list[tuple[cst.Name, Scope]] = []

        def current() -> Scope:
            # inside a decorator the function's own scope is not yet open
            return stack[-2] if decorators[0] and len(stack) > 1 else stack[-1]

        def bind(scope: Scope, name: str, how: str, node, value=None, path=None) -> None:
            declared = scope.declared.get(name)
            target = scope
            if declared == "global":
                target = module_scope
            elif declared == "nonlocal":
                target = _nonlocal_owner(scope, name)
                if target is None:
                    return
            target.add(Bind(name, how, node, value, counter[0], target.node, path))

        def next_order(node) -> None:
            counter[0] += 1
            self.order[node] = counter[0]

        def enter_scope(node) -> None:
            parent = current()
            self.scope_of_node[node] = parent.node
            scope = Scope(node, parent, order=counter[0])
            self.scopes[node] = scope
            if isinstance(node, cst.ClassDef):
                bind(parent, node.name.value, CLASS, node)
                self.classes[node] = parent.node
                if parent is module_scope:
                    names.shadowed.add(node.name.value)
            elif isinstance(node, FUNCTIONS):
                name = node.name.value if isinstance(node, cst.FunctionDef) else "<lambda>"
                cls = parent.node if isinstance(parent.node, cst.ClassDef) else None
                self.functions[node] = FunctionInfo(node, name, parent.node, cls)
                if isinstance(node, cst.FunctionDef):
                    bind(parent, name, DEF, node)
                    if parent is module_scope:
                        names.shadowed.add(name)
                p = node.params
                for param in (*p.posonly_params, *p.params, *p.kwonly_params,
                              *([p.star_arg] if isinstance(p.star_arg, cst.Param) else []),
                              *([p.star_kwarg] if p.star_kwarg is not None else [])):
                    scope.add(Bind(param.name.value, PARAM, param, None, counter[0], node))
            stack.append(scope)

        def leave_scope(node) -> None:
            stack.pop()

        def on_def(node) -> None:
            next_order(node)
            enter_scope(node)

        def on_decorator(node) -> None:
            decorators[0] += 1

        def off_decorator(node) -> None:
            decorators[0] -= 1

        def on_small(node) -> None:
            next_order(node)

        def on_compound(node) -> None:
            next_order(node)

        def on_assign(node: cst.Assign) -> None:
            next_order(node)
            scope = current()
            for t in node.targets:
                target = t.target
                if isinstance(target, cst.Name):
                    bind(scope, target.value, ASSIGN, node, node.value)
                    if scope is module_scope:
                        names.shadowed.add(target.value)
                else:
                    found: list = []
                    _target_paths(target, (), found)
                    for n, path in found:
                        bind(scope, n.value, ASSIGN if path is not None else OTHER, node, node.value, path)

        def on_annassign(node: cst.AnnAssign) -> None:
            next_order(node)
            scope = current()
            if isinstance(node.target, cst.Name):
                if isinstance(scope.node, cst.ClassDef):
                    self.fields[(scope.node, node.target.value)] = node
                if node.value is not None:
                    bind(scope, node.target.value, ASSIGN, node, node.value)
                elif scope.is_function:
                    bind(scope, node.target.value, OTHER, node)

        def on_augassign(node: cst.AugAssign) -> None:
            next_order(node)
            if isinstance(node.target, cst.Name):
                bind(current(), node.target.value, AUG, node, node.value)

        def on_for(node: cst.For) -> None:
            next_order(node)
            found: list = []
            _target_paths(node.target, (), found)
            for n, path in found:
                bind(current(), n.value, FOR, node, node.iter, path)

        def on_compfor(node: cst.CompFor) -> None:
            found: list = []
            _target_paths(node.target, (), found)
            for n, path in found:
                bind(stack[-1], n.value, FOR, node, node.iter, path)

        def on_withitem(node: cst.WithItem) -> None:
            if node.asname is not None:
                found: list = []
                _target_paths(node.asname.name, (), found)
                for n, path in found:
                    bind(current(), n.value, WITH, node, node.item, path)

        def on_except(node) -> None:
            if node.name is not None and isinstance(node.name.name, cst.Name):
                bind(current(), node.name.name.value, OTHER, node)

        def on_import(node) -> None:
            next_order(node)
            names.add(node)
            scope = current()
            if isinstance(node, cst.ImportFrom) and isinstance(node.names, cst.ImportStar):
                return
            for alias in node.names:
                if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                    local = alias.asname.name.value
                else:
                    head = alias.name
                    while isinstance(head, cst.Attribute):
                        head = head.value
                    local = head.value if isinstance(head, cst.Name) else None
                if local is not None:
                    bind(scope, local, IMPORT, node)

        def on_walrus(node: cst.NamedExpr) -> None:
            if isinstance(node.target, cst.Name):
                scope = current()
                while isinstance(scope.node, COMPREHENSIONS) and scope.parent is not None:
                    scope = scope.parent
                bind(scope, node.target.value, ASSIGN, node, node.value)

        def on_declare(node) -> None:
            next_order(node)
            how = "global" if isinstance(node, cst.Global) else "nonlocal"
            for item in node.names:
                current().declared[item.name.value] = how

        def on_del(node: cst.Del) -> None:
            next_order(node)
            found: list[cst.Name] = []
            target_names(node.target, found)
            for n in found:
                bind(current(), n.value, OTHER, node)

        def on_call(node: cst.Call) -> None:
            self.calls.append((node, current().node, counter[0]))
            self.order[node] = counter[0]  # a call is ordered with its statement

        def on_name(node: cst.Name) -> None:
            scope = current()
            if scope is not module_scope:
                uses.append((node, scope))

        enter = {
            cst.FunctionDef: [on_def],
            cst.ClassDef: [on_def],
            cst.Lambda: [enter_scope],
            cst.ListComp: [enter_scope], cst.SetComp: [enter_scope], cst.DictComp: [enter_scope],
            cst.GeneratorExp: [enter_scope],
            cst.Decorator: [on_decorator],
            cst.Assign: [on_assign],
            cst.AnnAssign: [on_annassign],
            cst.AugAssign: [on_augassign],
            cst.For: [on_for],
            cst.CompFor: [on_compfor],
            cst.WithItem: [on_withitem],
            cst.ExceptHandler: [on_except],
            cst.ExceptStarHandler: [on_except],
            cst.Import: [on_import],
            cst.ImportFrom: [on_import],
            cst.NamedExpr: [on_walrus],
            cst.Global: [on_declare],
            cst.Nonlocal: [on_declare],
            cst.Del: [on_del],
            cst.Call: [on_call],
            cst.Name: [on_name],
        }
        for tp in _SMALL:
            enter.setdefault(tp, [on_small])
        for tp in _COMPOUND:
            enter.setdefault(tp, [on_compound])
        leave = {
            cst.FunctionDef: [leave_scope], cst.Lambda: [leave_scope], cst.ClassDef: [leave_scope],
            cst.ListComp: [leave_scope], cst.SetComp: [leave_scope], cst.DictComp: [leave_scope],
            cst.GeneratorExp: [leave_scope],
            cst.Decorator: [off_decorator],
        }
        walk(self.module, enter, leave)
        self._module_aliases(module_scope)
        self._shadow(uses)

    def _module_aliases(self, module_scope: Scope) -> None:
        """`zip = util.safe_zip`, `tree_map = jax.tree_util.tree_map` at module level, bound
        once and never declared `global` elsewhere: the name is another spelling of that
        import, like `from jax._src.util import safe_zip as zip`."""
        names = self.names
        rebound_elsewhere = {n for s in self.scopes.values() if s is not module_scope
                             for n, how in s.declared.items() if how == "global"}
        for name, binds in module_scope.bindings.items():
            if name in names.aliases or name in rebound_elsewhere or len(binds) != 1:
                continue
            b = binds[0]
            if b.how != ASSIGN or b.path is not None or not isinstance(b.value, (cst.Name, cst.Attribute)):
                continue
            q = names.qualname(b.value)
            if q is not None and q != f"builtins.{name}":
                names.aliases[name] = q

    def _shadow(self, uses: list[tuple[cst.Name, Scope]]) -> None:
        """Uses of an import alias or a builtin that a local binding shadows resolve to nothing
        (`def f(np): np.sum(x)` is not NumPy's; `input = x; float(input)` calls the builtin
        `float` on a local). A function-level import binds its own alias in that scope."""
        aliases = self.names.aliases
        candidates = set(aliases) | _BUILTINS
        local: set[str] = set()
        for scope in self.scopes.values():
            if scope.parent is not None:
                local.update(n for n in scope.bindings if n in candidates)
        if not local:
            return
        for node, scope in uses:
            name = node.value
            if name not in local:
                continue
            s: Scope | None = scope
            while s is not None and s.parent is not None:
                if not s.is_class or s is scope:
                    if s.declared.get(name) == "global":
                        break
                    found = s.bindings.get(name)
                    if found and name not in s.declared:
                        imports = [b for b in found if b.how == IMPORT]
                        if len(imports) == len(found):
                            self.names.overrides[node] = self._import_target(imports[-1].node, name)
                        else:
                            self.names.overrides[node] = None
                        break
                s = s.parent

    @staticmethod
    def _import_target(node: cst.Import | cst.ImportFrom, local: str) -> str | None:
        table = ImportTable()
        table.add(node)
        return table.aliases.get(local)

    # ---------------------------------------------------------------- queries
    def scope(self, node: cst.CSTNode) -> Scope:
        return self.scopes[node]

    def lookup(self, name: str, scope_node: cst.CSTNode, order: int) -> Bind | None:
        """The binding of `name` that reaches a use at statement `order` in `scope_node`:
        Python's scoping (class bodies are invisible to the functions inside them, `global` and
        `nonlocal` declarations), and the last binding before the use in the scope that owns the
        name. A name free in a function is looked up in the enclosing scope as of the function's
        definition (the last binding before the `def`, else the last one: a module-level helper
        defined below its caller)."""
        scope: Scope | None = self.scopes.get(scope_node)
        first = True
        while scope is not None:
            if scope.is_class and not first:
                scope = scope.parent
                continue
            declared = scope.declared.get(name)
            if declared == "global":
                module = self.scopes[self.module]
                return self._reaching(module, name, self._top_order(scope, order))
            if declared is None and name in scope.bindings:
                return self._reaching(scope, name, order)
            order = scope.order if scope.parent is not None else order
            scope = scope.parent
            first = False
        return None

    def _top_order(self, scope: Scope, order: int) -> int:
        while scope.parent is not None:
            order = scope.order
            scope = scope.parent
        return order

    @staticmethod
    def _reaching(scope: Scope, name: str, order: int) -> Bind | None:
        found = scope.bindings.get(name)
        if not found:
            return None
        best = None
        for b in found:
            if b.order < order:
                best = b
        if best is None:
            # used before any binding here: a loop-carried name, or (for a free name) a
            # binding made after the function was defined
            best = found[-1]
        return best

    def lookup_at(self, name: str, scope_node: cst.CSTNode, stmt: cst.CSTNode | None) -> Bind | None:
        order = self.order.get(stmt, 1 << 30) if stmt is not None else 1 << 30
        return self.lookup(name, scope_node, order)

    def defining_scope(self, name: str, scope_node: cst.CSTNode) -> Scope | None:
        """The scope whose binding of `name` a use in `scope_node` refers to."""
        b = self.lookup(name, scope_node, 1 << 30)
        return self.scopes[b.scope] if b is not None else None

    def enclosing_class(self, node: cst.CSTNode) -> cst.ClassDef | None:
        scope = self.scope_of_node.get(node)
        while scope is not None and not isinstance(scope, cst.Module):
            if isinstance(scope, cst.ClassDef):
                return scope
            scope = self.scope_of_node.get(scope)
        return None

    def enclosing_function(self, node: cst.CSTNode) -> FunctionInfo | None:
        """The innermost function around a scope-opening node (or the node itself)."""
        scope = node
        while scope is not None and not isinstance(scope, cst.Module):
            if isinstance(scope, FUNCTIONS):
                return self.functions.get(scope)
            scope = self.scope_of_node.get(scope)
        return None

    def bindings(self, scope_node: cst.CSTNode, name: str) -> list[Bind]:
        scope = self.scopes.get(scope_node)
        return scope.bindings.get(name, []) if scope is not None else []

    def is_local(self, scope_node: cst.CSTNode, name: str) -> bool:
        scope = self.scopes.get(scope_node)
        return scope is not None and scope.binds(name)


def _nonlocal_owner(scope: Scope, name: str) -> Scope | None:
    """The enclosing function scope a `nonlocal name` in `scope` refers to: the nearest one
    binding it so far, else the nearest function."""
    nearest = None
    s = scope.parent
    while s is not None and s.parent is not None:
        if s.is_function:
            if name in s.bindings and s.declared.get(name) != "nonlocal":
                return s
            nearest = nearest or s
        s = s.parent
    return nearest
