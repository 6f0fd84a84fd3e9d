"""JD509 unused-input: an array argument the traced function never reads.

Off by default (info): a correct program may well ignore a key or a flag. Only float arrays with
more than one element are reported; keys, integers, booleans and scalars never are.
"""

from __future__ import annotations

from jaxdoctor.rules.jaxpr import UnusedInput
from jaxdoctor.trace import jax_internals as ji
from jaxdoctor.trace import source_map as sm
from jaxdoctor.trace.analyzers._common import fmt_bytes, make_finding
from jaxdoctor.trace.analyzers._walk import Analyzer


class UnusedInputAnalyzer(Analyzer):
    code = UnusedInput.code

    def finish(self) -> list:
        walk = self.walk
        jaxpr = walk.closed.jaxpr
        used = set(walk.users(jaxpr))
        used.update(v for v in jaxpr.outvars if not ji.is_literal(v))
        loc = self._entry_location(jaxpr)
        if loc is None:
            return []
        out = []
        for i, v in enumerate(jaxpr.invars):
            if v in used:
                continue
            aval = ji.aval_of(v)
            shape = ji.aval_shape(aval) or ()
            if (
                not ji.dtype_name(aval).startswith(("float", "bfloat"))
                or len(shape) == 0
                or all(d == 1 for d in shape)
            ):
                continue
            name = walk.name(v) or f"argument {i}"
            msg = f"`{name}` ({ji.aval_str(aval)}, {fmt_bytes(ji.aval_nbytes(aval))}) is never used by `{walk.entry_name}`"
            out.append(
                make_finding(
                    UnusedInput,
                    loc,
                    msg,
                    {"argument": name, "index": i, "shape": ji.aval_str(aval)},
                )
            )
        return out

    def _entry_location(self, jaxpr) -> sm.SourceLocation | None:
        short = self.walk.entry_name.rsplit(".", 1)[-1].rsplit(":", 1)[-1]
        for e in jaxpr.eqns:
            frs = sm.user_frames_of(e)
            for fr in frs:
                if fr.function == short or fr.function.endswith("." + short):
                    return sm.SourceLocation.of_frame(fr).at_line(fr.first_line)
            if frs:
                return sm.SourceLocation.of_frame(frs[-1]).at_line(frs[-1].first_line)
        return None
