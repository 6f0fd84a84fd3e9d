"""JD503 traced-prng-key-reuse: JAX's own key-reuse checker, run on the finished jaxpr.

The checker follows typed keys (`jax.random.key`); `jax.internals.check_key_reuse` also lets it
follow raw `jax.random.PRNGKey` keys. Reported at the user's line of the second use.
"""

from __future__ import annotations

from jaxdoctor.rules.jaxpr import PrngKeyReuseTraced
from jaxdoctor.trace import jax_internals as ji
from jaxdoctor.trace import source_map as sm
from jaxdoctor.trace.analyzers._common import make_finding
from jaxdoctor.trace.analyzers._walk import Analyzer, Scope


def _has_keys(jaxpr) -> bool:
    for e in jaxpr.eqns:
        if ji.primitive_name(e) in ("random_wrap", "random_seed", "random_bits", "random_split"):
            return True
        for sub in ji.sub_jaxprs(e):
            if _has_keys(sub.jaxpr):
                return True
    return any(ji.is_key_dtype(getattr(ji.aval_of(v), "dtype", None)) for v in jaxpr.invars)


class PrngKeyReuseAnalyzer(Analyzer):
    code = PrngKeyReuseTraced.code

    def on_eqn(self, eqn, scope: Scope) -> None:  # nothing per equation: the checker runs once
        return

    def finish(self) -> list:
        jaxpr = self.walk.closed.jaxpr
        if not _has_keys(jaxpr):
            return []
        res = ji.check_key_reuse(self.walk.closed)
        if res is None:
            return []
        message, frames = res
        loc = sm.locate_frames(frames)
        if loc is None:
            loc = next((sm.locate(e) for e in jaxpr.eqns if sm.locate(e) is not None), None)
        if loc is None:
            return []
        msg = f"A PRNG key is consumed a second time here (JAX's key-reuse checker: {message})"
        return [make_finding(PrngKeyReuseTraced, loc, msg, {"checker_message": message})]
