"""JD521 identical-random-draws: under `vmap`, a random draw whose key is broadcast (unbatched)
while its result is mixed into batched values, so every example gets the same random numbers.

The general form of JD501's identical ensemble: `nnx.vmap(f, in_axes=(None, 0))` over a module
with `nnx.Dropout` (the `Rngs` are broadcast with the module: one dropout mask for the whole
batch), `jax.vmap(noisy, in_axes=(None, 0))(key, xs)` (one noise vector for every example).
Read from the batched jaxpr: a value derived from random bits that is not batched meets a
batched value in an elementwise operation (`add`, `mul`, `select_n`, ...) with the same
per-example shape (or a scalar): a mask or noise meant per example. A random draw that only
feeds a matmul (one weight sample for the batch, on purpose) is left alone.

Reported at the user's line of the draw, and at the `vmap` that broadcasts its key.
"""

from __future__ import annotations

from typing import Any

from jaxdoctor.rules.trace_checks import IdenticalRandomDraws
from jaxdoctor.trace import jax_internals as ji
from jaxdoctor.trace import source_map as sm
from jaxdoctor.trace.analyzers._common import make_finding
from jaxdoctor.trace.analyzers._walk import BATCHED, RANDOM, Analyzer, Scope

#: operations that combine their operands element by element
_ELEMENTWISE = frozenset({
    "add", "sub", "mul", "div", "max", "min", "select_n", "and", "or", "xor", "pow", "atan2",
    "rem", "nextafter", "add_any",
})
_RANDOM_BITS = frozenset({"random_bits", "threefry2x32", "rng_bit_generator", "rng_uniform"})


class IdenticalRandomDrawsAnalyzer(Analyzer):
    code = IdenticalRandomDraws.code

    def __init__(self, walk) -> None:
        super().__init__(walk)
        self.draws: dict = {}  # (path, line) of the draw -> (draw location, shape, example shape)

    def on_eqn(self, eqn: Any, scope: Scope) -> None:
        w = self.walk
        if w.batch_axes is None or ji.primitive_name(eqn) not in _ELEMENTWISE:
            return
        ins = [v for v in eqn.invars if not ji.is_literal(v)]
        batched = [v for v in ins if w.flag(v) & BATCHED]
        shared = [v for v in ins if (w.flag(v) & RANDOM) and not (w.flag(v) & BATCHED)]
        if not batched or not shared:
            return
        example = self._example_shape(batched[0])
        for v in shared:
            u, draw = self._drawn(v)
            if draw is None:
                continue
            shape = ji.aval_shape(ji.aval_of(u))
            if shape is None or example is None or not (shape == example or shape == () or
                                                        _without_leading_ones(shape) == example):
                continue
            loc = sm.locate(draw, scope.parents)
            if loc is None or (loc.path, loc.line) in self.draws:
                continue
            self.draws[(loc.path, loc.line)] = (loc, ji.aval_str(ji.aval_of(u)), draw)

    def _example_shape(self, v: Any) -> tuple | None:
        shape = ji.aval_shape(ji.aval_of(v))
        size = self.walk.batch_size
        if shape is None:
            return None
        for i, d in enumerate(shape):  # one axis of the batch size is the batch
            if size is None or d == size:
                return shape[:i] + shape[i + 1:]
        return None

    def _drawn(self, v: Any) -> tuple[Any, Any]:
        """The random value before the batching rule broadcast it, and the random-bits equation
        it comes from (upstream, through the same jaxpr)."""
        w = self.walk
        u = v
        e = self._producer(u)
        while e is not None and ji.primitive_name(e) in ("broadcast_in_dim", "reshape", "convert_element_type"):
            nxt = e.invars[0]
            if ji.is_literal(nxt) or ji.aval_shape(ji.aval_of(nxt)) is None:
                break
            u, e = nxt, self._producer(nxt)
        for p in w.upstream(u, limit=400, producer=self._producer, follow=lambda a: bool(w.flag(a) & RANDOM)):
            if ji.primitive_name(p) in _RANDOM_BITS or _calls_random(p):
                return u, p
        return u, None

    def _producer(self, x: Any) -> Any:
        """The equation that made `x`, following a nested jaxpr's inputs out to its caller's."""
        p = self.walk.producer(x)
        if p is None and not ji.is_literal(x):
            outer, _ = self.walk.root(x)
            if outer is not x:
                p = self.walk.producer(outer)
        return p

    def finish(self) -> list:
        out = []
        for (path, line), (loc, shape, draw) in self.draws.items():
            vmap_loc = _vmap_line(self.walk) or _vmap_decorator(draw)
            where = ""
            if vmap_loc is not None and (vmap_loc.path, vmap_loc.line) != (path, line):
                where = f" by the `vmap` at line {vmap_loc.line}" if vmap_loc.path == path else \
                    f" by the `vmap` at {vmap_loc.path}:{vmap_loc.line}"
            n = self.walk.batch_size
            batch = f"all {n} examples" if n else "every example"
            msg = (f"this random draw ({shape}) uses a key broadcast{where} (`in_axes=None`), but its result "
                   f"is mixed into batched values: {batch} get the same random numbers")
            details = {"shape": shape, "batch_size": n, "vmap_line": vmap_loc.line if vmap_loc else None,
                       "draw_line": line}
            out.append(make_finding(IdenticalRandomDraws, loc, msg, details))
            if vmap_loc is not None and (vmap_loc.path, vmap_loc.line) != (path, line):
                vmsg = (f"`vmap` broadcasts the key of the random draw at line {line} ({shape}): {batch} of "
                        "the batch get the same random numbers")
                out.append(make_finding(IdenticalRandomDraws, vmap_loc, vmsg, details))
        return out


def _without_leading_ones(shape: tuple) -> tuple:
    i = 0
    while i < len(shape) and shape[i] == 1:
        i += 1
    return shape[i:]


def _calls_random(eqn: Any) -> bool:
    """A jit call (e.g. `_uniform`, `_bernoulli`) whose body draws random bits."""
    for sub in ji.sub_jaxprs(eqn):
        for e in sub.jaxpr.eqns:
            if ji.primitive_name(e) in _RANDOM_BITS or _calls_random(e):
                return True
    return False


def _vmap_line(walk: Any) -> sm.SourceLocation | None:
    """The user's `vmap`/`nnx.vmap` call among the frames that made JAX trace this jaxpr."""
    for path, line, function in walk.callers:
        if "vmap" in sm.source_line(path, line):
            return sm.SourceLocation.at(path, line, function)
    return None


def _vmap_decorator(draw: Any) -> sm.SourceLocation | None:
    """A `@jax.vmap`/`@nnx.vmap` decorator of a user function the draw was traced in."""
    for fr in reversed(sm.user_frames_of(draw)):
        line = sm.decorator_line_mentioning(fr.file, fr.first_line, "vmap")
        if line is not None:
            return sm.SourceLocation.at(fr.file, line, fr.function)
    return None
