"""Randomness shared by accident under `vmap`: every mapped example draws from the same key.

`vmap` runs its function once per example, but an argument it broadcasts (`in_axes=None`), a
value the function closes over, or a `partial`-bound argument is the same for every example.
A PRNG key that reaches a `jax.random` draw that way gives every example the same numbers —
checked on jax 0.10.2: `jax.vmap(lambda x: x + jax.random.normal(key, x.shape))(xs)` adds the
same noise row to every row of `xs`. The NNX spelling: `nnx.vmap(f, in_axes=(None, 0))(model,
xs)` broadcasts the model with its `Rngs` streams, so its `nnx.Dropout` applies one mask to
every example (flax 0.12.8).
"""

from __future__ import annotations

import re

import libcst as cst

from jaxdoctor.findings import Severity
from jaxdoctor.rules._syntax import arg, own_nodes, resolve_bound, transform_name
from jaxdoctor.rules.random import _NON_CONSUMING
from jaxdoctor.rules.vmap import axes_for
from jaxdoctor.static.index import ASSIGN, FOR, PARAM, FunctionInfo, target_names
from jaxdoctor.static.rule import LintRule
from jaxdoctor.static.walker import iter_tree

#: transforms that map their function over an axis of the arguments they don't broadcast
_VMAPS = frozenset({"jax.vmap", "equinox.filter_vmap", "flax.nnx.vmap"})
#: `jax.random` functions that derive keys from a key without drawing numbers from it
_DERIVE = frozenset({"split", "clone"})
#: wrappers that give each example its own random state: nothing to report under them
_SPLITTERS = frozenset({"flax.nnx.split_rngs", "flax.nnx.fork_rngs"})


def _short(q: str) -> str:
    return q.replace("flax.nnx.", "nnx.").replace("equinox.", "eqx.")


class VmapSharedRandomness(LintRule):
    code = "JD112"
    name = "vmap-shared-randomness"
    severity = Severity.WARNING
    summary = "A `vmap`ped function draws random numbers from a key (or `Rngs`) that every example shares"
    fix_title = (
        "Split the key into one per example and map it (`keys = jax.random.split(key, n)`, "
        "`in_axes=0`), or fold in the example index (`jax.random.fold_in(key, i)`); for NNX, "
        "`nnx.split_rngs` + `nnx.StateAxes({nnx.RngState: 0, ...: None})`"
    )

    # ------------------------------------------------------------- find the vmaps
    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        names = self.ctx.names
        decs = [transform_name(names, d.decorator) for d in node.decorators]
        if any(q in _SPLITTERS for q, _ in decs):
            return
        info = self.ctx.semantic.function(node)
        if info is None:
            return
        for dec, (q, opts) in zip(node.decorators, decs):
            if q not in _VMAPS:
                continue
            axes = None
            if opts is not None:
                positional = names.qualname(opts.func) == q  # `jax.vmap(f, in_axes)` style options
                axes = arg(opts, 1 if positional else None, "in_axes")
                if axes is None and any(a.star for a in opts.args):
                    return
            params = [p.name.value for p in (*node.params.posonly_params, *node.params.params)]
            self._check(dec, q, info, params, axes, closed=set())
            return  # the outermost vmap decides what the function sees

    def visit_Call(self, node: cst.Call) -> None:
        q = self.ctx.qualname(node.func)
        if q == "flax.linen.vmap":
            self._linen_vmap(node)
            return
        if q not in _VMAPS or any(a.star for a in node.args):
            return
        for anc in reversed(self.ctx.ancestors):
            if isinstance(anc, cst.Call) and isinstance(anc.func, cst.Call) and \
                    self.ctx.qualname(anc.func.func) in _SPLITTERS:
                return
        fn = arg(node, 0, "f" if q == "flax.nnx.vmap" else "fun")
        if fn is None:
            return
        found = resolve_bound(self.ctx.semantic, fn, self.ctx.scope(), self.ctx.statement())
        if found is None:
            # `jax.vmap(model, in_axes=(0, None))(x, key)`: an instance of a module class of
            # the file, whose `__call__` runs per example
            order = self.ctx.index.order.get(self.ctx.statement(), 1 << 30)
            cls = self.ctx.semantic.resolver.instance_class(fn, self.ctx.scope(), order)
            call = self.ctx.semantic.method(cls, "__call__") if cls is not None else None
            if call is None:
                return
            found = (call, 0, frozenset())
        info, bound, kw = found
        if isinstance(info.node, cst.FunctionDef) and any(
                transform_name(self.ctx.names, d.decorator)[0] in _SPLITTERS for d in info.node.decorators):
            return
        positional = info.positional
        params = [p for p in positional[bound:] if p not in kw]
        closed = set(positional[:bound]) | set(kw)
        self._check(node, q, info, params, arg(node, 1, "in_axes"), closed)

    def _linen_vmap(self, node: cst.Call) -> None:
        """`nn.vmap(Member, ..., split_rngs={"params": True})` over a Linen class of the file
        that draws from an RNG stream (`nn.Dropout` → "dropout", `self.make_rng("noise")`):
        a stream set to `False` in `split_rngs` gives every mapped instance the same draws (a stream
        left out is not passed in: flax raises InvalidRngError, a loud error, not this rule's)."""
        if any(a.star for a in node.args) or not node.args or node.args[0].keyword is not None:
            return
        order = self.ctx.index.order.get(self.ctx.statement(), 1 << 30)
        cls = self.ctx.semantic.resolver.class_named(node.args[0].value, self.ctx.scope(), order)
        if cls is None or self.ctx.semantic.class_family(cls) != "linen":
            return
        streams = self._linen_streams(cls, set())
        if not streams:
            return
        split = next((a.value for a in node.args if a.keyword is not None and a.keyword.value == "split_rngs"), None)
        if not isinstance(split, cst.Dict):
            return  # absent or computed: no evidence (a stream the mapping leaves out is not passed
            # in at all, and flax raises InvalidRngError at init; only `False` shares one key)
        split_off: set[str] = set()
        for el in split.elements:
            if not isinstance(el, cst.DictElement):
                return
            if isinstance(el.key, cst.SimpleString) and isinstance(el.value, cst.Name) and el.value.value == "False":
                split_off.add(el.key.evaluated_value)
        mapped = self._mapped_collections(node)
        # a stream that only initialises collections `variable_axes` does not map (None: one
        # value for every instance) must not be split: flax raises when it is
        shared = sorted(n for n in streams.keys() & split_off if None in streams[n] or streams[n] & mapped)
        if not shared:
            return
        names = ", ".join(f'"{n}"' for n in shared)
        sinks = set().union(*(streams[n] for n in shared))
        what = []
        if None in sinks:
            what.append("the same dropout mask" if "dropout" in shared else "the same draws on every call")
        what += [f"the same initial `{c}` values" for c in sorted(sinks & mapped)]
        self.report(
            split,
            f"`nn.vmap` over `{cls.name.value}` does not split the RNG stream {names} "
            f"(`split_rngs`), which `{cls.name.value}` draws from: every mapped instance gets "
            f"the same random numbers ({', '.join(what)})",
            fix_title=f"Split it: `split_rngs={{..., {shared[0]!r}: True}}`".replace("'", '"'),
        )

    @staticmethod
    def _mapped_collections(node: cst.Call) -> set[str]:
        """Collections `variable_axes` gives an axis (one value per mapped instance)."""
        axes = next((a.value for a in node.args if a.keyword is not None and a.keyword.value == "variable_axes"), None)
        out: set[str] = set()
        if isinstance(axes, cst.Dict):
            for el in axes.elements:
                if isinstance(el, cst.DictElement) and isinstance(el.key, cst.SimpleString) and not (
                        isinstance(el.value, cst.Name) and el.value.value == "None"):
                    out.add(el.key.evaluated_value)
        return out

    @staticmethod
    def _initialiser_draws(cls: cst.ClassDef) -> dict[cst.Call, str]:
        """`make_rng` calls of the class that run inside a `self.variable("coll", name, init)` /
        `self.param(name, init)` initialiser → that collection: written in the call (a lambda),
        or a function the call names (a nested `def init_k`, a method `self._init`)."""
        defs: dict[str, list[cst.FunctionDef]] = {}
        for n in iter_tree(cls):
            if isinstance(n, cst.FunctionDef):
                defs.setdefault(n.name.value, []).append(n)
        out: dict[cst.Call, str] = {}
        for n in iter_tree(cls):
            if not (isinstance(n, cst.Call) and isinstance(n.func, cst.Attribute) and isinstance(n.func.value, cst.Name)
                    and n.func.value.value == "self" and n.func.attr.value in ("variable", "param")):
                continue
            coll = "params" if n.func.attr.value == "param" else (
                n.args[0].value.evaluated_value if n.args and isinstance(n.args[0].value, cst.SimpleString) else "?")
            bodies: list[cst.CSTNode] = [n]
            for a in n.args[1:]:
                e = a.value
                name = e.value if isinstance(e, cst.Name) else e.attr.value if (
                    isinstance(e, cst.Attribute) and isinstance(e.value, cst.Name) and e.value.value == "self") else None
                if name is not None:
                    bodies += defs.get(name, [])
            for body in bodies:
                for m in iter_tree(body):
                    if isinstance(m, cst.Call) and m is not n:
                        out[m] = coll
        return out

    def _linen_streams(self, cls: cst.ClassDef, seen: set) -> dict[str, set]:
        """RNG streams a Linen class (or a Linen class of the file it builds) draws from, each
        with where its draws go: "dropout" (or its `rng_collection`) for an `nn.Dropout` that is
        not `deterministic=True` and the names given to `self.make_rng(...)` map to None for a
        draw on every call, or to the collection a `self.variable("coll", ..., init)` /
        `self.param` initialiser draws into (once, at `init`)."""
        if cls in seen:
            return {}
        seen.add(cls)
        out: dict[str, set] = {}
        in_init = self._initialiser_draws(cls)
        for n in iter_tree(cls):
            if not isinstance(n, cst.Call):
                continue
            f = n.func
            if isinstance(f, cst.Attribute) and isinstance(f.value, cst.Name) and f.value.value == "self" \
                    and f.attr.value in ("variable", "param"):
                continue
            q = self.ctx.qualname(f)
            if q == "flax.linen.Dropout":
                det = next((a.value for a in n.args if a.keyword is not None and a.keyword.value == "deterministic"), None)
                rate = n.args[0].value if n.args and n.args[0].keyword is None else next(
                    (a.value for a in n.args if a.keyword is not None and a.keyword.value == "rate"), None)
                if not (isinstance(det, cst.Name) and det.value == "True") and not (
                        isinstance(rate, (cst.Integer, cst.Float)) and float(rate.evaluated_value) == 0.0):
                    rng = next((a.value for a in n.args if a.keyword is not None and a.keyword.value == "rng_collection"), None)
                    out.setdefault(rng.evaluated_value if isinstance(rng, cst.SimpleString) else "dropout", set()).add(None)
            elif isinstance(f, cst.Attribute) and f.attr.value == "make_rng" and \
                    isinstance(f.value, cst.Name) and f.value.value == "self" and n.args and \
                    isinstance(n.args[0].value, cst.SimpleString):
                out.setdefault(n.args[0].value.evaluated_value, set()).add(in_init.get(n))
            elif isinstance(f, cst.Name):
                other = self.ctx.semantic.resolver.class_named(
                    f, self.ctx.index.scope_of_node.get(cls, self.ctx.module), 1 << 30)
                if other is not None and other is not cls and self.ctx.semantic.class_family(other) == "linen":
                    for k, v in self._linen_streams(other, seen).items():
                        out.setdefault(k, set()).update(v)
        out.pop("params", None)  # initialisation, not per-call draws
        return out

    # ------------------------------------------------------------------- checks
    def _check(self, where: cst.CSTNode, q: str, info: FunctionInfo, params: list[str],
               axes: cst.BaseExpression | None, closed: set[str]) -> None:
        node = info.node
        if isinstance(node.params.star_arg, cst.Param) and axes is not None:
            return
        kinds = axes_for(axes, len(params))
        broadcast = {p for p, k in zip(params, kinds) if k == "none"}
        if q == "flax.nnx.vmap":
            self._nnx_module(where, info, params, kinds, broadcast)
        self._draws(where, q, info, broadcast, closed)

    def _draws(self, where: cst.CSTNode, q: str, info: FunctionInfo, broadcast: set[str],
               closed: set[str]) -> None:
        """Report `jax.random` draws in the function's own body whose key every example shares:
        a broadcast parameter, a closed-over key, or a key split from one of those."""
        node = info.node
        self._fn = info
        own = {p.name.value for p in info.all_params()}
        local = self.ctx.index.scope(node).bindings if self.ctx.index.scopes.get(node) else {}
        #: key name → where it comes from (for the message)
        shared: dict[str, str] = {p: f"`{p}` is broadcast with `in_axes=None`" for p in broadcast}
        shared.update({p: f"`partial` binds `{p}`" for p in closed})
        # names bound in the body from a shared key by `split` (in statement order)
        body = list(own_nodes(node)) if isinstance(node, cst.FunctionDef) else list(iter_tree(node.body))
        for n in body:
            if isinstance(n, cst.Assign) and isinstance(n.value, cst.BaseExpression):
                src = self._derived(n.value, shared, own, local)
                targets: list[cst.Name] = []
                for t in n.targets:
                    target_names(t.target, targets)
                for t in targets:
                    if src is not None:
                        shared[t.value] = src
                    else:
                        shared.pop(t.value, None)
        for n in body:
            if not isinstance(n, cst.Call):
                continue
            why = None
            for key in self._drawn_keys(n):
                why = self._shared(key, shared, own, local)
                if why is not None:
                    break
            if why is None:
                continue
            name = f"{info.cls.name.value}.{info.name}" if info.cls is not None else info.name
            self.report(
                where,
                f"`{_short(q)}` runs `{name}`, whose `{self.ctx.code(n)}` draws from a key every "
                f"example shares ({why}): each example gets the same random numbers",
            )
            return

    def _drawn_keys(self, call: cst.Call) -> list[cst.BaseExpression]:
        """The keys a call draws random numbers from: `jax.random.<sampler>(key, ...)`, an
        Equinox layer built or called with `key=` (`eqx.nn.Linear(..., key=k)`,
        `eqx.nn.Dropout(p)(x, key=k)`), or a Linen `model.apply(..., rngs={"dropout": k})`."""
        q = self.ctx.qualname(call.func)
        if q is not None and q.startswith("jax.random."):
            name = q[len("jax.random."):]
            if "." in name or name in _NON_CONSUMING or name in _DERIVE:
                return []
            key = arg(call, 0, "key")
            return [key] if key is not None else []
        func = call.func
        if isinstance(func, cst.Attribute) and func.attr.value == "apply":
            rngs = next((a.value for a in call.args if a.keyword is not None and a.keyword.value == "rngs"), None)
            if isinstance(rngs, cst.Dict):
                return [el.value for el in rngs.elements if isinstance(el, cst.DictElement)]
            return []
        key = self._drawn_key(call, q)
        return [key] if key is not None else []

    def _drawn_key(self, call: cst.Call, q: str | None) -> cst.BaseExpression | None:
        func = call.func
        if isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name) and \
                self._fn.self_name == func.value.value and self._eqx_layer(self._fn.cls, func.attr.value):
            q = "equinox.nn."  # `self.dropout(x, key=key)`, a layer of Equinox's `nn`
        if q is not None and q.startswith("equinox.nn.") or (
                isinstance(func, cst.Call) and (self.ctx.qualname(func.func) or "").startswith("equinox.nn.")):
            for a in call.args:
                if a.keyword is not None and a.keyword.value == "key":
                    return a.value
        return None

    def _eqx_layer(self, cls: cst.ClassDef | None, attr: str) -> bool:
        """`attr` of the class holds an `eqx.nn` layer: a field annotated `eqx.nn.X`, or
        `self.attr = eqx.nn.X(...)` in a method."""
        if cls is None:
            return False
        for n in iter_tree(cls):
            if isinstance(n, cst.AnnAssign) and isinstance(n.target, cst.Name) and n.target.value == attr:
                if (self.ctx.qualname(n.annotation.annotation) or "").startswith("equinox.nn."):
                    return True
            elif isinstance(n, cst.Assign) and isinstance(n.value, cst.Call) and any(
                    isinstance(t.target, cst.Attribute) and t.target.attr.value == attr for t in n.targets):
                if (self.ctx.qualname(n.value.func) or "").startswith("equinox.nn."):
                    return True
        return False

    def _derived(self, e: cst.BaseExpression, shared: dict[str, str], own: set[str], local) -> str | None:
        """Why `e` is a key every example shares, when it is `split(k)`, `split(k)[i]`,
        `fold_in(k, <literal>)` or `k` itself of a shared `k`."""
        if isinstance(e, cst.Subscript):
            e = e.value
        if isinstance(e, cst.Call):
            q = self.ctx.qualname(e.func)
            if q in ("jax.random.split", "jax.random.clone"):
                k = arg(e, 0, "key")
                return self._shared(k, shared, own, local) if k is not None else None
            if q == "jax.random.fold_in":
                k, data = arg(e, 0, "key"), arg(e, 1, "data")
                if k is not None and isinstance(data, cst.Integer):
                    return self._shared(k, shared, own, local)
            return None
        if isinstance(e, cst.Name) and e.value in shared:
            return shared[e.value]
        return None

    def _shared(self, key: cst.BaseExpression, shared: dict[str, str], own: set[str], local) -> str | None:
        if isinstance(key, cst.Subscript) and isinstance(key.value, cst.Name):
            # `keys[0]` of a closed-over batch of keys is one key, the same for every example
            base = key.value.value
            if base in shared:
                return shared[base]
            if base not in own and base not in local and self._closed_key(base):
                return f"`{base}` is closed over"
            return None
        if isinstance(key, cst.Call):
            return self._derived(key, shared, own, local)
        if not isinstance(key, cst.Name):
            return None
        if key.value in shared:
            return shared[key.value]
        if key.value not in own and key.value not in local and self._closed_key(key.value):
            return f"`{key.value}` is closed over"
        return None

    def _closed_key(self, name: str) -> bool:
        """A free name of the vmapped function bound (where the function is defined) to a key
        the enclosing code made: `jax.random.key/PRNGKey(...)`, `split(...)`, `fold_in(...)`, a
        parameter, or a loop variable. Not an import or a global constant table."""
        b = self.ctx.index.lookup(name, self._fn.node, 1 << 30)
        return b is not None and b.how in (ASSIGN, PARAM, FOR)

    # --------------------------------------------------------------- NNX modules
    def _nnx_module(self, where: cst.CSTNode, info: FunctionInfo, params: list[str], kinds: list[str],
                    broadcast: set[str]) -> None:
        """`nnx.vmap(f, in_axes=(None, 0))(model, x)` where `model` holds a `nnx.Dropout` (or
        draws from its own `Rngs`) and `f` calls it without passing `rngs`: the broadcast
        model's random state is the same for every example."""
        node = info.node
        for name in params:
            if name not in broadcast:
                continue
            called = None
            for n in (own_nodes(node) if isinstance(node, cst.FunctionDef) else iter_tree(node.body)):
                if isinstance(n, cst.Call) and isinstance(n.func, cst.Name) and n.func.value == name and \
                        not any(a.keyword is not None and a.keyword.value in ("rngs", "rng", "key") for a in n.args):
                    called = n
                    break
            if called is None:
                continue
            if self._switched_off():
                return
            cls = self._module_class(info, name, where)
            if cls is not None and self._stochastic(cls, set()):
                what = f"an instance of `{cls.name.value}`, which draws from its own `Rngs`"
            elif self._dropout_passed(info, name, where):
                what = "an `nnx.Dropout` with its own `Rngs`"
            else:
                continue
            self.report(
                where,
                f"`nnx.vmap` broadcasts `{name}` (`in_axes=None`), {what}: every example draws the "
                "same random numbers (the same dropout mask)",
            )
            return

    def _switched_off(self) -> bool:
        """The file switches modules to evaluation (`model.eval()`, `nnx.view(..., deterministic=
        True)`, `set_attributes(deterministic=True)`): dropout may be off where `vmap` runs."""
        for call, _scope, _order in self.ctx.semantic.calls:
            f = call.func
            if isinstance(f, cst.Attribute) and f.attr.value in ("eval", "set_attributes", "set_mode"):
                return True
            if (self.ctx.qualname(f) or "") in ("flax.nnx.view", "flax.nnx.set_mode"):
                return True
        return False

    def _outer_arg(self, info: FunctionInfo, name: str, where: cst.CSTNode) -> cst.BaseExpression | None:
        """What `nnx.vmap(f, ...)(a, b)` passes for `f`'s parameter `name`."""
        parent = self.ctx.parent
        if not (isinstance(where, cst.Call) and isinstance(parent, cst.Call) and parent.func is where):
            return None
        positional = [a for a in parent.args if a.keyword is None and not a.star]
        names = info.positional
        if name in names and names.index(name) < len(positional):
            return positional[names.index(name)].value
        return None

    def _dropout_passed(self, info: FunctionInfo, name: str, where: cst.CSTNode) -> bool:
        e = self._outer_arg(info, name, where)
        if isinstance(e, cst.Name):
            b = self.ctx.lookup(e.value)
            e = b.value if b is not None and b.how == ASSIGN and b.path is None else None
        return isinstance(e, cst.Call) and self.ctx.qualname(e.func) == "flax.nnx.Dropout" and self._random_dropout(e)

    def _module_class(self, info: FunctionInfo, name: str, where: cst.CSTNode) -> cst.ClassDef | None:
        semantic = self.ctx.semantic
        resolver = semantic.resolver
        p = info.param(name)
        if p is None:
            return None
        b = self.ctx.index.lookup(name, info.node, 1 << 30)
        if b is None or b.how != PARAM:
            return None
        cls = resolver.instance_class(cst.Name(name), info.node, 1 << 30)
        if cls is None:
            # `nnx.vmap(f, in_axes=(None, 0))(model, x)`: what the outer call passes
            e = self._outer_arg(info, name, where)
            if e is not None:
                order = self.ctx.index.order.get(self.ctx.statement(), 1 << 30)
                cls = resolver.instance_class(e, self.ctx.scope(), order)
        if cls is None or semantic.class_family(cls) != "nnx":
            return None
        return cls

    @staticmethod
    def _random_dropout(n: cst.Call) -> bool:
        """`nnx.Dropout(rate, rngs=...)` that is not `deterministic=True`."""
        kws = {a.keyword.value: a.value for a in n.args if a.keyword is not None}
        det = kws.get("deterministic")
        return "rngs" in kws and not (isinstance(det, cst.Name) and det.value == "True")

    def _stochastic(self, cls: cst.ClassDef, seen: set) -> bool:
        """The class builds an `nnx.Dropout` with its own `rngs` (and not `deterministic=True`),
        keeps its `Rngs` (`self.rngs = rngs`) and draws from it in a method, or holds a module of
        the file that does."""
        if cls in seen:
            return False
        seen.add(cls)
        kept: set[str] = set()  # attributes that hold the constructor's `Rngs`
        for n in iter_tree(cls):
            if isinstance(n, cst.Assign) and isinstance(n.value, cst.Name) and \
                    re.match(r"(?i)^rngs?$", n.value.value):
                kept.update(t.target.attr.value for t in n.targets if isinstance(t.target, cst.Attribute))
        for n in iter_tree(cls):
            if not isinstance(n, cst.Call):
                continue
            q = self.ctx.qualname(n.func)
            f = n.func
            while kept and isinstance(f, cst.Attribute):
                if f.attr.value in kept and isinstance(f.value, cst.Name) and f.value.value == "self" \
                        and f is not n.func:
                    return True  # `self.rngs.noise()`, `self.rngs()`, `self.rngs.noise.normal(shape)`
                f = f.value
            if kept and isinstance(n.func, cst.Attribute) and n.func.attr.value in kept and \
                    isinstance(n.func.value, cst.Name) and n.func.value.value == "self":
                return True  # `self.rngs()`
            if q == "flax.nnx.Dropout":
                if self._random_dropout(n):
                    return True
            elif isinstance(n.func, cst.Name):
                other = self.ctx.semantic.resolver.class_named(n.func, self.ctx.index.scope_of_node.get(cls, self.ctx.module), 1 << 30)
                if other is not None and other is not cls and self._stochastic(other, seen):
                    return True
        return False
