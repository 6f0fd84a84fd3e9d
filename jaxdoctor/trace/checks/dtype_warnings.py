"""JD125 float64-without-x64, run under the doctor: JAX's own "Explicitly requested dtype
float64 ... is not available, and will be truncated to dtype float32" warning, attributed to the
user's line that asked for float64 (JAX points the warning at one of its own lines).

`warnings.warn` is wrapped for the run: every such warning is seen (the warnings module shows
one per JAX line only), reported once per user line, and still shown as usual.
"""

from __future__ import annotations

import re
import warnings
from typing import Any, Callable

from jaxdoctor.findings import Origin
from jaxdoctor.trace.frames import source_line, user_call_site

_TRUNCATED = re.compile(
    r"Explicitly requested dtype (?P<asked>.+?) (?:requested in (?P<fn>\S+) )?is not available, "
    r"and will be truncated to dtype (?P<got>\w+)"
)
_WIDE = ("float64", "complex128")


class DtypeWarnings:
    def __init__(self, session: Any) -> None:
        self.session = session
        self.lines: set = set()

    def install(self) -> Callable[[], None]:
        original = warnings.warn
        watcher = self

        def warn(message: Any, category: Any = None, stacklevel: int = 1, *args: Any, **kwargs: Any) -> None:
            try:
                watcher.on_warning(str(message))
            except Exception:  # noqa: BLE001 - a check must never break the program
                pass
            return original(message, category, stacklevel + 1, *args, **kwargs)

        warnings.warn = warn
        return lambda: setattr(warnings, "warn", original)

    def on_warning(self, text: str) -> None:
        m = _TRUNCATED.search(text)
        if m is None or not any(w in m.group("asked") for w in _WIDE):
            return
        site = user_call_site(skip=3)
        if site is None:
            return
        path, line, col, end_line, end_col = site
        if (path, line) in self.lines:
            return
        self.lines.add((path, line))
        from jaxdoctor.registry import all_rules

        asked = "complex128" if "complex128" in m.group("asked") else "float64"
        src = source_line(path, line)
        fn = f" (in `{m.group('fn')}`)" if m.group("fn") else ""
        message = (
            f"`{src}` asks JAX for {asked}{fn}, but x64 is off: JAX silently gives {m.group('got')} "
            "(it only warns, at one of its own lines)"
        )
        self.session.emit(all_rules()["JD125"].finding(
            message, path, line, col, end_line, end_col,
            details={"requested": asked, "got": m.group("got"), "jax_warning": text[:300]}, origin=Origin.TRACE))
