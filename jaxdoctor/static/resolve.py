"""What a callable expression denotes among the functions and classes of the file.

`f`, `self.step`, `model.loss` (an instance of a class of the file), `partial(f, x)`,
`jax.jit(f, static_argnums=1)`, `[f, g]` (switch branches), `{"a": f}["a"]`, a lambda, or a name
bound to any of these: each resolves through the binding that reaches the use (`FileIndex.lookup`),
never through a function of the same name elsewhere in the file.
"""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

from jaxdoctor.static.index import (
    ASSIGN,
    CLASS,
    DEF,
    PARAM,
    FileIndex,
    FunctionInfo,
    FunctionNode,
    ScopeNode,
)
from jaxdoctor.static.syntax import annotation_expr
from jaxdoctor.static.transforms import MODULE_BASES, PARTIALS, TRANSFORMS, Transform
from jaxdoctor.static.walker import children

#: calls that build a module instance from another (same class)
_SAME_INSTANCE = frozenset({"flax.nnx.merge", "flax.nnx.clone", "copy.copy", "copy.deepcopy",
                            "flax.nnx.view"})


@dataclass(frozen=True, slots=True)
class Partial:
    """What `functools.partial` has already bound: its positional arguments fill the first
    parameters, its keywords close over the parameters they name (Python values, not the
    transform's arguments). With `**kwargs` bound, any parameter with a default or any
    keyword-only one may be among them: those count as closed over."""

    positional: int = 0
    keywords: frozenset[str] = frozenset()
    star_kwargs: bool = False

    def closed(self, info: FunctionInfo, name: str) -> bool:
        if name in self.keywords:
            return True
        if not self.star_kwargs:
            return False
        p = info.param(name)
        kwonly = any(k.name.value == name for k in info.node.params.kwonly_params)
        return p is not None and (p.default is not None or kwonly)

    def then(self, outer: cst.Call) -> "Partial":
        """This binding, wrapped in one more `partial(..., *args, **kw)`."""
        return Partial(
            self.positional + sum(1 for a in outer.args[1:] if a.keyword is None and not a.star),
            self.keywords | {a.keyword.value for a in outer.args[1:] if a.keyword is not None},
            self.star_kwargs or any(a.star == "**" for a in outer.args[1:]),
        )


NO_PARTIAL = Partial()


@dataclass(frozen=True, slots=True)
class Callee:
    """A function a call reaches: what `partial` bound, and the outermost transform the call
    goes through (with the call or decorator that holds its options)."""

    info: FunctionInfo
    bound: Partial = NO_PARTIAL
    transform: Transform | None = None
    options: cst.Call | None = None
    decorated: bool = False
    #: leading call arguments that are not the function's (Linen `apply`'s variables)
    drop: int = 0


class Resolver:
    def __init__(self, index: FileIndex) -> None:
        self.index = index
        self.names = index.names
        self._self_assigns: dict[cst.ClassDef, dict[str, list]] = {}
        self._family: dict[cst.ClassDef, str | None] = {}
        #: function → its call sites, once calls are resolved: a parameter's class is then what
        #: every call site passes for it
        self.sites: dict | None = None

    # ------------------------------------------------------------ functions
    def callees(self, expr: cst.BaseExpression, scope: ScopeNode, order: int, depth: int = 0) -> list[Callee]:
        if depth > 6:
            return []
        index = self.index
        if isinstance(expr, cst.Lambda):
            return [Callee(index.functions[expr])]
        if isinstance(expr, cst.Name):
            b = index.lookup(expr.value, scope, order)
            if b is None:
                return []
            if b.how == DEF:
                info = index.functions[b.node]  # type: ignore[index]
                return [self._decorated(info)]
            if b.how == ASSIGN and b.path is None and b.value is not None:
                return self.callees(b.value, b.scope, b.order, depth + 1)
            if b.how == PARAM and self.sites is not None:
                return self._passed_functions(b, depth)
            return []
        if isinstance(expr, cst.Attribute):
            cls = self.receiver_class(expr.value, scope, order, depth + 1)
            if cls is not None:
                method = self.method(cls, expr.attr.value)
                if method is not None:
                    return [self._decorated(method)]
            return []
        if isinstance(expr, cst.Call):
            q = self.names.qualname(expr.func)
            if q in PARTIALS and expr.args and expr.args[0].keyword is None:
                return [Callee(c.info, c.bound.then(expr), c.transform, c.options, c.decorated)
                        for c in self.callees(expr.args[0].value, scope, order, depth + 1)]
            spec = TRANSFORMS.get(q) if q else None
            if spec is not None:
                out = []
                for fn in self.function_args(expr, spec):
                    for c in self.callees(fn, scope, order, depth + 1):
                        out.append(Callee(c.info, c.bound, spec, expr, False))
                return out
            if q in ("builtins.list", "builtins.tuple") and len(expr.args) == 1 and not expr.args[0].star:
                return self.callees(expr.args[0].value, scope, order, depth + 1)  # `list(branches)`
            if (isinstance(expr.func, cst.Attribute) and expr.func.attr.value == "values"
                    and not expr.args):
                return self.callees(expr.func.value, scope, order, depth + 1)  # `TABLE.values()`
            # `make_loss(cfg)(x)`, `step = make_step(); step(x)`: what a factory of this file returns
            out = []
            for factory in self.callees(expr.func, scope, order, depth + 1):
                if factory.transform is not None or isinstance(factory.info.node, cst.Lambda):
                    continue
                for ret in _returned(factory.info.node):
                    out.extend(self.callees(ret, factory.info.node, 1 << 30, depth + 1))
            return out
        if isinstance(expr, (cst.List, cst.Tuple, cst.Set)):
            out = []
            for el in expr.elements:
                out.extend(self.callees(el.value, scope, order, depth + 1))
            return out
        if isinstance(expr, cst.Dict):
            out = []
            for el in expr.elements:
                if isinstance(el, cst.DictElement):
                    out.extend(self.callees(el.value, scope, order, depth + 1))
            return out
        if isinstance(expr, (cst.ListComp, cst.GeneratorExp)):
            return self.callees(expr.elt, expr, order, depth + 1)
        if isinstance(expr, cst.Subscript):
            out = self.callees(expr.value, scope, order, depth + 1)
            if isinstance(expr.value, cst.Name):
                # `LOSSES["l1"] = l1` at module level, then `LOSSES[name](...)`
                b = index.lookup(expr.value.value, scope, order)
                if b is not None and isinstance(b.scope, cst.Module) and isinstance(b.value, (cst.Dict, cst.List)):
                    for value in self._module_stores().get(expr.value.value, ()):
                        out.extend(self.callees(value, b.scope, 1 << 30, depth + 1))
            return out
        return []

    def _passed_functions(self, b, depth: int) -> list[Callee]:
        """A parameter called or transformed as a function (`def step(x, proj): proj(x)`): the
        functions of this file that its call sites pass for it."""
        info = self.index.functions.get(b.scope)
        if info is None:
            return []
        out: list[Callee] = []
        for call, scope, order, callee in self.sites.get(info, ()):  # type: ignore[union-attr]
            arg = bind_args(call, info.positional, callee).get(b.name)
            if arg is not None and not (isinstance(arg, cst.Name) and arg.value == b.name
                                        and scope is b.scope):
                out.extend(self.callees(arg, scope, order, depth + 1))
        return out

    def _module_stores(self) -> dict[str, list[cst.BaseExpression]]:
        """`NAME[key] = value` statements of the module's own code (not in functions)."""
        found = getattr(self, "_stores", None)
        if found is None:
            found = {}
            stack: list[cst.CSTNode] = list(self.index.module.body)
            while stack:
                node = stack.pop()
                if isinstance(node, (cst.FunctionDef, cst.ClassDef)):
                    continue
                if isinstance(node, cst.SimpleStatementLine):
                    for small in node.body:
                        if isinstance(small, cst.Assign):
                            for t in small.targets:
                                if isinstance(t.target, cst.Subscript) and isinstance(t.target.value, cst.Name):
                                    found.setdefault(t.target.value.value, []).append(small.value)
                    continue
                body = getattr(node, "body", None)
                if isinstance(body, cst.IndentedBlock):
                    stack.extend(body.body)
                orelse = getattr(node, "orelse", None)
                if orelse is not None and isinstance(getattr(orelse, "body", None), cst.IndentedBlock):
                    stack.extend(orelse.body.body)
            self._stores = found
        return found

    def function_args(self, call: cst.Call, spec: Transform) -> list[cst.BaseExpression]:
        positional = [a for a in call.args if a.keyword is None and not a.star]
        keywords = {a.keyword.value: a for a in call.args if a.keyword is not None}
        out = [positional[i].value for i in spec.fn_positions if i < len(positional)]
        out += [keywords[k].value for k in spec.fn_keywords if k in keywords]
        return out

    def _decorated(self, info: FunctionInfo) -> Callee:
        """A call of a decorated function goes through its outermost transform decorator."""
        node = info.node
        if isinstance(node, cst.FunctionDef):
            for dec in node.decorators:
                found = self.transform_of_expr(dec.decorator)
                if found is not None:
                    return Callee(info, NO_PARTIAL, found[0], found[1], True)
        return Callee(info)

    def transform_of_expr(self, expr: cst.BaseExpression) -> tuple[Transform, cst.Call | None] | None:
        """`jax.jit`, `jax.jit(...)` as a decorator factory, or `partial(jax.jit, ...)`."""
        q = self.names.qualname(expr)
        if q in TRANSFORMS:
            return TRANSFORMS[q], None
        if isinstance(expr, cst.Call):
            q = self.names.qualname(expr.func)
            if q in TRANSFORMS:
                return TRANSFORMS[q], expr
            if q in PARTIALS and expr.args:
                inner = self.names.qualname(expr.args[0].value)
                if inner in TRANSFORMS:
                    return TRANSFORMS[inner], expr
        return None

    # -------------------------------------------------------------- classes
    def class_named(self, expr: cst.BaseExpression, scope: ScopeNode, order: int) -> cst.ClassDef | None:
        """The class of this file that a name denotes at that point."""
        if not isinstance(expr, cst.Name):
            return None
        b = self.index.lookup(expr.value, scope, order)
        if b is not None and b.how == CLASS:
            return b.node  # type: ignore[return-value]
        return None

    def receiver_class(self, expr: cst.BaseExpression, scope: ScopeNode, order: int,
                       depth: int = 0) -> cst.ClassDef | None:
        """The class of this file whose method `expr.m` is: `self`/`cls` in a method, an
        instance `Cls(...)`, a name bound to one or annotated with the class, `self.attr`
        assigned one."""
        if isinstance(expr, cst.Name):
            fn = self.index.enclosing_function(scope)
            if fn is not None and fn.is_method and expr.value == fn.self_name \
                    and self.index.lookup(expr.value, scope, order) is not None \
                    and self.index.lookup(expr.value, scope, order).how == PARAM:
                return fn.cls
        cls = self.class_named(expr, scope, order)
        if cls is not None:
            return cls  # `Cls.method` (a static or class method, or unbound)
        return self.instance_class(expr, scope, order, depth)

    def instance_class(self, expr: cst.BaseExpression, scope: ScopeNode, order: int,
                       depth: int = 0) -> cst.ClassDef | None:
        """The class of this file that `expr` is an instance of, on evidence."""
        if depth > 6:
            return None
        index = self.index
        if isinstance(expr, cst.Call):
            cls = self.class_named(expr.func, scope, order)
            if cls is not None:
                return cls
            q = self.names.qualname(expr.func)
            if q in _SAME_INSTANCE and expr.args:
                return self.instance_class(expr.args[0].value, scope, order, depth + 1)
            return None
        if isinstance(expr, cst.Name):
            b = index.lookup(expr.value, scope, order)
            if b is None:
                return None
            if b.how == ASSIGN and b.path is None and b.value is not None:
                return self.instance_class(b.value, b.scope, b.order, depth + 1)
            if b.how == PARAM:
                ann = annotation_expr(b.node)  # type: ignore[arg-type]
                if ann is not None:
                    return self.class_named(ann, b.scope, b.order)
                return self._passed_class(b.scope, expr.value, depth)
            return None
        if isinstance(expr, cst.Attribute) and isinstance(expr.value, cst.Name):
            fn = index.enclosing_function(scope)
            if fn is not None and fn.is_method and expr.value.value == fn.self_name:
                return self.attribute_class(fn.cls, expr.attr.value, depth + 1)  # type: ignore[arg-type]
        return None

    def _passed_class(self, fn_node, name: str, depth: int) -> cst.ClassDef | None:
        """The class every call site of the function passes for its parameter `name`."""
        info = self.index.functions.get(fn_node)
        if info is None or self.sites is None or info.is_method:
            return None
        found = set()
        for call, scope, order, callee in self.sites.get(info, ()):
            arg = bind_args(call, info.positional, callee).get(name)
            if arg is None:
                return None
            cls = self.instance_class(arg, scope, order, depth + 1)
            if cls is None:
                return None
            found.add(cls)
        return found.pop() if len(found) == 1 else None

    def attribute_class(self, cls: cst.ClassDef, attr: str, depth: int = 0) -> cst.ClassDef | None:
        """`self.attr` of an instance of `cls`: a class of this file, from `self.attr = C(...)`
        in a method or a field annotated `attr: C`."""
        field = self.index.fields.get((cls, attr))
        if field is not None:
            found = self.class_named(field.annotation.annotation, cls, self.index.order.get(field, 1 << 30))
            if found is not None:
                return found
        for stmt, info in self._self_assignments(cls).get(attr, ()):
            found = self.instance_class(stmt.value, info.node, self.index.order.get(stmt, 1 << 30), depth + 1)
            if found is not None:
                return found
        return None

    def _self_assignments(self, cls: cst.ClassDef) -> dict[str, list]:
        """attr → the `self.attr = value` statements in the methods of `cls`, in the order of the
        methods and of their bodies (built once per class)."""
        table = self._self_assigns.get(cls)
        if table is not None:
            return table
        table = self._self_assigns[cls] = {}
        for info in self.index.functions.values():
            if info.cls is not cls or not isinstance(info.node, cst.FunctionDef):
                continue
            self_name = info.self_name
            if self_name is None:
                continue
            for stmt in _assignments(info.node):
                for t in stmt.targets:
                    target = t.target
                    if (isinstance(target, cst.Attribute) and isinstance(target.value, cst.Name)
                            and target.value.value == self_name):
                        table.setdefault(target.attr.value, []).append((stmt, info))
        return table

    def method(self, cls: cst.ClassDef, name: str, seen: set | None = None) -> FunctionInfo | None:
        """`cls.name` as a function of this file, through base classes of this file."""
        for b in self.index.bindings(cls, name):
            if b.how == DEF:
                return self.index.functions[b.node]  # type: ignore[index]
        seen = seen or set()
        seen.add(cls)
        for base in cls.bases:
            parent = self.class_named(base.value, self.index.classes[cls], self.index.order.get(cls, 1 << 30))
            if parent is not None and parent not in seen:
                found = self.method(parent, name, seen)
                if found is not None:
                    return found
        return None

    def class_family(self, cls: cst.ClassDef) -> str | None:
        """"nnx", "linen" or "equinox" when `cls` derives (here or via this file) from a Module."""
        if cls in self._family:
            return self._family[cls]
        self._family[cls] = None  # cycles
        family = None
        for base in cls.bases:
            q = self.names.qualname(base.value)
            if q in MODULE_BASES:
                family = MODULE_BASES[q]
            elif q is not None and q.startswith("flax.nnx.") and q[9:10].isupper():
                family = "nnx"  # nnx.Linear, nnx.Sequential, ... subclasses
            elif q is not None and q.startswith("flax.linen.") and q[11:12].isupper():
                family = "linen"
            elif q is not None and q.startswith("equinox.nn."):
                family = "equinox"
            else:
                local = self.class_named(base.value, self.index.classes[cls], self.index.order.get(cls, 1 << 30))
                if local is not None:
                    family = self.class_family(local)
            if family:
                break
        self._family[cls] = family
        return family


def _returned(fn: cst.FunctionDef) -> list[cst.BaseExpression]:
    """The expressions a function returns (its own `return`s, not nested functions')."""
    out = []
    stack: list[cst.CSTNode] = [fn.body]
    while stack:
        node = stack.pop()
        if isinstance(node, (cst.FunctionDef, cst.ClassDef, cst.Lambda)):
            continue
        if isinstance(node, cst.Return):
            if node.value is not None:
                out.append(node.value)
            continue
        if isinstance(node, cst.BaseExpression):
            continue
        stack.extend(children(node))
    return out


def bind_args(call: cst.Call, positional: list[str], callee: Callee) -> dict[str, cst.BaseExpression]:
    """Parameter name → argument expression, for the plain arguments of a call."""
    out: dict[str, cst.BaseExpression] = {}
    names = positional[callee.bound.positional:]
    skip = callee.drop  # Linen `apply`: the variables come first
    index = 0
    for i, arg in enumerate(call.args):
        if arg.star == "*":
            # after `*args` positions are known only from the end, and only when the call fills
            # the parameters exactly (`f(*inputs, shapes, sparsity)`): leave them unbound
            for later in call.args[i + 1:]:
                if later.keyword is not None:
                    out[later.keyword.value] = later.value
            return out
        if arg.star:
            continue
        if arg.keyword is not None:
            out[arg.keyword.value] = arg.value
            continue
        if skip:
            skip -= 1
            continue
        if index < len(names):
            out[names[index]] = arg.value
        index += 1
    return out


def _assignments(fn: FunctionNode):
    """The `Assign` statements directly in a function body (nested blocks included, nested
    functions not)."""
    stack = [fn.body]
    while stack:
        node = stack.pop()
        if isinstance(node, cst.Assign):
            yield node
            continue
        if isinstance(node, (cst.FunctionDef, cst.ClassDef, cst.Lambda)):
            continue
        if isinstance(node, (cst.IndentedBlock, cst.SimpleStatementSuite)):
            stack.extend(node.body)
        elif isinstance(node, cst.SimpleStatementLine):
            stack.extend(node.body)
        elif isinstance(node, (cst.If, cst.For, cst.While, cst.With, cst.Try, cst.TryStar)):
            stack.append(node.body)
            orelse = getattr(node, "orelse", None)
            if orelse is not None:
                stack.append(orelse if isinstance(orelse, cst.If) else orelse.body)
            for h in getattr(node, "handlers", ()):
                stack.append(h.body)
            final = getattr(node, "finalbody", None)
            if final is not None:
                stack.append(final.body)
