"""Trace-only rules raised by running or tracing the user's code (JD510–JD518): metadata only.

`jaxdoctor.trace.retrace` produces JD510, `jaxdoctor.trace.explain` the exception rules and
`jaxdoctor.trace.command` the process-level ones (timeout, crash). Never imports jax.
"""

from __future__ import annotations

from jaxdoctor.findings import Severity
from jaxdoctor.rule import TraceRule


class RetracedFunction(TraceRule):
    code = "JD510"
    name = "retraced-function"
    summary = (
        "A function JAX traced (and compiled) again and again during the run, with the argument "
        "whose shape, dtype, weak type or static value changed each time"
    )
    severity = Severity.WARNING
    fix_title = "Keep argument shapes, dtypes and static values fixed (pad/bucket shapes), or jit once outside the loop"


class UncaughtException(TraceRule):
    code = "JD511"
    name = "uncaught-exception"
    summary = "An exception escaped the user's program or the traced function (shown at the user's line)"
    severity = Severity.ERROR
    fix_title = "Fix the error raised at this line"


class TraceTimeout(TraceRule):
    code = "JD512"
    name = "trace-timeout"
    summary = "The program or trace did not finish within `--timeout` seconds (shown where it was stopped)"
    severity = Severity.ERROR
    fix_title = "Find the loop that does not end, or raise `--timeout` for long programs"


class ProcessCrash(TraceRule):
    code = "JD513"
    name = "process-crash"
    summary = "The process running the user's code was killed by a signal (segfault, out of memory)"
    severity = Severity.ERROR
    fix_title = "Run the program on its own to reproduce the crash; check native extensions and memory use"


class ImportFailure(TraceRule):
    code = "JD514"
    name = "import-failure"
    summary = "The target module or script could not be imported (ImportError, SyntaxError, ...)"
    severity = Severity.ERROR
    fix_title = "Fix the error that stops the module from importing"


class VmapSizeMismatch(TraceRule):
    code = "JD515"
    name = "vmap-size-mismatch"
    summary = "`vmap` maps arguments whose mapped axes have different sizes"
    severity = Severity.ERROR
    fix_title = "Map arguments with the same batch size, or give broadcast arguments `in_axes=None`"


class VmapUnmappedOutputBatched(TraceRule):
    code = "JD516"
    name = "vmap-unmapped-output-batched"
    summary = "An output declared unbatched (`out_axes=None`) depends on batched inputs"
    severity = Severity.ERROR
    fix_title = "Set `out_axes=0` for outputs that depend on batched inputs (or keep them unbatched)"


class LeakedTracerUse(TraceRule):
    code = "JD517"
    name = "leaked-tracer-use"
    summary = "A traced value escaped its transformation and was used later (`UnexpectedTracerError`)"
    severity = Severity.ERROR
    fix_title = "Return traced values from the transformed function instead of storing them outside it"


class BranchStructureMismatch(TraceRule):
    code = "JD518"
    name = "branch-structure-mismatch"
    summary = "`cond`/`switch` branches return different pytree structures, shapes or dtypes"
    severity = Severity.ERROR
    fix_title = "Make every branch return the same pytree structure, shapes and dtypes"
