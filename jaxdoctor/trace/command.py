"""`jaxdoctor trace`: what the CLI calls. Validates options, runs the child, returns findings.

    result = run_trace("train.py:step", inputs="f32[8,3], i32[]")
    result.findings, result.exit_status, result.messages

With no target, every `[[tool.jaxdoctor.trace]]` entry of the nearest pyproject.toml runs.
Never imports jax (the child process does).
"""

from __future__ import annotations

import difflib
import importlib.util
import linecache
import os
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Sequence

from jaxdoctor.errors import UsageError
from jaxdoctor.findings import Finding, Quote, Severity, unique
from jaxdoctor.registry import all_rules
from jaxdoctor.trace import runner
from jaxdoctor.trace.frames import source_line
from jaxdoctor.trace.inputs import parse_inputs, parse_vmap
from jaxdoctor.trace.targets import Target, parse_target

DEVICES = ("cpu", "gpu", "tpu")
#: findings that report figures, not problems: alone they leave the exit status 0
REPORT_ONLY = frozenset({"JD524"})
#: keys of a `[[tool.jaxdoctor.trace]]` entry (both spellings of multi-word keys)
ENTRY_KEYS = {
    "target": str, "inputs": str, "vmap": str, "batch": int, "device": str, "timeout": (int, float),
    "args": list, "cost": bool, "retrace-threshold": int, "retrace_threshold": int,
    "mesh": str, "device-memory": (str, int), "device_memory": (str, int),
    "replicated-threshold": (str, int), "replicated_threshold": (str, int),
}


@dataclass
class TraceResult:
    findings: list[Finding] = field(default_factory=list)
    exit_status: int = 0
    messages: list[str] = field(default_factory=list)  # one-line notes for stderr
    cost: list[dict] = field(default_factory=list)
    program_exit: int | None = None
    #: why the run failed (the program raised, exited non-zero, hung or crashed), or None
    failure: str | None = None


@dataclass
class TraceOptions:
    target: str
    inputs: str | None = None
    vmap: str | None = None
    batch: int | None = None
    device: str | None = None
    timeout: float | None = None
    cost: bool = False
    retrace_threshold: int = 4
    args: Sequence[str] = ()
    mesh: str | None = None
    device_memory: str | int | None = None
    replicated_threshold: str | int | None = None


def run_trace(
    target: str | None = None,
    *,
    inputs: str | None = None,
    vmap: str | None = None,
    batch: int | None = None,
    device: str | None = None,
    timeout: float | None = None,
    cost: bool = False,
    retrace_threshold: int = 4,
    script_args: Sequence[str] = (),
    cwd: str | None = None,
    program_stdout: IO | int | None = None,
    config: Path | None = None,
    codes: frozenset[str] | None = None,
    mesh: str | None = None,
    device_memory: str | int | None = None,
    replicated_threshold: str | int | None = None,
) -> TraceResult:
    """Trace one target, or (target None) every configured entry. Raises `UsageError` for bad
    options; everything the user's code does becomes findings or messages. `codes`, when given,
    are the enabled rule codes (`select`/`ignore`): other findings are dropped."""
    cwd = cwd or os.getcwd()
    if target is None:
        entries = configured_entries(Path(cwd), config=config)
        if not entries:
            raise UsageError(
                "trace: no target given and no [[tool.jaxdoctor.trace]] entries in pyproject.toml; "
                "try `jaxdoctor trace path/to/file.py:fn` or `jaxdoctor trace script.py`"
            )
        overrides = dict(inputs=inputs, vmap=vmap, batch=batch, device=device, timeout=timeout, mesh=mesh,
                         device_memory=device_memory, replicated_threshold=replicated_threshold)
        total = TraceResult()
        for entry in entries:
            for k, v in overrides.items():
                if v is not None:
                    setattr(entry, k, v)
            entry.cost = entry.cost or cost
            one = _run_one(entry, cwd, program_stdout, codes)
            total.findings.extend(one.findings)
            total.messages.extend(one.messages)
            total.cost.extend(one.cost)
            total.exit_status = _combine(total.exit_status, one.exit_status)
            if one.failure and not total.failure:
                total.failure = f"{entry.target}: {one.failure}"
        total.findings = _dedupe(total.findings)
        return total
    opts = TraceOptions(target, inputs, vmap, batch, device, timeout, cost, retrace_threshold, tuple(script_args),
                        mesh, device_memory, replicated_threshold)
    _sharding_defaults(opts, Path(cwd), config)
    return _run_one(opts, cwd, program_stdout, codes)


def _sharding_defaults(opts: TraceOptions, start: Path, config: Path | None,
                       settings: dict | None = None) -> None:
    """Fill `mesh`, `device_memory`, `replicated_threshold` not given from `[tool.jaxdoctor]`."""
    if settings is None:
        if opts.mesh is not None and opts.device_memory is not None and opts.replicated_threshold is not None:
            return
        from jaxdoctor import config as config_mod

        settings = config_mod.load(config, start).sharding
    for key, attr in (("mesh", "mesh"), ("device-memory", "device_memory"),
                      ("replicated-threshold", "replicated_threshold")):
        if getattr(opts, attr) is None and key in settings:
            setattr(opts, attr, settings[key])


def _combine(a: int, b: int) -> int:
    if 2 in (a, b):
        return 2
    return a or b


def configured_entries(start: Path, config: Path | None = None) -> list[TraceOptions]:
    from jaxdoctor import config as config_mod

    settings = config_mod.load(config, start)
    where = str(settings.source) if settings.source else "pyproject.toml"
    defaults = settings.sharding
    out = []
    for i, raw in enumerate(settings.trace, 1):
        unknown = [k for k in raw if k not in ENTRY_KEYS]
        if unknown:
            hint = difflib.get_close_matches(unknown[0], list(ENTRY_KEYS), n=1)
            raise UsageError(
                f"{where}: [[tool.jaxdoctor.trace]] entry {i}: unknown key {unknown[0]!r}"
                + (f" (did you mean {hint[0]!r}?)" if hint else "")
                + f"; known keys: {', '.join(k for k in ENTRY_KEYS if '_' not in k)}"
            )
        for k, v in raw.items():
            typ = ENTRY_KEYS[k]
            if not isinstance(v, typ) or (typ is int and isinstance(v, bool)):
                names = typ.__name__ if isinstance(typ, type) else "number"
                raise UsageError(f"{where}: [[tool.jaxdoctor.trace]] entry {i}: {k!r} must be a {names}, got {v!r}")
        if "target" not in raw:
            raise UsageError(f"{where}: [[tool.jaxdoctor.trace]] entry {i} has no 'target'")
        root = str(settings.source.parent) if settings.source else str(start)
        target = raw["target"]
        if ":" in target or target.endswith(".py"):
            path_part = target.rpartition(":")[0] if target.rpartition(":")[0].endswith(".py") else target
            if path_part.endswith(".py") and not os.path.isabs(path_part):
                target = os.path.join(root, target)
        out.append(
            TraceOptions(
                target=target, inputs=raw.get("inputs"), vmap=raw.get("vmap"), batch=raw.get("batch"),
                device=raw.get("device"), timeout=raw.get("timeout"), cost=bool(raw.get("cost", False)),
                retrace_threshold=int(raw.get("retrace-threshold", raw.get("retrace_threshold", 4))),
                args=tuple(str(a) for a in raw.get("args", ())),
                mesh=raw.get("mesh"), device_memory=raw.get("device-memory", raw.get("device_memory")),
                replicated_threshold=raw.get("replicated-threshold", raw.get("replicated_threshold")),
            )
        )
        _sharding_defaults(out[-1], start, config, defaults)
    return out


def validate(opts: TraceOptions, cwd: str) -> Target:
    from jaxdoctor.trace.inputs import partitions
    from jaxdoctor.trace.mesh import parse_device_memory, parse_mesh, parse_size

    target = parse_target(opts.target, cwd=cwd)
    mesh = parse_mesh(opts.mesh) if opts.mesh is not None else None
    if opts.device_memory is not None:
        parse_device_memory(opts.device_memory)
    if opts.replicated_threshold is not None:
        parse_size(opts.replicated_threshold, option="--replicated-threshold")
    if opts.inputs is not None:
        parsed = parse_inputs(opts.inputs)
        sharded = partitions(parsed)
        if sharded and mesh is None:
            raise UsageError(f"--inputs: {sharded[0]} is sharded, which needs a mesh: give --mesh "
                             "(e.g. --mesh data=4,model=2)")
        names = {a for a, _ in mesh.axes} if mesh is not None else set()
        for spec in sharded:
            for entry in spec.partition or ():
                for axis in entry if isinstance(entry, tuple) else (entry,):
                    if axis is not None and axis not in names:
                        raise UsageError(f"--inputs: {spec} names the axis {axis!r}, but --mesh {mesh} has "
                                         f"only {', '.join(sorted(names))}")
        if sharded and opts.vmap is not None:
            raise UsageError("--inputs: sharded inputs (@P) cannot be combined with --vmap")
    axes = parse_vmap(opts.vmap)
    if axes is not None and opts.batch is None:
        raise UsageError("--vmap needs --batch N (the batch size to trace with)")
    if opts.batch is not None and (opts.batch < 1):
        raise UsageError("--batch must be at least 1")
    if opts.batch is not None and axes is None:
        raise UsageError("--batch only makes sense with --vmap")
    if opts.device is not None and opts.device not in DEVICES:
        raise UsageError(f"--device must be one of {', '.join(DEVICES)}, got {opts.device!r}")
    if opts.timeout is not None and opts.timeout <= 0:
        raise UsageError("--timeout must be a positive number of seconds")
    if opts.retrace_threshold < 1:
        raise UsageError("--retrace-threshold must be at least 1")
    if target.kind in ("script", "run-module") and (opts.inputs or opts.vmap):
        raise UsageError("--inputs/--vmap need a function target (path/to/file.py:fn or pkg.module:fn)")
    if opts.args and target.kind not in ("script", "run-module"):
        raise UsageError("arguments after `--` are for script targets (path/to/script.py -- args)")
    return target


def _run_one(opts: TraceOptions, cwd: str, program_stdout: IO | int | None,
             codes: frozenset[str] | None = None) -> TraceResult:
    target = validate(opts, cwd)
    if importlib.util.find_spec("jax") is None:
        raise UsageError(
            f"jax is not installed for {sys.executable}; `jaxdoctor trace` needs it: pip install 'jaxdoctor[trace]'"
        )
    job = {
        "target": target.to_json(), "inputs": opts.inputs, "vmap": opts.vmap, "batch": opts.batch,
        "cost": opts.cost, "retrace_threshold": opts.retrace_threshold, "args": list(opts.args),
        "mesh": opts.mesh, "device_memory": opts.device_memory, "replicated_threshold": opts.replicated_threshold,
    }
    child = runner.run_child([job], device=opts.device, timeout=opts.timeout, cwd=cwd, stdout=program_stdout)
    result = interpret(child, target, opts)
    result.findings = [_quoted(f) for f in result.findings]
    return _enabled_only(result, codes)


def _quoted(f: Finding) -> Finding:
    """The finding with the text of its line, for the renderers (which never read files)."""
    line = linecache.getline(f.path, f.line)
    return replace(f, quote=Quote(line.rstrip("\r\n") if line else None))


def interpret(child: runner.ChildResult, target: Target, opts: TraceOptions) -> TraceResult:
    """Child records + how the process ended → findings, messages and an exit status."""
    out = TraceResult()
    fallback: tuple[str, int] | None = (target.spec, 1) if target.kind in ("file", "script") else None
    program_exit: int | None = None
    for rec in child.records:
        if rec.get("event") == "target" and rec.get("path"):
            fallback = (rec["path"], int(rec.get("line") or 1))
        elif rec.get("event") == "failed":
            out.failure = out.failure or rec.get("reason")
        elif rec.get("event") == "job-done":
            program_exit = rec.get("program_exit")
        elif "finding" in rec:
            # a finding with no user frame goes to the target's line: dropping it could turn a
            # failed run into "All checks passed"
            f = _place(Finding.from_dict(rec["finding"]), fallback or (target.display, 1))
            if f is not None:
                out.findings.append(f)
        elif "note" in rec:
            out.messages.append(f"note: {rec['note']}")
        elif "cost" in rec:
            out.cost.append(rec["cost"])
    fatal = child.fatal
    if fatal is not None:
        out.messages.append(f"error: {fatal['fatal']}")
        out.exit_status = int(fatal.get("status", 2))
        out.findings = _dedupe(out.findings)
        return out
    timeout = opts.timeout if opts.timeout is not None else runner.DEFAULT_TIMEOUT
    if child.timed_out:
        where = child.hang_frame
        if where:  # a loop that never ends: point at the loop, not at whichever line it was in
            where = (where[0], enclosing_loop_line(where[0], where[1]), where[2])
        loc = (where[0], where[1]) if where else fallback
        src = source_line(loc[0], loc[1]) if loc else ""
        msg = f"`{target.display}` did not finish within {timeout:g} s (`--timeout`)"
        if where:
            msg += f"; it was stopped at `{src}` in `{where[2]}`" if src else f"; it was stopped in `{where[2]}`"
        out.findings.append(_process_finding("JD512", msg, loc, {"timeout_s": timeout}))
        out.failure = f"it did not finish within {timeout:g} s"
    elif child.returncode is not None and child.returncode < 0:
        sig = runner.signal_name(child.returncode)
        where = child.crash_frame
        loc = (where[0], where[1]) if where else fallback
        msg = f"the process running `{target.display}` was killed by {sig}"
        if where:
            msg += f" while at this line (in `{where[2]}`)"
        out.findings.append(_process_finding("JD513", msg, loc, {"signal": sig}))
        out.failure = f"the process was killed by {sig}"
    elif not child.done:
        if child.returncode not in (0, None) and program_exit is None:
            program_exit = child.returncode
            msg = f"the program ended the process itself with status {child.returncode} (`os._exit`)"
            out.findings.append(_process_finding("JD523", msg, fallback, {"exit_status": child.returncode}))
            out.failure = f"the program exited with status {child.returncode}"
        elif child.returncode:
            out.messages.append(f"error: the trace process ended unexpectedly (status {child.returncode})")
            out.exit_status = 2
    out.findings = _dedupe(out.findings)
    out.program_exit = program_exit
    status = out.exit_status
    if program_exit not in (None, 0):
        status = status or int(program_exit)
        out.failure = out.failure or f"the program exited with status {program_exit}"
    if any(f.code not in REPORT_ONLY for f in out.findings):
        status = status or 1
    out.exit_status = status
    return out


def enclosing_loop_line(path: str, line: int) -> int:
    """The header line of the innermost `for`/`while` loop whose body holds `line`, else `line`."""
    import ast

    try:
        tree = ast.parse(Path(path).read_bytes())
    except (OSError, SyntaxError, ValueError, RecursionError):
        return line
    best: ast.AST | None = None
    for node in ast.walk(tree):
        if isinstance(node, (ast.For, ast.AsyncFor, ast.While)) and node.lineno <= line <= (node.end_lineno or 0):
            if best is None or node.lineno >= best.lineno:
                best = node
    return best.lineno if best is not None else line


def _enabled_only(result: TraceResult, codes: frozenset[str] | None) -> TraceResult:
    """Drop findings of rules that are not selected; exit 0 if that leaves none (unless the
    program itself exited non-zero or the trace failed)."""
    if codes is None:
        return result
    kept = [f for f in result.findings if f.code in codes]
    if len(kept) != len(result.findings):
        result.findings = kept
        if not kept and result.exit_status == 1 and result.program_exit in (None, 0):
            result.exit_status = 0
    return result


def _process_finding(code: str, message: str, loc: tuple[str, int] | None, details: dict) -> Finding:
    path, line = loc if loc else ("<unknown>", 1)
    text = linecache.getline(path, line) if loc else ""
    col = len(text) - len(text.lstrip()) + 1 if text.strip() else 1
    end = len(text.rstrip("\n")) + 1 if text.strip() else col
    return all_rules()[code].finding(message, _display_path(path), line, col, line, max(end, col),
                                     severity=Severity.ERROR, details=details)


def _display_path(path: str) -> str:
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return path
    return path if rel.startswith("..") else rel


def _place(f: Finding, fallback: tuple[str, int] | None) -> Finding | None:
    """A finding from the child, at the user's file as the user would write its path; one with
    no user frame (no path or line) at `fallback`, the target's own line, or dropped."""
    path, line, col, end_line, end_col = f.path, f.line, f.column, f.end_line, f.end_column
    if not path or line <= 0:
        if fallback is None:
            return None
        path, line = fallback
        col, end_line, end_col = 1, line, 1
    return replace(f, path=_display_path(path), line=line, column=max(col, 1),
                   end_line=max(end_line, line), end_column=max(end_col, 1))


def place_finding(record: dict) -> Finding | None:
    """A finding record of the trace protocol, decoded, placed at the user's path, quoted."""
    f = _place(Finding.from_dict(record), None)
    return _quoted(f) if f is not None else None


def _dedupe(findings: list[Finding]) -> list[Finding]:
    return sorted(unique(findings), key=lambda f: f.sort_key)
