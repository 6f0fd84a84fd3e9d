"""Trace-only rules of JAX's runtime checks under the doctor and of how a run ended (JD520–JD524):
metadata only.

`jaxdoctor.trace.checks` produces JD520 (and JD124, JD110, JD125, JD103, JD510 for the mistakes
those rules already name), `jaxdoctor.trace.analyzers.identical_random_draws` JD521,
`jaxdoctor.trace.eqx_state` JD522, `jaxdoctor.trace.program` and `jaxdoctor.trace.command` JD523,
`jaxdoctor.trace.abstract` JD524. Never imports jax.
"""

from __future__ import annotations

from jaxdoctor.findings import Severity
from jaxdoctor.rule import TraceRule


class NonFiniteValue(TraceRule):
    code = "JD520"
    name = "non-finite-value"
    summary = (
        "A NaN (or an infinite loss) was produced while the program ran, shown at the user's line of the "
        "operation that made it from finite inputs"
    )
    severity = Severity.ERROR
    fix_title = "Guard the operation's domain (clip, add an epsilon, or mask its input before the call)"


class IdenticalRandomDraws(TraceRule):
    code = "JD521"
    name = "identical-random-draws"
    summary = (
        "A random draw under `vmap` uses a broadcast (unbatched) key while its result is combined with "
        "batched values: every example gets the same random numbers (the same dropout mask)"
    )
    severity = Severity.WARNING
    fix_title = (
        "Map the key too: `jax.vmap(f, in_axes=(0, 0))(jax.random.split(key, n), xs)`, or for NNX "
        "`@nnx.split_rngs(splits=n)` with `nnx.vmap(in_axes=(StateAxes({nnx.RngState: 0, ...: None}), 0))`"
    )


class StatefulLayerUnderVmap(TraceRule):
    code = "JD522"
    name = "stateful-layer-under-vmap"
    summary = (
        "An Equinox `State` (`BatchNorm` statistics) under `vmap` without the matching `axis_name` or "
        "with its state batched (`out_axes` not `None`), including nested vmaps"
    )
    severity = Severity.ERROR
    fix_title = (
        "vmap stateful layers as `jax.vmap(model, in_axes=(0, None), out_axes=(0, None), axis_name=\"batch\")` "
        "with the layer's own `axis_name`"
    )


class NonzeroExitStatus(TraceRule):
    code = "JD523"
    name = "nonzero-exit-status"
    summary = "The program ended with a non-zero exit status (`sys.exit(n)`, `os._exit(n)`), so the run failed"
    severity = Severity.ERROR
    fix_title = "Fix what made the program exit with this status (the program's own output says why)"


class CostReport(TraceRule):
    code = "JD524"
    name = "cost-report"
    summary = (
        "`--cost`: loop-aware FLOPs from the jaxpr next to XLA's own count, and the compiled program's "
        "argument, output and temp memory"
    )
    severity = Severity.INFO
    fix_title = None
