"""JD510 retraced-function: a function JAX traces again and again during a run under the doctor.

Every `jit` trace is a cache miss. `RetraceLog.record` is called once per trace with how the cache
saw the call (`jit_signature`: abstract type of each dynamic argument, value of each static one,
by the user's names — Equinox's `filter_jit` ones included) and the user's line that made the
call; `record_call` once per executed call that did not trace (a cache hit). `findings()`
reports a function only when one call site traced it more than `threshold` times *in a row*
(every step retraces), naming the argument whose type, shape, weak type or static value changed
between those traces — or, when nothing changed, that the function object itself is new each
time (`jax.jit` built inside a loop, a fresh lambda). A function traced a handful of times on
purpose (a few shapes, a sweep of static values each used for many steps) is not reported.
"""

from __future__ import annotations

import linecache
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from jaxdoctor.findings import Finding
from jaxdoctor.rules.trace_runtime import RetracedFunction
from jaxdoctor.trace.frames import is_user_file, line_span

_SRC_INFO = re.compile(r"^(?P<name>.*) at (?P<file>.+):(?P<line>\d+)$")


@dataclass
class _Entry:
    name: str
    path: str | None
    line: int | None
    callsite: tuple[str, int, int] | None
    signatures: list[dict[str, str]] = field(default_factory=list)
    identities: list[int] = field(default_factory=list)
    #: call site (file, line) -> that site's calls in order: index into `signatures` for a call
    #: that traced, None for one that hit the cache
    calls: dict = field(default_factory=dict)


class RetraceLog:
    def __init__(self, threshold: int = 4) -> None:
        self.threshold = threshold
        self.entries: dict[str, _Entry] = {}
        #: (function code key, call site) -> entry, for `record_call`
        self._sites: dict[tuple, _Entry] = {}
        self.code_keys: set = set()

    def record(
        self,
        key: str,
        name: str,
        signature: dict[str, str],
        *,
        src_info: str | None,
        callsite: tuple[str, int, int] | None,
        identity: int,
        code_key: Any = None,
    ) -> None:
        entry = self.entries.get(key)
        if entry is None:
            path, line = _def_location(src_info)
            entry = self.entries[key] = _Entry(name, path, line, callsite)
        if entry.callsite is None:
            entry.callsite = callsite
        entry.signatures.append(signature)
        entry.identities.append(identity)
        site = (callsite[0], callsite[1]) if callsite else None
        entry.calls.setdefault(site, []).append(len(entry.signatures) - 1)
        if code_key is not None and site is not None:
            self._sites[(code_key, site)] = entry
            self.code_keys.add(code_key)

    def record_call(self, code_key: Any, site: tuple[str, int]) -> None:
        """An executed call of the function `code_key` from `site` that did not trace."""
        entry = self._sites.get((code_key, site))
        if entry is not None:
            entry.calls[site].append(None)

    @staticmethod
    def _longest_run(calls: list) -> list[int]:
        """The longest stretch of consecutive calls that each traced (their signature indices)."""
        best: list[int] = []
        cur: list[int] = []
        for c in calls:
            if c is None:
                cur = []
                continue
            cur.append(c)
            if len(cur) > len(best):
                best = list(cur)
        return best

    def findings(self) -> list[Finding]:
        out = []
        for entry in self.entries.values():
            site, run = None, []
            for s, calls in entry.calls.items():
                r = self._longest_run(calls)
                if len(r) > len(run):
                    site, run = s, r
            n = len(run)
            if n <= self.threshold:
                continue
            if entry.path is not None:
                path, line, col = entry.path, entry.line, 1
            elif entry.callsite is not None:
                path, line, col = entry.callsite
            else:
                continue
            signatures = [entry.signatures[i] for i in run]
            identities = [entry.identities[i] for i in run]
            changed = _changed_arguments(signatures)
            details: dict = {"function": entry.name, "traces": n, "total_traces": len(entry.signatures)}
            from_site = ""
            if site is not None:
                details["call_line"] = site[1]
                where = f"line {site[1]}" if site[0] == path else f"{site[0]}:{site[1]}"
                from_site = f" in a row from the call at {where}"
            if changed:
                arg, values = changed[0]
                shown = " → ".join(values[:4]) + (" → …" if len(values) > 4 else "")
                message = (
                    f"`{entry.name}` was traced {n} times{from_site}, once per call: argument `{arg}` changed "
                    f"between traces ({shown}), and every new value means a new trace and compilation"
                )
                details.update(argument=arg, values=values[:20], changed=[c for c, _ in changed])
                fix = _fix_for(values)
            else:
                new_objects = len(set(identities)) > 1
                message = (
                    f"`{entry.name}` was traced {n} times{from_site} with the same argument types: "
                    + ("a new function object is jitted each time (`jax.jit` inside a loop or on a "
                       "fresh lambda/closure), so the compilation cache never hits"
                       if new_objects else "the compilation cache never hits")
                )
                details.update(argument=None)
                fix = "Create the jitted function once, outside the loop, and reuse it"
            text = linecache.getline(path, line) if line else ""
            if col == 1 and text.strip():  # the statement, not column 1 under its indentation
                col = len(text) - len(text.lstrip()) + 1
            end_col = len(text.rstrip("\n")) + 1 if text.strip() else col
            out.append(RetracedFunction.finding(message, path, line, col, line, max(end_col, col),
                                                fix_title=fix, details=details))
            if changed and site is not None and (site[0], site[1]) != (path, line) and is_user_file(site[0]):
                # the call that passes the new value each time: the other end of the fix
                defined = f"line {line}" if site[0] == path else f"{path}:{line}"
                call_msg = (f"this call traces and compiles `{entry.name}` (defined at {defined}) again on each of "
                            f"{n} calls in a row: `{arg}` is new every time ({shown})")
                out.append(RetracedFunction.finding(call_msg, *line_span(site[0], site[1]),
                                                    fix_title=fix, details={**details, "role": "call"}))
        return out


def jit_signature(fun: Any, args: tuple, kwargs: dict, static_argnums: tuple, static_argnames: tuple,
                  arg_names: Any, in_avals: tuple, eqx_names: dict[str, str]) -> dict[str, str]:
    """How jit's cache saw one call of `fun`: `{"x": "f32[3]", "n": "static 4", ...}`.
    `arg_names`: jit's name for each flat input (the last `len(in_avals)` are the dynamic ones);
    `eqx_names`: Equinox's internal names → the user's (`eqx_internals.names_for_call`)."""
    from jaxdoctor.trace import eqx_internals as eqx
    from jaxdoctor.trace import jax_internals as ji

    signature: dict[str, str] = {}
    dyn_names = list(arg_names or ())[-len(in_avals):] if in_avals else []
    for i, aval in enumerate(in_avals):
        raw = dyn_names[i] if i < len(dyn_names) else f"arg{i}"
        signature[eqx_names.get(raw, raw)] = ji.aval_signature(aval)
    for i in static_argnums:
        if i < len(args):
            if eqx_names and i == eqx.STATIC_ARGNUM:  # equinox's static half: the non-array leaves
                signature.update(eqx.static_signature(args, eqx_names, _static))
                continue
            signature[_param_name(fun, i)] = _static(args[i])
    for k in static_argnames:
        if k in kwargs:
            signature[k] = _static(kwargs[k])
    return signature


def _static(x: Any) -> str:
    try:
        r = repr(x)
    except Exception:  # noqa: BLE001
        r = f"<{type(x).__name__}>"
    return "static " + (r if len(r) <= 60 else r[:57] + "...")


def _param_name(fun: Any, i: int) -> str:
    import inspect

    try:
        params = list(inspect.signature(fun).parameters)
        return params[i] if i < len(params) else f"args[{i}]"
    except (TypeError, ValueError):
        return f"args[{i}]"


def _changed_arguments(signatures: list[dict[str, str]]) -> list[tuple[str, list[str]]]:
    """Arguments whose description differs between traces, most often changing first."""
    names: list[str] = []
    for sig in signatures:
        names.extend(k for k in sig if k not in names)
    changes: Counter = Counter()
    for prev, cur in zip(signatures, signatures[1:]):
        for k in names:
            if prev.get(k) != cur.get(k):
                changes[k] += 1
    out = []
    for k, _ in changes.most_common():
        values: list[str] = []
        for sig in signatures:
            v = sig.get(k, "<absent>")
            if not values or values[-1] != v:
                values.append(v)
        out.append((k, values))
    return out


def _fix_for(values: list[str]) -> str:
    if any(v.startswith("static ") for v in values):
        return "Pass the changing value as a traced array instead of a static argument, or keep it constant"
    if any("{weak}" in v for v in values) and len({v.replace("{weak}", "") for v in values}) == 1:
        return "Pass the value with one fixed dtype (e.g. `jnp.asarray(x, jnp.float32)`) so the weak type stays the same"
    return "Pad or bucket the argument to a few fixed shapes so each shape is compiled once"


def _def_location(src_info: str | None) -> tuple[str | None, int | None]:
    """`"f at /path/x.py:12"` → the user file and the `def` line (skipping decorators)."""
    if not src_info:
        return None, None
    m = _SRC_INFO.match(src_info)
    if not m or not is_user_file(m.group("file")):
        return None, None
    path, line = m.group("file"), int(m.group("line"))
    for probe in range(line, line + 30):
        text = linecache.getline(path, probe).lstrip()
        if not text:
            break
        if text.startswith(("def ", "async def ")) or "lambda" in text:
            return path, probe
        if not text.startswith("@") and not text.startswith("#") and probe > line:
            break
    return path, line
