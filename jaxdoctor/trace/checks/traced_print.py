"""JD103 side-effect-in-traced-function, confirmed at run time: a `print` that printed a tracer
(`JitTracer(float32[3])`) instead of a value. Python's `print` runs while JAX traces the
function, once per compilation: it never shows the values, and does not run at all on later
calls. Reported once per line; the print itself still happens.
"""

from __future__ import annotations

import builtins
import re
from typing import Any, Callable

from jaxdoctor.findings import Origin
from jaxdoctor.trace import jax_internals as ji
from jaxdoctor.trace.frames import source_line, user_call_site

_TRACER_TEXT = re.compile(r"\b\w*Tracer\(|Traced<")


class TracedPrint:
    def __init__(self, session: Any) -> None:
        self.session = session
        self.lines: set = set()

    def install(self) -> Callable[[], None]:
        original = builtins.print
        watcher = self

        def print(*args: Any, **kwargs: Any) -> None:  # noqa: A001 - stands in for the builtin
            try:
                if not ji.trace_state_clean():
                    watcher.on_print(args)
            except Exception:  # noqa: BLE001 - a check must never break the program
                pass
            return original(*args, **kwargs)

        builtins.print = print
        return lambda: setattr(builtins, "print", original)

    def on_print(self, args: tuple) -> None:
        shown = next((a for a in args if ji.is_tracer(a)), None)
        text = None
        if shown is None:
            text = next((a for a in args if isinstance(a, str) and _TRACER_TEXT.search(a)), None)
            if text is None:
                return
        site = user_call_site(skip=3)
        if site is None:
            return
        path, line, col, end_line, end_col = site
        if (path, line) in self.lines:
            return
        self.lines.add((path, line))
        from jaxdoctor.registry import all_rules

        printed = repr(shown) if shown is not None else _TRACER_TEXT.search(text).group(0).rstrip("(<") + "(...)"
        staged = ji.current_trace_is_staging()
        when = ("ran only while JAX traced the function (once per compilation, never on later calls)"
                if staged else "ran under a JAX transformation")
        message = (
            f"`{source_line(path, line)}` {when} and printed the tracer `{printed}`, not the value; "
            "use `jax.debug.print` to see values at run time"
        )
        self.session.emit(all_rules()["JD103"].finding(
            message, path, line, col, end_line, end_col,
            fix_title="Use `jax.debug.print(\"{x}\", x=x)` (it prints the values on every call)",
            details={"printed": printed, "only_while_tracing": staged}, origin=Origin.TRACE))
