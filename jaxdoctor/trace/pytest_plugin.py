"""`pytest --jaxdoctor`: run a test session under the doctor (the `pytest11` entry point).

Every function JAX traces while the tests run (`jit`, `vmap`, `grad`, `scan` bodies, `nnx.*`,
`eqx.filter_*`, Linen `init`/`apply`) goes through the same capture hooks and jaxpr analyzers as
`jaxdoctor trace script.py` (JD501–JD509, JD504 leaked tracers, JD510 functions traced again and
again), once per new signature; a test that fails with a JAX trace error (a
`TracerBoolConversionError`, a vmap size mismatch, ...) is explained at the user's line too.
Findings are reported per test in the terminal summary; `--jaxdoctor-strict` fails the run when
there are any.

Without `--jaxdoctor` this module costs nothing: it adds the options and returns; jax and the
rest of jaxdoctor are imported only when the doctor is on.
"""

from __future__ import annotations

from typing import Any

import pytest

KEY = "jaxdoctor"
SESSION = "(session)"


def pytest_addoption(parser: Any) -> None:
    group = parser.getgroup("jaxdoctor", "jaxdoctor: trace-time checks of JAX code")
    group.addoption("--jaxdoctor", action="store_true", default=False,
                    help="Run the tests under jaxdoctor: analyse every function JAX traces and report findings per test.")
    group.addoption("--jaxdoctor-strict", action="store_true", default=False,
                    help="Like --jaxdoctor, and fail the run when jaxdoctor finds something.")
    group.addoption("--jaxdoctor-ignore", action="append", default=[], metavar="CODES",
                    help="Rule codes or prefixes not to report (comma-separated; repeatable).")


def pytest_configure(config: Any) -> None:
    if config.getoption("jaxdoctor") or config.getoption("jaxdoctor_strict"):
        config.pluginmanager.register(Doctor(config), "jaxdoctor-doctor")


class Doctor:
    """The doctor for one test session (registered only with `--jaxdoctor`)."""

    def __init__(self, config: Any) -> None:
        from jaxdoctor import registry
        from jaxdoctor.errors import UsageError

        self.config = config
        self.strict = bool(config.getoption("jaxdoctor_strict"))
        ignored = [c.strip() for raw in config.getoption("jaxdoctor_ignore") for c in raw.split(",") if c.strip()]
        try:
            self.ignored = frozenset(registry.expand(ignored, what="--jaxdoctor-ignore code"))
        except UsageError as e:
            raise pytest.UsageError(str(e)) from None
        self.by_test: dict[str, list] = {}
        self.notes: list[str] = []
        self.capture: Any = None
        self.session: Any = None
        self.retrace: Any = None

    # ------------------------------------------------------------------ session
    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: Any) -> None:
        from jaxdoctor.trace.capture import Capture
        from jaxdoctor.trace.protocol import Session
        from jaxdoctor.trace.retrace import RetraceLog

        self.session = Session()
        self.retrace = RetraceLog(4)
        self.capture = Capture(self.session, self.retrace)
        self.capture.install()

    def _take(self, start: int, test: str) -> None:
        """The findings recorded since `start` belong to `test`."""
        from jaxdoctor.trace.command import place_finding

        for record in self.session.records[start:]:
            if "finding" in record:
                f = place_finding(record["finding"])
                if f is not None and f.code not in self.ignored:
                    self.by_test.setdefault(test, []).append(f)
            elif "note" in record:
                self.notes.append(str(record["note"]))

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(self, item: Any, nextitem: Any):
        start = len(self.session.records) if self.session is not None else 0
        if self.capture is not None:
            self.capture.patch_flax_linen()  # once flax.linen is imported: watch init/apply
        yield
        if self.session is not None:
            self._take(start, item.nodeid)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: Any, call: Any):
        yield
        if call.excinfo is None or call.when != "call" or self.session is None:
            return
        from jaxdoctor.trace.explain import classify, explain

        exc = call.excinfo.value
        try:
            if classify(exc) == "JD511":  # not a JAX trace error: pytest's own report says it all
                return
            self.session.emit(explain(exc))
        except Exception as e:  # noqa: BLE001 - the doctor must never break a test run
            self.notes.append(f"could not explain {type(exc).__name__}: {e!r}")

    def pytest_sessionfinish(self, session: Any, exitstatus: int) -> None:
        if self.capture is None:
            return
        start = len(self.session.records)
        for finding in self.retrace.findings():
            self.session.emit(finding)
        self._take(start, SESSION)
        self.capture.uninstall()
        self.capture = None
        if self.strict and self.findings() and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def findings(self) -> list:
        return [f for fs in self.by_test.values() for f in fs]

    # ------------------------------------------------------------------ report
    def pytest_terminal_summary(self, terminalreporter: Any, exitstatus: int, config: Any) -> None:
        tr = terminalreporter
        found = self.findings()
        tr.write_sep("=", "jaxdoctor")
        if not found:
            tr.write_line("jaxdoctor: no findings in the functions JAX traced during the tests")
        for test, findings in self.by_test.items():
            if not findings:
                continue
            tr.write_line(f"{test}:", bold=True)
            seen = set()
            for f in sorted(findings, key=lambda f: f.sort_key):
                key = (f.code, f.path, f.line, f.message)
                if key in seen:
                    continue
                seen.add(key)
                tr.write_line(f"  {f.location()}: {f.code} [{f.name}] {f.message}")
                if f.fix_title:
                    tr.write_line(f"    help: {f.fix_title}")
        for note in self.notes[:5]:
            tr.write_line(f"jaxdoctor: note: {note}")
        if found:
            tests = sum(1 for fs in self.by_test.values() if fs)
            where = f"{tests} test{'s' if tests != 1 else ''}"
            verdict = " (--jaxdoctor-strict: the run fails)" if self.strict else ""
            tr.write_line(f"jaxdoctor: {len(found)} finding{'s' if len(found) != 1 else ''} in {where}{verdict}",
                          red=self.strict, yellow=not self.strict)
