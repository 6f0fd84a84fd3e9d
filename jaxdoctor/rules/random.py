"""Rules about JAX's explicit PRNG keys: reuse, and constant seeds inside traced code."""

from __future__ import annotations

import libcst as cst

from jaxdoctor.findings import Severity
from jaxdoctor.rules.tracing import where
from jaxdoctor.static.rule import LintRule

#: `jax.random` functions that do not consume the key they are given.
_NON_CONSUMING = frozenset(
    {
        "PRNGKey", "key", "fold_in", "key_data", "wrap_key_data", "key_impl", "clone",
        "default_prng_impl", "threefry_2x32", "threefry2x32_p", "KeyArray", "unsafe_rbg_key",
        "rbg_key", "threefry_prng_impl", "rbg_prng_impl", "unsafe_rbg_prng_impl",
    }
)
_LOOPS = (cst.For, cst.While)
_COMPS = (cst.ListComp, cst.SetComp, cst.DictComp, cst.GeneratorExp)


def _key_ref(expr: cst.BaseExpression | None) -> str | None:
    """A trackable key expression: `key`, `keys[0]` (literal index); else None."""
    if isinstance(expr, cst.Name):
        return expr.value
    if (isinstance(expr, cst.Subscript) and isinstance(expr.value, cst.Name) and len(expr.slice) == 1
            and isinstance(expr.slice[0].slice, cst.Index)
            and isinstance(expr.slice[0].slice.value, cst.Integer)):
        return f"{expr.value.value}[{expr.slice[0].slice.value.value}]"
    return None


class _KeyFlow:
    """Walks the statements of one function (or the module's top level) in order, tracking
    which keys have been consumed. Branches are joined ("consumed on some path"), loop bodies
    run twice (a key consumed in one iteration and not re-bound is reused by the next)."""

    def __init__(self, rule: PrngKeyReuse) -> None:
        self.rule = rule
        self.names = rule.ctx.names
        self.consumed: dict[str, cst.Call] = {}
        self.reported: set[cst.Call] = set()
        #: what an iteration is, for messages ("loop around it", "`jax.lax.scan` body")
        self.iteration = "in an earlier iteration of the loop around it"

    # ---------------------------------------------------------------- calls
    def _consumer_key(self, call: cst.Call) -> cst.BaseExpression | None:
        q = self.names.qualname(call.func)
        if q is not None and q.startswith("jax.random."):
            name = q[len("jax.random."):]
            if "." in name or name in _NON_CONSUMING:
                return None
            for arg in call.args:
                if arg.keyword is not None and arg.keyword.value == "key":
                    return arg.value
            first = call.args[0] if call.args else None
            return first.value if first is not None and first.keyword is None and not first.star else None
        if q == "flax.nnx.Rngs":
            for arg in call.args:
                if not arg.star:
                    return arg.value if _key_ref(arg.value) else None
            return None
        if q is not None and q.startswith("equinox.nn."):
            for arg in call.args:
                if arg.keyword is not None and arg.keyword.value == "key":
                    return arg.value
            return None
        # Linen: model.init(key, x) — the key seeds every parameter
        if (q is None and isinstance(call.func, cst.Attribute) and call.func.attr.value == "init"
                and call.args and call.args[0].keyword is None and len(call.args) >= 2):
            value = call.args[0].value
            if isinstance(value, cst.Name) and "key" in value.value.lower() or (
                isinstance(value, cst.Name) and value.value.lower() in ("rng", "rngs", "init_rng")
            ):
                return value
        return None

    def expr(self, e: cst.CSTNode | None) -> None:
        """Visit the calls of an expression in evaluation order (not into lambdas)."""
        if e is None or isinstance(e, (cst.Lambda, cst.FunctionDef, cst.ClassDef)):
            return
        if isinstance(e, _COMPS):
            self._comprehension(e)
            return
        if isinstance(e, cst.Call):
            self.expr(e.func)
            for arg in e.args:
                self.expr(arg.value)
            key = self._consumer_key(e)
            ref = _key_ref(key) if key is not None else None
            if ref is not None:
                self._consume(ref, e)
            return
        from jaxdoctor.static.walker import children

        for child in children(e):
            self.expr(child)

    def _consume(self, ref: str, call: cst.Call) -> None:
        first = self.consumed.get(ref)
        if first is not None and _initializes(first, self.names) and _initializes(call, self.names):
            return  # initialising two models from one key: how tests build identical models to compare
        if first is not None and first is not call and _constructs(first) and \
                self.rule.ctx.code(first) == self.rule.ctx.code(call):
            return  # `eqx.nn.Linear(1, 2, key=k)` twice: two equal objects, built equal on purpose
        if first is not None and call not in self.reported:
            self.reported.add(call)
            if first is call:
                what = self.iteration
            else:
                what = f"by `{self.rule.ctx.code(first)}` earlier"
            self.rule.report(
                call,
                f"PRNG key `{ref}` was already consumed {what}: the same key gives the same random "
                f"numbers (correlated samples)",
            )
        elif first is None:
            self.consumed[ref] = call
        base = ref.split("[", 1)[0]
        if base == ref:  # using `keys` whole doesn't consume `keys[0]`, but consuming a key is final
            pass

    def _comprehension(self, e) -> None:
        bound: list[str] = []
        comp = e.for_in
        while comp is not None:
            self.expr(comp.iter)
            bound.extend(_names(comp.target))
            comp = comp.inner_for_in
        elts = [e.key, e.value] if isinstance(e, cst.DictComp) else [e.elt]
        saved = dict(self.consumed)
        for _ in range(2):
            for name in bound:
                self._rebind(name)
            comp = e.for_in
            while comp is not None:
                for cond in comp.ifs:
                    self.expr(cond.test)
                comp = comp.inner_for_in
            for elt in elts:
                self.expr(elt)
        # names bound by the comprehension don't leak
        for name in bound:
            if name in saved:
                self.consumed[name] = saved[name]
            else:
                self._rebind(name)

    def _rebind(self, name: str) -> None:
        self.consumed.pop(name, None)
        for ref in [r for r in self.consumed if r.startswith(name + "[")]:
            del self.consumed[ref]

    def bind(self, target: cst.BaseExpression) -> None:
        for name in _names(target):
            self._rebind(name)
        if isinstance(target, cst.Subscript):
            ref = _key_ref(target)
            if ref is not None:
                self.consumed.pop(ref, None)

    # ----------------------------------------------------------- statements
    def block(self, body) -> bool:
        """Run a block; False when it always leaves (return/raise/continue/break)."""
        if isinstance(body, cst.SimpleStatementSuite):
            return self.smalls(body.body)
        stmts = body.body if isinstance(body, cst.IndentedBlock) else body
        for stmt in stmts:
            if not self.stmt(stmt):
                return False
        return True

    def smalls(self, smalls) -> bool:
        for s in smalls:
            if isinstance(s, cst.Assign):
                self.expr(s.value)
                for t in s.targets:
                    self.expr_target(t.target)
                    self.bind(t.target)
            elif isinstance(s, cst.AnnAssign):
                self.expr(s.value)
                if s.value is not None:
                    self.bind(s.target)
            elif isinstance(s, cst.AugAssign):
                self.expr(s.value)
                self.bind(s.target)
            elif isinstance(s, cst.Expr):
                self.expr(s.value)
            elif isinstance(s, cst.Return):
                self.expr(s.value)
                return False
            elif isinstance(s, cst.Raise):
                self.expr(s.exc)
                return False
            elif isinstance(s, (cst.Continue, cst.Break)):
                return False
            elif isinstance(s, cst.Assert):
                self.expr(s.test)
            elif isinstance(s, cst.Del):
                self.bind(s.target)
        return True

    def expr_target(self, target: cst.BaseExpression) -> None:
        if isinstance(target, cst.Subscript):
            for el in target.slice:
                if isinstance(el.slice, cst.Index):
                    self.expr(el.slice.value)

    def branches(self, bodies: list) -> bool:
        start = dict(self.consumed)
        results = []
        for body in bodies:
            self.consumed = dict(start)
            live = self.block(body) if body is not None else True
            if live:
                results.append(self.consumed)
        merged: dict[str, cst.Call] = {}
        for env in results:
            for k, v in env.items():
                merged.setdefault(k, v)
        self.consumed = merged if results else start
        return bool(results)

    def loop(self, body, target: cst.BaseExpression | None) -> None:
        start = dict(self.consumed)
        for _ in range(2):
            if target is not None:
                self.bind(target)
            self.branches([body, None])
        # after the loop: what the body consumed may be consumed
        for k, v in start.items():
            self.consumed.setdefault(k, v)

    def stmt(self, s: cst.CSTNode) -> bool:
        if isinstance(s, cst.SimpleStatementLine):
            return self.smalls(s.body)
        if isinstance(s, cst.If):
            self.expr(s.test)
            orelse = s.orelse
            if isinstance(orelse, cst.If):
                return self.branches([s.body, [orelse]])
            return self.branches([s.body, orelse.body if orelse is not None else None])
        if isinstance(s, cst.For):
            self.expr(s.iter)
            self.loop(s.body, s.target)
            if s.orelse is not None:
                self.block(s.orelse.body)
        elif isinstance(s, cst.While):
            self.expr(s.test)
            self.loop(s.body, None)
        elif isinstance(s, cst.With):
            for item in s.items:
                self.expr(item.item)
                if item.asname is not None:
                    self.bind(item.asname.name)
            if any(_expects_error(item.item) for item in s.items):
                # `with self.assertRaises(...)`: the calls in the block raise, they draw nothing
                saved = dict(self.consumed)
                self.block(s.body)
                self.consumed = saved
                return True
            return self.block(s.body)
        elif isinstance(s, (cst.Try, cst.TryStar)):
            bodies = [s.body] + [h.body for h in s.handlers]
            if s.orelse is not None:
                bodies.append(s.orelse.body)
            live = self.branches(bodies)
            if s.finalbody is not None:
                live = self.block(s.finalbody.body) and live
            return live
        elif isinstance(s, (cst.FunctionDef, cst.ClassDef)):
            self.bind(s.name)
        elif isinstance(s, cst.Match):
            self.expr(s.subject)
            return self.branches([c.body for c in s.cases])
        return True


def _initializes(call: cst.Call, names) -> bool:
    """A whole-model initialisation: Linen `model.init(key, ...)` or `nnx.Rngs(key)`."""
    q = names.qualname(call.func)
    if q == "flax.nnx.Rngs":
        return True
    return q is None and isinstance(call.func, cst.Attribute) and call.func.attr.value == "init"


def _constructs(call: cst.Call) -> bool:
    """A class instantiation (`eqx.nn.Linear(...)`, `MLP(...)`): the callee is capitalised."""
    func = call.func
    last = func.attr.value if isinstance(func, cst.Attribute) else func.value if isinstance(func, cst.Name) else ""
    return last[:1].isupper()


def _expects_error(item: cst.BaseExpression) -> bool:
    """`self.assertRaises(E)`, `self.assertRaisesRegex(...)`, `pytest.raises(E)`."""
    if not isinstance(item, cst.Call):
        return False
    func = item.func
    last = func.attr.value if isinstance(func, cst.Attribute) else func.value if isinstance(func, cst.Name) else ""
    return last.startswith(("assertRaises", "assert_raises")) or last == "raises"


def _names(target: cst.BaseExpression) -> list[str]:
    if isinstance(target, cst.Name):
        return [target.value]
    if isinstance(target, (cst.Tuple, cst.List)):
        return [n for el in target.elements for n in _names(el.value)]
    if isinstance(target, cst.StarredElement):
        return _names(target.value)
    return []


class PrngKeyReuse(LintRule):
    code = "JD110"
    name = "prng-key-reuse"
    severity = Severity.WARNING
    summary = "The same PRNG key consumed twice without a `jax.random.split` in between"
    fix_title = (
        "Split the key first (`key, subkey = jax.random.split(key)`) and give each consumer its "
        "own subkey, or use `jax.random.fold_in(key, i)` in loops"
    )
    trace_fix_title = "Split the key with `jax.random.split` and use each subkey once"

    def visit_Module(self, node: cst.Module) -> None:
        _KeyFlow(self).block(node.body)

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        info = self.ctx.semantic.function(node)
        t = info.transform if info is not None else None
        if t is not None and t.qualname in _LOOP_BODIES:
            # the body of `lax.scan`/`fori_loop`/`while_loop` runs once per iteration, with its
            # parameters bound afresh: a closed-over key it consumes is reused every iteration
            p = node.params
            params = [q.name.value for q in (*p.posonly_params, *p.params, *p.kwonly_params)]
            for star in (p.star_arg, p.star_kwarg):
                if isinstance(star, cst.Param):
                    params.append(star.name.value)
            flow = _KeyFlow(self)
            flow.iteration = (f"in an earlier iteration of `{t.qualname}`, which runs `{node.name.value}` "
                              "once per step with the same closed-over key")
            for _ in range(2):
                for name in params:
                    flow._rebind(name)
                flow.block(node.body)
            return
        _KeyFlow(self).block(node.body)


#: transforms whose function argument runs once per loop iteration
_LOOP_BODIES = frozenset({"jax.lax.scan", "jax.lax.fori_loop", "jax.lax.while_loop"})


_SEEDERS = frozenset({"jax.random.PRNGKey", "jax.random.key"})
#: transforms that only look at shapes and dtypes
ABSTRACT = frozenset({"jax.eval_shape", "flax.nnx.eval_shape", "equinox.filter_eval_shape",
                      "jax.make_jaxpr"})
#: functions whose job is to create state once: a fixed seed there is deliberate
_INIT_NAMES = ("init", "setup", "create", "make", "build", "__init__", "new", "reset", "seed")


class ConstantSeedInTracedFunction(LintRule):
    code = "JD111"
    name = "constant-seed-in-traced-function"
    severity = Severity.WARNING
    summary = "`jax.random.key(0)`/`PRNGKey(0)` with a literal seed inside a traced function"
    fix_title = "Pass the key in as an argument (split it outside for each call)"
    #: off by default: a fixed seed inside traced code is as often deliberate (tests, fixed
    #: constructions, opaque predicates) as it is a bug, and the code cannot tell which
    default_enabled = False

    def visit_Call(self, node: cst.Call) -> None:
        if self.ctx.qualname(node.func) not in _SEEDERS or not node.args:
            return
        seed = node.args[0].value
        if isinstance(seed, cst.UnaryOperation):
            seed = seed.expression
        if not isinstance(seed, cst.Integer):
            return
        info = self.ctx.traced_function()
        if info is None or (info.transform is not None and info.transform.qualname in ABSTRACT):
            return  # shapes only: the values never matter
        parent = self.ctx.parent
        grand = self.ctx.ancestors[-2] if len(self.ctx.ancestors) > 1 else None
        if isinstance(parent, cst.Arg) and isinstance(grand, cst.Call) and isinstance(grand.func, cst.Attribute) \
                and "init" in grand.func.attr.value:
            return  # `cell.initialize_carry(key(0), shape)`: a dummy key for shapes
        name = info.name.lower().lstrip("_")
        if any(name.startswith(p.lstrip("_")) for p in _INIT_NAMES):
            return
        if self._default_for_missing_key(node):
            return
        self.report(
            node,
            f"`{self.ctx.code(node)}` creates the same key on every call{where(info)}: every call "
            f"draws the same random numbers",
        )

    def _default_for_missing_key(self, node: cst.Call) -> bool:
        """`if rng is None: rng = jax.random.key(0)`: a fallback for callers that pass no key,
        which passing one overrides."""
        anc = self.ctx.ancestors
        assign = next((a for a in reversed(anc) if isinstance(a, cst.Assign)), None)
        test = next((a for a in reversed(anc) if isinstance(a, cst.If)), None)
        if assign is None or test is None or not (
                len(assign.targets) == 1 and isinstance(assign.targets[0].target, cst.Name)):
            return False
        target = assign.targets[0].target.value
        t = test.test
        return (assign.value is node and isinstance(t, cst.Comparison) and isinstance(t.left, cst.Name)
                and t.left.value == target and len(t.comparisons) == 1
                and isinstance(t.comparisons[0].operator, cst.Is)
                and isinstance(t.comparisons[0].comparator, cst.Name)
                and t.comparisons[0].comparator.value == "None")
