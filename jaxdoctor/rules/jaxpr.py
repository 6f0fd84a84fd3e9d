"""Trace-only rules found in the jaxpr (JD501–JD509): identity and metadata only.

The analyzers that produce these findings live in `jaxdoctor.trace.analyzers` (one module per
rule). This module must not import jax: `jaxdoctor lint` and `jaxdoctor rules` import it.
"""

from __future__ import annotations

from jaxdoctor.findings import Severity
from jaxdoctor.rule import TraceRule


class BatchedBroadcast(TraceRule):
    code = "JD501"
    name = "batched-broadcast"
    summary = (
        "A value that depends only on broadcast (unbatched) inputs is copied once per batch "
        "element: a `cond` with a batched predicate under `vmap`, or one random init broadcast "
        "to every ensemble member"
    )
    severity = Severity.WARNING
    fix_title = (
        "Keep the broadcast value out of the batched branch: hoist the loop out of the `cond` and "
        "select with `jnp.where`; for ensembles split the keys (`nnx.split_rngs`) and map them"
    )


class LoopInvariantCarry(TraceRule):
    code = "JD502"
    name = "loop-invariant-carry"
    summary = "A large loop carry that the body returns unchanged (`W * 1.0`, `stop_gradient(W)`, identity `jit`)"
    severity = Severity.WARNING
    fix_title = "Close over the unchanged value (or pass it as a `scan` constant) instead of carrying it"


class TracedPrngKeyReuse(TraceRule):
    code = "JD503"
    name = "traced-prng-key-reuse"
    summary = "The same PRNG key is consumed twice in the traced program (JAX's key-reuse checker)"
    severity = Severity.WARNING
    fix_title = (
        "Split the key (`key, sub = jax.random.split(key)`) and use each key once"
    )


class LeakedTracer(TraceRule):
    code = "JD504"
    name = "leaked-tracer"
    summary = (
        "A tracer escaped its transformation (e.g. Linen `init` returning params that are leaked "
        "tracers after a raw `jax.lax` transform inside a module)"
    )
    severity = Severity.ERROR
    fix_title = "Use the framework's lifted transform (`nn.scan`, `nn.cond`, `nnx.*`) instead of the raw `jax` one"


class TracedUnrolledLoop(TraceRule):
    code = "JD505"
    name = "traced-unrolled-loop"
    summary = "A Python loop traced many times in a row: the jaxpr (and compile time) grows with the trip count"
    severity = Severity.WARNING
    fix_title = "Use `jax.lax.fori_loop` or `jax.lax.scan` for the loop"


class LargeCapturedConstant(TraceRule):
    code = "JD506"
    name = "large-captured-constant"
    summary = "A large array closed over by a traced function is embedded in the program as a constant"
    severity = Severity.WARNING
    fix_title = "Pass the array as an argument of the traced function instead of closing over it"


class HostCallbackInLoop(TraceRule):
    code = "JD507"
    name = "host-callback-in-loop"
    summary = "A host callback (`jax.debug.print`, `pure_callback`, `io_callback`) runs on every loop iteration"
    severity = Severity.WARNING
    fix_title = "Move the callback out of the loop, or guard it with `jax.lax.cond` so it runs rarely"


class Float64Upcast(TraceRule):
    code = "JD508"
    name = "float64-upcast"
    summary = "A float32 computation is silently promoted to float64 (a NumPy float64 constant or array under x64)"
    severity = Severity.WARNING
    fix_title = "Give the constant an explicit `dtype=jnp.float32` (or cast it with `.astype(x.dtype)`)"


class UnusedInput(TraceRule):
    code = "JD509"
    name = "unused-input"
    summary = "An array argument of the traced function is never used"
    severity = Severity.INFO
    fix_title = (
        "Remove the argument, or check that the function uses the array it was meant to"
    )
    default_enabled = False
