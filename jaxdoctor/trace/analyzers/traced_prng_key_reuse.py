"""JD503 traced-prng-key-reuse: the same PRNG key consumed twice in the traced program.

Typed keys (`jax.random.key`): JAX's own key-reuse checker, run on the finished jaxpr.
Raw keys (`jax.random.PRNGKey`, `uint32[2]`) are wrapped afresh at every use, which the checker
cannot follow, so they get the same check here: two `random_wrap`s of one raw key whose wrapped
keys are both consumed (sampled or split; `fold_in` does not consume), or one inside a loop body
wrapping a key from outside the loop. Reported at the user's line of the second use.
"""

from __future__ import annotations

from typing import Any

from jaxdoctor.rules.jaxpr import TracedPrngKeyReuse
from jaxdoctor.trace import jax_internals as ji
from jaxdoctor.trace import source_map as sm
from jaxdoctor.trace.analyzers._common import make_finding
from jaxdoctor.trace.analyzers._walk import Analyzer, Scope

_TYPED_SINKS = frozenset({"random_bits", "random_split", "random_gamma"})
_NOT_CONSUMING = frozenset({"random_fold_in", "eq", "ne", "random_key_data"})


def _has_typed_keys(jaxpr: Any) -> bool:
    for e in jaxpr.eqns:
        if ji.primitive_name(e) != "random_wrap" and any(
            ji.is_key_dtype(getattr(ji.aval_of(v), "dtype", None)) for v in e.outvars
        ):
            return True
        for sub in ji.sub_jaxprs(e):
            if _has_typed_keys(sub.jaxpr):
                return True
    return any(
        ji.is_key_dtype(getattr(ji.aval_of(v), "dtype", None)) for v in jaxpr.invars
    )


class TracedPrngKeyReuseAnalyzer(Analyzer):
    code = TracedPrngKeyReuse.code

    def __init__(self, walk) -> None:
        super().__init__(walk)
        self.wraps: dict = {}  # root raw var -> [(eqn, scope)]
        self.findings: list = []
        self.loop_roots: set = set()

    def on_eqn(self, eqn: Any, scope: Scope) -> None:
        name = ji.primitive_name(eqn)
        if name in _TYPED_SINKS:
            self._typed_in_loop(eqn, scope)
            return
        if name != "random_wrap" or ji.is_literal(eqn.invars[0]):
            return
        if not self._consumed(eqn.outvars[0], scope.jaxpr, 0):
            return
        root, crossed_loop = self.walk.root(eqn.invars[0])
        uses = self.wraps.setdefault(root, [])
        uses.append((eqn, scope))
        if len(uses) == 2 or (crossed_loop and len(uses) == 1):
            loc = sm.locate(eqn, scope.parents)
            if loc is None:
                return
            why = (
                "inside a loop body, with a key from outside the loop: every iteration draws the same numbers"
                if len(uses) == 1
                else "a second time without a split"
            )
            self.findings.append(
                make_finding(
                    TracedPrngKeyReuse,
                    loc,
                    f"A PRNG key (`jax.random.PRNGKey`) is consumed {why}",
                    {"key": ji.aval_str(ji.aval_of(eqn.invars[0]))},
                )
            )

    def _typed_in_loop(self, eqn: Any, scope: Scope) -> None:
        key = eqn.invars[0]
        if ji.is_literal(key) or not ji.is_key_dtype(
            getattr(ji.aval_of(key), "dtype", None)
        ):
            return
        root, crossed_loop = self.walk.root(key)
        if not crossed_loop or id(root) in self.loop_roots:
            return
        self.loop_roots.add(id(root))
        loc = sm.locate(eqn, scope.parents)
        if loc is not None:
            self.findings.append(
                make_finding(
                    TracedPrngKeyReuse,
                    loc,
                    "A PRNG key from outside a loop is consumed inside the loop body: every iteration "
                    "draws the same numbers",
                    {"key": ji.aval_str(ji.aval_of(key))},
                )
            )

    def _consumed(self, key: Any, jaxpr: Any, depth: int) -> bool:
        if depth > 6:
            return True
        for user in self.walk.users(jaxpr).get(key, ()):
            name = ji.primitive_name(user)
            if name in _NOT_CONSUMING:
                continue
            subs = [s for s in ji.sub_jaxprs(user) if s.kind == "call"]
            if not subs:
                return True
            k = [i for i, v in enumerate(user.invars) if v is key]
            if any(
                self._consumed(s.jaxpr.invars[i], s.jaxpr, depth + 1)
                for s in subs
                for i in k
            ):
                return True
        return False

    def finish(self) -> list:
        out = list(self.findings)
        jaxpr = self.walk.closed.jaxpr
        if out or not _has_typed_keys(jaxpr):
            return out
        res = ji.check_key_reuse(self.walk.closed)
        if res is None:
            return out
        message, frames = res
        loc = sm.locate_frames(frames)
        if loc is None:
            return out
        msg = f"A PRNG key is consumed a second time here (JAX's key-reuse checker: {message})"
        out.append(
            make_finding(TracedPrngKeyReuse, loc, msg, {"checker_message": message})
        )
        return out
