"""JAX's runtime checks, on by default when a program runs under the doctor, turned into findings
at the user's line with a fix. JAX already detects these; the doctor attributes them, and never
stops or changes the program for them:

- `nonfinite`: NaN and infinite losses (what `jax_debug_nans`/`jax_debug_infs` look for) →
  JD124 (a `jnp.where`-masked NaN gradient) or JD520, at the operation that made the value;
- `keys`: one key consumed twice by the user's `jax.random` calls, raw `PRNGKey`s included
  (what `jax_debug_key_reuse` looks for, for typed keys only) → JD110;
- `dtype_warnings`: JAX's "float64 ... will be truncated to float32" warning → JD125;
- `traced_print`: `print` of a tracer, which ran only while JAX traced → JD103;
- every executed jit call is also handed to the capture, so JD510 knows which calls hit the
  cache (`trace.retrace`).

Leaked tracers are checked with `jax.checking_leaks()` where a single trace is made on purpose
(`--inputs`, `trace.abstract`); a run keeps JAX's caches on (the leak checker turns them off).

    uninstall = install(session, capture)
"""

from __future__ import annotations

from typing import Any, Callable

from jaxdoctor.trace.checks.dtype_warnings import DtypeWarnings
from jaxdoctor.trace.checks.keys import KeyLedger
from jaxdoctor.trace.checks.nonfinite import NonFiniteWatch
from jaxdoctor.trace.checks.traced_print import TracedPrint

__all__ = ["install"]


def install(session: Any, capture: Any = None) -> Callable[[], None]:
    """Install every runtime check for a run under the doctor; returns the uninstall callable."""
    from jaxdoctor.trace import jax_internals as ji

    nonfinite = NonFiniteWatch(session, capture.retrace.code_keys if capture is not None else None)
    keys = KeyLedger(session)

    def on_output(fun: Any, args: tuple, kwargs: dict, output: Any, traced: Any) -> None:
        if capture is not None:
            capture.on_call(fun)
        nonfinite.on_output(fun, args, kwargs, output, traced)

    undo = [
        ji.install_call_hooks(on_output),
        ji.install_prng_key_hook(keys.on_key),
        DtypeWarnings(session).install(),
        TracedPrint(session).install(),
    ]

    def uninstall() -> None:
        nonfinite.finish()
        while undo:
            undo.pop()()

    return uninstall
