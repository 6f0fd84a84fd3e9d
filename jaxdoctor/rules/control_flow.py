"""Rules about `lax` control flow: loops inside `cond` branches under `vmap`, loop-invariant
carries, and carry / branch structures that don't line up (failure modes A and B)."""

from __future__ import annotations

import re

import libcst as cst

from jaxdoctor.findings import Severity
from jaxdoctor.rules._syntax import (
    CONDS,
    LOOP_NAMES,
    LOOPS,
    VMAPS,
    arg,
    bindings,
    falls_off_end,
    free_params,
    own_nodes,
    resolve_bound,
    returns,
    transform_name,
    unpackings,
)
from jaxdoctor.static.rule import LintRule
from jaxdoctor.static.index import ASSIGN, DEF
from jaxdoctor.static.syntax import call_args
from jaxdoctor.static.index import FunctionInfo
from jaxdoctor.static.transforms import PALLAS_KERNELS, PARTIALS

FunctionNode = cst.FunctionDef | cst.Lambda


def _fn_label(info: FunctionInfo) -> str:
    return "(a lambda)" if info.name == "<lambda>" else f"`{info.name}`"


def _short(q: str) -> str:
    return q.replace("flax.nnx.", "nnx.")


# --------------------------------------------------------------------------------- JD105


class LoopInsideCondBranch(LintRule):
    code = "JD105"
    name = "loop-inside-cond-branch"
    severity = Severity.WARNING
    summary = "`fori_loop`/`scan`/`while_loop` inside a `cond`/`switch` branch of a vmapped function"
    fix_title = (
        "Run the loop outside the `cond` and select the result with `jnp.where`, or keep the "
        "predicate unbatched (`in_axes=None`) so the `cond` is not turned into a `select`"
    )

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        self.loops: dict[FunctionNode, str] = {}  # function → first loop it calls directly
        self.edges: dict[FunctionNode | None, set[FunctionNode]] = {}
        self.instance_calls: dict[FunctionNode | None, set[tuple[str, str]]] = {}
        self.conds: list[tuple[cst.Call, str, FunctionNode | None, list[FunctionInfo]]] = []
        self.vmapped: dict[FunctionNode, str] = {}
        self.vmapped_instances: list[tuple[str, str]] = []  # ("__call__" | method, transform)

        #: Pallas kernels: their `cond`s stay branches under a vmap of the `pallas_call`
        self.kernels: set[FunctionNode] = set()

    # -- collection, during the single walk
    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        for dec in node.decorators:
            q, _opts = transform_name(self.ctx.names, dec.decorator)
            if q in VMAPS:
                self.vmapped.setdefault(node, q)
            if self._kernel_entry(dec.decorator):
                self.kernels.add(node)  # @pl.kernel(...), @partial(pl.pallas_call, ...)

    def _kernel_entry(self, e: cst.BaseExpression) -> bool:
        names = self.ctx.names
        if isinstance(e, cst.Call):
            if names.qualname(e.func) in PARTIALS and e.args:
                return names.qualname(e.args[0].value) in PALLAS_KERNELS
            e = e.func
        return names.qualname(e) in PALLAS_KERNELS

    def visit_Call(self, node: cst.Call) -> None:
        names = self.ctx.names
        q = names.qualname(node.func)
        fn = self.ctx.enclosing(cst.FunctionDef, cst.Lambda)
        scope = self.ctx.scope()
        if q in LOOP_NAMES and fn is not None:
            self.loops.setdefault(fn, q)
        if q in VMAPS:
            self._vmapped_target(node, q, scope)
        if q in CONDS:
            positional, keywords = call_args(node)
            if "switch" in q:
                exprs = [positional[1].value] if len(positional) > 1 else []
                exprs += [keywords["branches"].value] if "branches" in keywords else []
            else:
                exprs = [positional[i].value for i in (1, 2) if i < len(positional)]
                exprs += [keywords[k].value for k in ("true_fun", "false_fun") if k in keywords]
            branches = []
            for e in exprs:
                branches.extend(self.ctx.resolve_functions(e))
            if branches:
                self.conds.append((node, q, fn, branches))
        # call graph: callees and functions handed to callees
        targets = self.edges.setdefault(fn, set())
        if q is None:
            found = self.ctx.resolve_functions(node.func)
            targets.update(i.node for i in found)
            if not found:
                self._instance_call(fn, node.func)
        for a in node.args:
            if isinstance(a.value, (cst.Name, cst.Lambda, cst.Attribute, cst.Call)):
                found = [i.node for i in self.ctx.resolve_functions(a.value)]
                if q in PALLAS_KERNELS:
                    self.kernels.update(found)  # pl.pallas_call(kernel, ...): not a plain call
                else:
                    targets.update(found)

    def _instance_call(self, fn, func: cst.BaseExpression) -> None:
        if isinstance(func, cst.Name):
            self.instance_calls.setdefault(fn, set()).add(("__call__", func.value))
        elif isinstance(func, cst.Attribute) and not (
            isinstance(func.value, cst.Name) and func.value.value in ("self", "cls")
        ):
            self.instance_calls.setdefault(fn, set()).add((func.attr.value, ""))

    def _vmapped_target(self, call: cst.Call, q: str, scope) -> None:
        expr = arg(call, 0, "f") or arg(call, 0, "fun")
        # jax.vmap(jax.jit(f)), nnx.vmap(nnx.remat(f)): look through inner transforms
        while isinstance(expr, cst.Call) and self.ctx.semantic.transform_of(expr) is not None:
            expr = arg(expr, 0, "f") or arg(expr, 0, "fun")
        if expr is None:
            return
        found = self.ctx.resolve_functions(expr)
        for info in found:
            self.vmapped.setdefault(info.node, q)
        if not found:
            if isinstance(expr, cst.Name) and self.ctx.names.qualname(expr) is None:
                self.vmapped_instances.append(("__call__", q))
            elif isinstance(expr, cst.Attribute) and self.ctx.names.qualname(expr) is None:
                self.vmapped_instances.append((expr.attr.value, q))

    # -- decision, once the walk is done
    def _module_methods(self) -> dict[str, list[FunctionNode]]:
        semantic = self.ctx.semantic
        out: dict[str, list[FunctionNode]] = {}
        for cls in semantic.classes:
            if semantic.class_family(cls) is None:
                continue
            for name, binds in self.ctx.index.scope(cls).bindings.items():
                for b in binds:
                    if b.how == DEF:
                        out.setdefault(name, []).append(b.node)
        return out

    def _successors(self, fn, methods) -> set[FunctionNode]:
        out = set(self.edges.get(fn, ()))
        for method, _ in self.instance_calls.get(fn, ()):
            out.update(methods.get(method, ()))
        return out

    def leave_Module(self, node: cst.Module) -> None:
        if not self.conds or not (self.vmapped or self.vmapped_instances):
            return
        methods = self._module_methods()
        # every function that runs under a vmap: vmapped ones and what they call
        reach: dict[FunctionNode, str] = dict(self.vmapped)
        for method, q in self.vmapped_instances:
            for m in methods.get(method, ()):
                reach.setdefault(m, q)
        todo = list(reach)
        while todo:
            fn = todo.pop()
            for nxt in self._successors(fn, methods):
                if nxt not in reach and nxt not in self.kernels:
                    reach[nxt] = reach[fn]
                    todo.append(nxt)
        for call, q, fn, branches in self.conds:
            if fn is None or fn not in reach:
                continue
            hit = self._loop_in(branches, methods)
            if hit is None:
                continue
            branch, loop = hit
            self.report(
                call,
                f"`{_short(loop)}` runs inside the branch {_fn_label(branch)} of `{_short(q)}`, in code "
                f"under `{_short(reach[fn])}`: with a batched predicate the `{q.rsplit('.', 1)[1]}` "
                "runs every branch and selects, copying broadcast values (e.g. weights) once per "
                "batch element",
            )

    def _loop_in(self, branches: list[FunctionInfo], methods) -> tuple[FunctionInfo, str] | None:
        for branch in branches:
            seen: set = set()
            frontier = [branch.node]
            for _depth in range(4):
                nxt = []
                for fn in frontier:
                    if fn in seen:
                        continue
                    seen.add(fn)
                    if fn in self.loops:
                        return branch, self.loops[fn]
                    nxt.extend(self._successors(fn, methods))
                frontier = nxt
        return None


# ------------------------------------------------------------------- structures (JD107)

#: `jnp` functions that return tuples, not arrays.
_TUPLE_RESULTS = frozenset(
    {"split", "array_split", "hsplit", "vsplit", "dsplit", "meshgrid", "divmod", "frexp", "modf",
     "unique", "nonzero", "where", "histogram", "broadcast_arrays", "unravel_index", "indices",
     "tril_indices", "triu_indices", "diag_indices", "atleast_1d", "atleast_2d", "atleast_3d",
     "eig", "eigh", "qr", "svd", "slogdet", "lu", "schur", "polar"}
)

Shape = tuple  # ("leaf",) | ("tuple", (Shape|None, ...)) | ("list", (...))


class _Shapes:
    def __init__(self, rule: LintRule, fn: FunctionNode | None, scope=None) -> None:
        self.names = rule.ctx.names
        self.index = rule.ctx.index
        self.fn = fn
        # where names are looked up by their last binding: the function, or the scope given
        self.scope = fn if fn is not None else scope
        self._locals: dict[str, cst.BaseExpression] | None = None
        self._top: set[int] | None = None

    def _top_level(self) -> set[int]:
        """ids of the values of plain `name = value` statements directly in the scope's body
        (they run whenever a later statement of that body runs)."""
        if self._top is None:
            self._top = set()
            scope = self.scope
            if isinstance(scope, cst.FunctionDef) and isinstance(scope.body, cst.IndentedBlock):
                stmts = scope.body.body
            elif isinstance(scope, cst.Module):
                stmts = scope.body
            else:
                stmts = ()
            for stmt in stmts:
                if isinstance(stmt, cst.SimpleStatementLine):
                    for small in stmt.body:
                        if isinstance(small, cst.Assign) and len(small.targets) == 1:
                            self._top.add(id(small.value))
        return self._top

    def _last(self, name: str, at: cst.CSTNode | None) -> cst.BaseExpression | None:
        """The value `name` surely holds at `at`: its last binding before `at` is a plain
        assignment in the scope's own body (not under an `if`/loop) and nothing rebinds it
        later in the scope (a later binding could reach `at` round a loop)."""
        if at is None or not isinstance(self.scope, (cst.FunctionDef, cst.Module)):
            return None
        order = self.index.order.get(at)
        if order is None:
            return None
        found = self.index.lookup(name, self.scope, order)
        if found is None or found.scope is not self.scope or found.how != ASSIGN or found.path is not None \
                or id(found.value) not in self._top_level():
            return None
        if any(b.order > found.order for b in self.index.bindings(self.scope, name)):
            return None
        return found.value

    def _local(self, name: str) -> cst.BaseExpression | None:
        """The value of a name bound exactly once in the function, by a plain assignment."""
        if self.fn is None or isinstance(self.fn, cst.Lambda):
            return None
        if self._locals is None:
            counts = bindings(self.fn)
            self._locals = {}
            for node in own_nodes(self.fn):
                if (isinstance(node, cst.Assign) and len(node.targets) == 1
                        and isinstance(node.targets[0].target, cst.Name)):
                    n = node.targets[0].target.value
                    if counts.get(n) == 1:
                        self._locals[n] = node.value
        return self._locals.get(name)

    def of(self, e: cst.BaseExpression | None, depth: int = 0, loose: bool = False,
           at: cst.CSTNode | None = None) -> Shape | None:
        """The structure of `e`, when literally visible. `loose`: arithmetic on unknown names is
        a single value (a `scan` body returning `c + x` is never a `(carry, y)` pair). `at`: the
        node `e` is evaluated at (a `return`, a call), for names bound more than once."""
        if e is None or depth > 4:
            return None
        if isinstance(e, (cst.Tuple, cst.List)):
            if any(isinstance(el, cst.StarredElement) for el in e.elements):
                return None
            kind = "tuple" if isinstance(e, cst.Tuple) else "list"
            return (kind, tuple(self.of(el.value, depth + 1, at=at) for el in e.elements))
        if isinstance(e, (cst.Integer, cst.Float, cst.Imaginary)):
            return ("leaf",)
        if isinstance(e, cst.UnaryOperation) and not isinstance(e.operator, cst.Not):
            return self.of(e.expression, depth + 1, at=at) and ("leaf",)
        if isinstance(e, cst.BinaryOperation):
            sides = (self.of(e.left, depth + 1, loose, at), self.of(e.right, depth + 1, loose, at))
            if any(s is not None and s[0] != "leaf" for s in sides):
                return None
            numbers = any(isinstance(x, (cst.Float, cst.Imaginary)) for x in (e.left, e.right)) or (
                isinstance(e.operator, cst.Add) and any(isinstance(x, cst.Integer) for x in (e.left, e.right)))
            if isinstance(e.operator, (cst.Add, cst.Multiply)) and None in sides and not (loose or numbers):
                return None  # `carry + (x,)` / `[x] * n` could build containers
            return ("leaf",)
        if isinstance(e, cst.Comparison):
            return ("leaf",)
        if isinstance(e, cst.Call):
            q = self.names.qualname(e.func)
            if q is not None and q.startswith(("jax.numpy.", "jax.nn.", "jax.lax.")):
                last = q.rsplit(".", 1)[1]
                if last in _TUPLE_RESULTS or q.startswith(("jax.numpy.linalg.", "jax.lax.linalg")):
                    return None
                if last[:1].islower() and not q.startswith("jax.lax.") or last in (
                        "dot", "dot_general", "add", "mul", "sub", "div", "exp", "log", "tanh",
                        "select", "dynamic_slice", "dynamic_update_slice", "broadcast"):
                    return ("leaf",)
            return None
        if isinstance(e, cst.Name):
            value = self._local(e.value)
            if value is not None:
                return self.of(value, depth + 1)
            value = self._last(e.value, at)
            # names in the bound value are looked up where it was bound
            return self.of(value, depth + 1, at=value) if value is not None else None
        return None


def _returns_at(fn: FunctionNode) -> list[tuple[cst.CSTNode | None, cst.BaseExpression | None]]:
    """`returns(fn)` with the `return` statement each value comes from (None for a lambda)."""
    if isinstance(fn, cst.Lambda):
        return [(None, fn.body)]
    if not returns(fn):
        return []  # a generator
    return [(node, node.value) for node in own_nodes(fn) if isinstance(node, cst.Return)]


def mismatch(a: Shape | None, b: Shape | None) -> bool:
    if a is None or b is None:
        return False
    if a[0] == "leaf" and b[0] == "leaf":
        return False
    if a[0] != b[0]:
        return True
    if len(a[1]) != len(b[1]):
        return True
    return any(mismatch(x, y) for x, y in zip(a[1], b[1]))


def describe(s: Shape) -> str:
    if s[0] == "leaf":
        return "a single value"
    n = len(s[1])
    return f"a {s[0]} of {n}"


class CarryStructureMismatch(LintRule):
    code = "JD107"
    name = "carry-structure-mismatch"
    severity = Severity.ERROR
    summary = "A loop body's carry, or `cond`/`switch` branch outputs, differ in structure"
    fix_title = (
        "Return exactly the structure the loop was given (same tuple arity and nesting; "
        "`scan` bodies return `(carry, y)`), and the same structure from every branch"
    )
    trace_fix_title = "Return a carry with exactly the structure, shapes and dtypes of the initial carry"

    def visit_Call(self, node: cst.Call) -> None:
        q = self.ctx.names.qualname(node.func)
        if q in LOOPS:
            self._loop(node, q)
        elif q in CONDS:
            self._branches(node, q)

    def _body(self, node: cst.Call, position: int, keyword: str):
        expr = arg(node, position, keyword)
        if expr is None:
            return None
        return resolve_bound(self.ctx.semantic, expr, self.ctx.scope(), self.ctx.statement())

    def _loop(self, node: cst.Call, q: str) -> None:
        kind, body_pos, body_kw, init_pos, init_kw = LOOPS[q]
        found = self._body(node, body_pos, body_kw)
        init = arg(node, init_pos, init_kw)
        if found is None or init is None:
            return
        info = found[0]
        shapes = _Shapes(self, info.node)
        init_shape = _Shapes(self, None, self.ctx.scope()).of(init, at=node)
        for ret, value in _returns_at(info.node):
            out = shapes.of(value, loose=True, at=ret)
            if out is None:
                continue
            if kind == "scan":
                if out[0] != "tuple" or len(out[1]) != 2:
                    self.report(
                        node,
                        f"the body {_fn_label(info)} of `{_short(q)}` returns {describe(out)}, "
                        "not a `(carry, y)` pair",
                    )
                    return
                out = out[1][0]
                if out is None:
                    continue
            if mismatch(init_shape, out):
                self.report(
                    node,
                    f"the body {_fn_label(info)} of `{_short(q)}` returns a carry that is "
                    f"{describe(out)}, but the initial carry `{self.ctx.code(init)}` is "
                    f"{describe(init_shape)}",
                )
                return

    def _branches(self, node: cst.Call, q: str) -> None:
        positional, keywords = call_args(node)
        if "switch" in q:
            exprs = [positional[1].value] if len(positional) > 1 else []
            exprs += [keywords["branches"].value] if "branches" in keywords else []
        else:
            exprs = [positional[i].value for i in (1, 2) if i < len(positional)]
            exprs += [keywords[k].value for k in ("true_fun", "false_fun") if k in keywords]
        # the functions one branch expression reaches are alternatives (a `true_fun` parameter
        # that different callers pass different bodies for), not branches of one call: only
        # functions of different branches are compared; a switch's table holds one per branch
        seen: list[tuple[FunctionInfo, Shape, object]] = []
        for i, e in enumerate(exprs):
            elements = list(e.elements) if isinstance(e, (cst.List, cst.Tuple)) else [e]
            for j, el in enumerate(elements):
                # a table (a name bound to a list, `*TABLE` inside a display) holds one function
                # per branch; a plain element or a `cond` branch reaches alternatives of one
                table = "switch" in q and (isinstance(el, cst.StarredElement) or len(elements) == 1)
                expr = el.value if isinstance(el, (cst.Element, cst.StarredElement)) else el
                for info in self.ctx.resolve_functions(expr):
                    group = (i, j, info) if table else (i, j)
                    if self._compare(node, q, info, group, seen):
                        return

    def _compare(self, node: cst.Call, q: str, info: FunctionInfo, group: object, seen: list) -> bool:
        """Report `node` when a return of `info` differs from one of another branch's function."""
        shapes = _Shapes(self, info.node)
        for ret, value in _returns_at(info.node):
            out = shapes.of(value, loose=True, at=ret)
            if out is None:
                continue
            for other, other_shape, other_group in seen:
                if other is not info and other_group != group and mismatch(out, other_shape):
                    self.report(
                        node,
                        f"the branches of `{_short(q)}` return different structures: "
                        f"{_fn_label(other)} returns {describe(other_shape)}, "
                        f"{_fn_label(info)} returns {describe(out)}",
                    )
                    return True
            seen.append((info, out, group))
        return False


# --------------------------------------------------------------------------------- JD106

_WEIGHTY = re.compile(
    r"(?i)(param|weight|model|kernel|embed)|^(w|w\d|W[A-Za-z0-9_]*|net|network|mlp|theta|variables|"
    r"layers?|policy|encoder|decoder|emb|tables?|lookup)$"
)


class CarriedLoopInvariant(LintRule):
    code = "JD106"
    name = "carried-loop-invariant"
    severity = Severity.WARNING
    summary = "A loop body returns a carry element (e.g. weights) exactly as it received it"
    fix_title = (
        "Close over the invariant value in the body (or pass it as a broadcast argument) "
        "instead of threading it through the carry"
    )

    def visit_Call(self, node: cst.Call) -> None:
        q = self.ctx.names.qualname(node.func)
        if q not in LOOPS:
            return
        kind, body_pos, body_kw, init_pos, init_kw = LOOPS[q]
        expr = arg(node, body_pos, body_kw)
        init = arg(node, init_pos, init_kw)
        if expr is None or init is None:
            return
        here = self.ctx.function()
        if here is None or not here.batched:
            return  # only under `vmap` does an invariant carry cost: it becomes batched
        found = resolve_bound(self.ctx.semantic, expr, self.ctx.scope(), self.ctx.statement())
        if found is None:
            return
        info, bound, kw = found
        params = free_params(info, bound, kw)
        want = {"fori": 2, "while": 1, "scan": 2}[kind]
        if params is None or len(params) != want:
            return
        carry = params[1] if kind == "fori" else params[0]
        fn = info.node
        counts = bindings(fn)
        init_elts = (
            [el.value for el in init.elements] if isinstance(init, (cst.Tuple, cst.List))
            and not any(isinstance(el, cst.StarredElement) for el in init.elements) else None
        )
        # names the carry's elements get on entry: `a, b = carry`
        entry: list[str | None] | None = None
        if isinstance(fn, cst.FunctionDef):
            for targets in unpackings(fn, carry):
                if init_elts is None or len(targets) == len(init_elts):
                    entry = [t.value if isinstance(t, cst.Name) else None for t in targets]
                    break
        n = len(init_elts) if init_elts is not None else (len(entry) if entry else None)
        if not n or n < 2:
            return
        shapes = _Shapes(self, fn)
        outs = []
        for value in returns(fn):
            if kind == "scan":
                if not (isinstance(value, cst.Tuple) and len(value.elements) == 2):
                    return
                value = value.elements[0].value
            if isinstance(value, cst.Name):
                value = shapes._local(value.value) or value
            if not isinstance(value, (cst.Tuple, cst.List)) or len(value.elements) != n:
                return
            outs.append([el.value for el in value.elements])
        if not outs or (isinstance(fn, cst.FunctionDef) and falls_off_end(fn)):
            return
        nnx_loop = q.startswith("flax.nnx.")
        for k in range(n):
            name = entry[k] if entry is not None else None
            if name is not None and counts.get(name, 0) != 1:
                continue  # rebound in the body
            if not all(self._same(o[k], k, name, carry, counts) for o in outs):
                continue
            used = _uses(self.ctx.names, fn, name, carry, k)
            label = name or (self.ctx.code(init_elts[k]) if init_elts is not None else f"{carry}[{k}]")
            init_label = self.ctx.code(init_elts[k]) if init_elts is not None else ""
            if nnx_loop and used & {"called", "method", "store", "passed"}:
                continue  # an NNX module the body may update must stay in the carry
            if not (_WEIGHTY.search(label) or _WEIGHTY.search(init_label.rsplit(".", 1)[-1])
                    or "called" in used or "method" in used):
                continue
            target = init_elts[k] if init_elts is not None else node
            self.report(
                target,
                f"`{label}` is returned unchanged by the body {_fn_label(info)} of `{_short(q)}` "
                f"(carry element {k}) in `{here.name}`, which runs under `vmap`: a loop-invariant "
                "value threaded through the carry is batched with it, one copy per batch element",
            )

    def _same(self, e: cst.BaseExpression, k: int, name: str | None, carry: str, counts) -> bool:
        if name is not None and isinstance(e, cst.Name) and e.value == name:
            return True
        if (
            isinstance(e, cst.Subscript) and isinstance(e.value, cst.Name) and e.value.value == carry
            and counts.get(carry, 0) == 0 and len(e.slice) == 1
            and isinstance(e.slice[0].slice, cst.Index)
            and isinstance(e.slice[0].slice.value, cst.Integer)
            and int(e.slice[0].slice.value.value) == k
        ):
            return True
        return False


def _uses(names, fn: FunctionNode, name: str | None, carry: str, k: int) -> set[str]:
    """How the body uses a carry element: "called" `w(x)`, "method" `w.f(x)`, "store" `w.a = ..`,
    "passed" to a call that is not a `jnp`/`lax` function."""
    out: set[str] = set()

    def is_elt(e) -> bool:
        if name is not None:
            return isinstance(e, cst.Name) and e.value == name
        return (isinstance(e, cst.Subscript) and isinstance(e.value, cst.Name) and e.value.value == carry
                and len(e.slice) == 1 and isinstance(e.slice[0].slice, cst.Index)
                and isinstance(e.slice[0].slice.value, cst.Integer)
                and int(e.slice[0].slice.value.value) == k)

    for node in own_nodes(fn):
        if isinstance(node, cst.Call):
            if is_elt(node.func):
                out.add("called")
            elif isinstance(node.func, cst.Attribute) and is_elt(node.func.value):
                out.add("method")
            elif any(is_elt(a.value) for a in node.args):
                q = names.qualname(node.func) or ""
                if not q.startswith(("jax.numpy.", "jax.lax.", "jax.nn.", "jax.tree", "builtins.")):
                    out.add("passed")
        elif isinstance(node, (cst.Assign, cst.AugAssign)):
            targets = [t.target for t in node.targets] if isinstance(node, cst.Assign) else [node.target]
            if any(isinstance(t, cst.Attribute) and is_elt(t.value) for t in targets):
                out.add("store")
    return out
