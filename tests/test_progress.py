"""The progress bar: only on a terminal, erased at the end, never on a pipe."""

from __future__ import annotations

import io

from jaxdoctor.progress import ProgressBar, progress_bar


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_no_bar_when_stderr_is_not_a_terminal() -> None:
    assert progress_bar(io.StringIO()) is None


def test_bar_draws_and_erases_itself_on_a_terminal() -> None:
    stream = _Tty()
    bar = progress_bar(stream)
    assert isinstance(bar, ProgressBar)
    bar.delay = bar.interval = 0.0
    for done in range(1, 11):
        bar(done, 10)
    text = stream.getvalue()
    assert "10/10 files" in text and "[" + "#" * ProgressBar.WIDTH + "]" in text
    bar.close()
    assert stream.getvalue().endswith("\r\x1b[K")


def test_short_runs_draw_nothing() -> None:
    stream = _Tty()
    bar = ProgressBar(stream)  # default: nothing in the first half second
    bar(1, 2)
    bar(2, 2)
    bar.close()
    assert stream.getvalue() == ""
