"""What the trace child tells its parent: one JSON object per line of a results file.

The child writes each record as it goes, so what was found survives a hang or a crash of the
user's code; the parent reads them all once the child has ended. Records:

- `{"finding": Finding.to_dict()}`: a finding (decoded with `Finding.from_dict`);
- `{"note": text}`: a one-line note for stderr;
- `{"fatal": text, "status": n}`: the trace could not run (bad options, no such device, a bug);
- `{"cost": {...}}`: the `--cost` report;
- `{"event": ...}`: progress (`job-start`, `target` with the function's `path`/`line`,
  `traced`, `failed` with the `reason` the user's program failed, `job-done` with
  `program_exit`, and a final `done`).

Never imports jax.
"""

from __future__ import annotations

import json
from typing import Any

from jaxdoctor.findings import Finding


class Session:
    """The child's end: records go to a JSON-lines file (subprocess) or stay in `records`
    (in-process); `analyze` runs the jaxpr analyzers on a captured jaxpr and reports what they
    find."""

    def __init__(self, results_path: str | None = None) -> None:
        self._file = open(results_path, "a", encoding="utf-8") if results_path else None  # noqa: SIM115
        self.records: list[dict] = []
        self._analyzer: Any = None
        self._analyzer_missing = False

    def write(self, obj: dict) -> None:
        self.records.append(obj)
        if self._file is not None:
            self._file.write(json.dumps(obj, default=_jsonable) + "\n")
            self._file.flush()

    def emit(self, finding: Finding) -> None:
        self.write({"finding": finding.to_dict()})

    def note(self, message: str) -> None:
        self.write({"note": message})

    def fatal(self, message: str, status: int = 2) -> None:
        self.write({"fatal": message, "status": status})

    def failed(self, reason: str) -> None:
        """The user's program failed (an exception escaped, `sys.exit(n)`): the run did not pass."""
        self.write({"event": "failed", "reason": reason})

    @property
    def findings(self) -> list[dict]:
        """The findings written so far, as their records (`Finding.to_dict`)."""
        return [r["finding"] for r in self.records if "finding" in r]

    def analyze(self, closed: Any, *, batch_axes: Any = None, batch_size: Any = None,
                entry_name: str = "fn", arg_names: Any = None) -> None:
        if self._analyzer is None and not self._analyzer_missing:
            try:
                from jaxdoctor.trace.analyzers import analyze_jaxpr

                self._analyzer = analyze_jaxpr
            except ImportError as exc:
                self._analyzer_missing = True
                self.note(f"jaxpr analyzers unavailable ({exc}); only trace errors are reported")
        if self._analyzer is None:
            return
        try:
            found = self._analyzer(closed, batch_axes=batch_axes, batch_size=batch_size,
                                   entry_name=entry_name, arg_names=arg_names)
        except Exception as exc:  # noqa: BLE001 - an analyzer bug must not end the user's program
            self.note(f"analyzer error on `{entry_name}`: {type(exc).__name__}: {exc}")
            return
        for f in found or ():
            self.emit(f)


def _jsonable(x: Any) -> Any:
    if hasattr(x, "value") and hasattr(type(x), "__members__"):
        return x.value
    if isinstance(x, (set, frozenset, tuple)):
        return list(x)
    try:
        import numpy as np

        if isinstance(x, np.generic):
            return x.item()
    except ImportError:  # pragma: no cover
        pass
    return str(x)


def read_records(path: str) -> list[dict]:
    """The records of a results file, in order; a line cut short by a kill is skipped."""
    out = []
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    continue  # a line cut short by a kill
    except OSError:
        pass
    return out
