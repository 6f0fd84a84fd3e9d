"""The command line: parse options, call the engines, pick a renderer. Nothing else.

Exit status: 0 no findings, 1 findings, 2 usage, configuration or internal error.
"""

from __future__ import annotations

import json
import sys
from enum import Enum
from pathlib import Path
from typing import List, Optional

import typer

from jaxdoctor import __version__
from jaxdoctor.errors import UsageError

app = typer.Typer(
    name="jaxdoctor",
    help="Find the JAX, Flax and Equinox mistakes that JAX reports far from their cause.",
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)


class Format(str, Enum):
    text = "text"
    concise = "concise"
    json = "json"
    sarif = "sarif"
    github = "github"


class RulesFormat(str, Enum):
    text = "text"
    json = "json"


def _fail(message: str) -> "typer.Exit":
    typer.echo(f"jaxdoctor: error: {message}", err=True)
    return typer.Exit(2)


def _split(values: Optional[List[str]]) -> Optional[List[str]]:
    if values is None:
        return None
    return [v.strip() for raw in values for v in raw.split(",") if v.strip()]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"jaxdoctor {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Show the version and exit."),
) -> None:
    """jaxdoctor: a doctor for JAX programs."""


def _codes(settings, select, ignore, extend_select) -> frozenset[str]:
    """Enabled codes: the config's selection, then the command line's on top (ruff's layers)."""
    from jaxdoctor import config as config_mod

    overrides = config_mod.Overrides(
        select=tuple(_split(select)) if select is not None else None,
        ignore=tuple(_split(ignore) or ()), extend_select=tuple(_split(extend_select) or ()),
    )
    return config_mod.enabled_codes(overrides.apply(settings))


def _selected_codes(config, start, select, ignore, extend_select) -> frozenset[str]:
    from jaxdoctor import config as config_mod

    return _codes(config_mod.load(config, start), select, ignore, extend_select)


def _overrides(select, ignore, extend_select, exclude, target_jax, target_flax):
    """The command line's settings, validated (a `UsageError` for bad ones)."""
    from jaxdoctor import config as config_mod
    from jaxdoctor import registry

    selected = _split(select)
    if select is not None and not selected:
        raise UsageError("--select '' selects no rule; give codes or prefixes such as JD1 (see `jaxdoctor rules`)")
    for values, what in ((selected, "--select"), (_split(ignore), "--ignore"), (_split(extend_select), "--extend-select")):
        if values:
            registry.expand(values, what=f"{what} code")
    versions = []
    for package, value in (("jax", target_jax), ("flax", target_flax)):
        if value is not None:
            versions.append((package, config_mod.check_version(value, f"--target-{package}-version")))
    return config_mod.Overrides(
        select=tuple(selected) if selected is not None else None,
        ignore=tuple(_split(ignore) or ()), extend_select=tuple(_split(extend_select) or ()),
        exclude=tuple(_split(exclude) or ()), target_versions=tuple(versions),
    )


def _check_static_selection(settings) -> None:
    """Lint needs at least one static rule: `--select JD5` (trace-only rules) is a usage error."""
    from jaxdoctor import config as config_mod
    from jaxdoctor import registry
    from jaxdoctor.findings import Origin

    rules = registry.all_rules()
    codes = config_mod.enabled_codes(settings)
    if any(rules[c].origin is Origin.STATIC for c in codes):
        return
    layers = [layer for layer in settings.layers() if layer.select is not None or layer.extend_select]
    where = layers[-1].where if layers else "the configuration"
    if codes:
        shown = ", ".join(sorted(codes)[:4]) + (", ..." if len(codes) > 4 else "")
        raise UsageError(
            f"the selection in {where} enables only trace rules ({shown}), which `jaxdoctor lint` "
            "cannot check: select static rules, or run `jaxdoctor trace` (or `pytest --jaxdoctor`)"
        )
    raise UsageError(f"the selection in {where} enables no rule")


def _open_output(output_file: Optional[Path]):
    if output_file is None:
        return sys.stdout
    try:
        return open(output_file, "w", encoding="utf-8")  # noqa: SIM115 - closed by the caller
    except OSError as e:
        raise UsageError(f"--output-file {output_file}: {e.strerror or e}") from None


@app.command()
def lint(
    paths: List[str] = typer.Argument(None, help="Files or directories (default: the current directory); `-` reads stdin."),
    select: Optional[List[str]] = typer.Option(None, "--select", help="Rule codes or prefixes to enable (replaces the config's)."),
    extend_select: Optional[List[str]] = typer.Option(None, "--extend-select", help="Rule codes or prefixes to enable in addition."),
    ignore: Optional[List[str]] = typer.Option(None, "--ignore", help="Rule codes or prefixes to disable."),
    exclude: Optional[List[str]] = typer.Option(None, "--exclude", help="Glob patterns of files to skip (added to the config's)."),
    output_format: Format = typer.Option(Format.text, "--format", help="Output format."),
    config: Optional[Path] = typer.Option(None, "--config", help="Use this configuration file for every path (default: each file's nearest one)."),
    isolated: bool = typer.Option(False, "--isolated", help="Ignore all configuration files."),
    target_jax_version: Optional[str] = typer.Option(None, "--target-jax-version", help="The jax version to judge APIs against (JD401/JD402), e.g. 0.4.30."),
    target_flax_version: Optional[str] = typer.Option(None, "--target-flax-version", help="The flax version to judge APIs against, e.g. 0.10.0."),
    stdin_filename: Optional[str] = typer.Option(None, "--stdin-filename", help="With `-`: the path the text on stdin comes from (for configuration and messages)."),
    jobs: Optional[int] = typer.Option(None, "--jobs", "-j", min=1, help="Worker processes (default: all cores)."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Neither read nor write the result cache."),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="Result cache directory (default: $XDG_CACHE_HOME/jaxdoctor or ~/.cache/jaxdoctor)."),
    exit_zero: bool = typer.Option(False, "--exit-zero", help="Exit with status 0 even when there are findings."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Text format: no summary line."),
    statistics: bool = typer.Option(False, "--statistics", help="Show counts per rule instead of the findings (JSON with --format json)."),
    fix: bool = typer.Option(False, "--fix", help="Apply safe fixes in place, then report what remains (stdin: print the fixed text)."),
    unsafe_fixes: bool = typer.Option(False, "--unsafe-fixes", help="With --fix or --diff: include fixes that may change behaviour."),
    diff: bool = typer.Option(False, "--diff", help="Print a unified diff of what --fix would change; write nothing (exit 1 if there are changes)."),
    show_fixes: bool = typer.Option(False, "--show-fixes", help="Text format: show what each fix would change; with --fix, list what was fixed."),
    add_noqa: bool = typer.Option(False, "--add-noqa", help="Add `# jaxdoctor: ignore[...]` to every line with a finding."),
    output_file: Optional[Path] = typer.Option(None, "--output-file", "-o", help="Write the report to this file instead of stdout."),
    show_settings: Optional[Path] = typer.Option(None, "--show-settings", help="Print the settings used for this file, and exit."),
    show_files: bool = typer.Option(False, "--show-files", help="Print the files that would be checked, and exit."),
) -> None:
    """Check Python files statically (never imports or runs them)."""
    from jaxdoctor import config as config_mod

    paths = paths or ["."]
    try:
        overrides = _overrides(select, ignore, extend_select, exclude, target_jax_version, target_flax_version)
        resolver = config_mod.Resolver(config, isolated=isolated, overrides=overrides)
        if show_settings is not None:
            typer.echo(_describe_settings(resolver, show_settings), nl=False)
            raise typer.Exit(0)
        if "-" in paths:
            if len(paths) != 1:
                raise UsageError("`-` (stdin) cannot be combined with other paths")
            if add_noqa or show_files:
                raise UsageError("--add-noqa and --show-files need files, not stdin")
            _check_static_selection(resolver.for_path(Path(stdin_filename or "-")))
            status = _lint_stdin(resolver, stdin_filename, fmt=output_format.value, fix=fix, diff=diff,
                                unsafe=unsafe_fixes, quiet=quiet, statistics=statistics,
                                show_fixes=show_fixes, out=_open_output(output_file))
            raise typer.Exit(0 if exit_zero and status == 1 else status)
        if stdin_filename is not None:
            raise UsageError("--stdin-filename is only used when the path is `-` (stdin)")
        if add_noqa and (fix or diff):
            raise UsageError("--add-noqa cannot be combined with --fix or --diff")
        from jaxdoctor.static.plan import plan_files

        plans = plan_files(paths, resolver)
        for settings in {id(p.settings): p.settings for p in plans if p.settings is not None}.values():
            _check_static_selection(settings)
        if not plans:
            _check_static_selection(resolver.for_path(Path(paths[0])))
    except UsageError as e:
        raise _fail(str(e))
    if show_files:
        for plan in plans:
            typer.echo(plan.candidate.display)
        raise typer.Exit(0)
    if not plans:
        shown = " ".join(paths)
        typer.echo(f"jaxdoctor: warning: no Python files found under {shown}", err=True)
        raise typer.Exit(0)
    try:
        out = _open_output(output_file)
    except UsageError as e:
        raise _fail(str(e))
    try:
        if add_noqa:
            status = _add_noqa(plans, jobs=jobs, quiet=quiet)
        elif fix or diff:
            status = _fix(plans, jobs=jobs, diff=diff, unsafe=unsafe_fixes,
                                      fmt=output_format.value, quiet=quiet, statistics=statistics,
                                      show_fixes=show_fixes, out=out)
        else:
            cache = None
            first = plans[0].settings
            if first is not None and first.cache and not no_cache:
                from jaxdoctor.static.cache import Cache, resolve_dir

                cache = Cache(resolve_dir(cache_dir, first.cache_dir, first.root if first.source else None))
            status = _lint(plans, jobs=jobs or (first.jobs if first else None), cache=cache,
                                       fmt=output_format.value, quiet=quiet, statistics=statistics,
                                       show_fixes=show_fixes, out=out)
    finally:
        if out is not sys.stdout:
            out.close()
    raise typer.Exit(0 if exit_zero and status == 1 else status)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


def _report(findings, out, *, fmt: str, quiet: bool, statistics: bool, show_fixes: bool,
            files: int | None) -> None:
    from jaxdoctor.render import render

    if statistics:
        from jaxdoctor.render.statistics import render_statistics

        render_statistics(findings, out, fmt=fmt)
    else:
        render(fmt, findings, out, summary=not quiet, files=files, show_fixes=show_fixes)


def _lint(plans, *, jobs, cache, fmt: str, quiet: bool, statistics: bool, show_fixes: bool, out) -> int:
    from jaxdoctor.progress import progress_bar
    from jaxdoctor.static.runner import InternalError, lint_files

    bar = progress_bar()
    try:
        run = lint_files(plans, jobs, cache=cache, progress=bar)
    except InternalError as e:
        typer.echo(f"jaxdoctor: {e}", err=True)
        return 2
    finally:
        if bar is not None:
            bar.close()
    _report(run.findings, out, fmt=fmt, quiet=quiet, statistics=statistics, show_fixes=show_fixes,
            files=run.files)
    return 1 if run.findings else 0


def _fixed_summary(files) -> str:
    """`--fix --show-fixes`: what was fixed, per file and rule (ruff's list)."""
    from jaxdoctor import registry

    rules = registry.all_rules()
    lines = []
    for ff in files:
        if not ff.fixed_codes:
            continue
        lines.append(f"{ff.display}:")
        for code, n in sorted(ff.fixed_codes.items()):
            name = rules[code].name if code in rules else ""
            lines.append(f"    {n} × {code} ({name})" if name else f"    {n} × {code}")
    return "\n".join(lines) + ("\n" if lines else "")


def _fix(plans, *, jobs, diff: bool, unsafe: bool, fmt: str, quiet: bool, statistics: bool,
         show_fixes: bool, out) -> int:
    """`lint --fix` / `--diff`. `--diff` prints the unified diff only (like ruff): 1 when there
    would be changes, else 0. `--fix` writes the fixed files, then reports what remains."""
    from jaxdoctor.static.runner import InternalError, fix_files

    try:
        run = fix_files(plans, unsafe=unsafe, write=not diff, jobs=jobs)
    except InternalError as e:
        typer.echo(f"jaxdoctor: {e}", err=True)
        return 2
    changed = run.changed
    if diff:
        for ff in changed:
            out.write(ff.diff())
        if not quiet:
            n = run.applied
            sys.stderr.write(f"Would fix {_plural(n, 'finding')} in {_plural(len(changed), 'file')}.\n"
                             if n else "No fixes available.\n")
        return 1 if changed else 0
    findings = run.findings
    _report(findings, out, fmt=fmt, quiet=quiet, statistics=statistics, show_fixes=show_fixes,
            files=len(run.files))
    if not quiet and run.applied:
        sys.stderr.write(f"Fixed {_plural(run.applied, 'finding')} in {_plural(len(changed), 'file')}.\n")
        if show_fixes:
            sys.stderr.write(_fixed_summary(run.files))
    return 1 if findings else 0


def _add_noqa(plans, *, jobs, quiet: bool) -> int:
    """`--add-noqa`: a `# jaxdoctor: ignore[...]` on each line with findings; exit 0."""
    from jaxdoctor.static.fixes import encode_like
    from jaxdoctor.static.noqa import add_noqa_text
    from jaxdoctor.static.runner import lint_files
    from jaxdoctor.source import SourceError, decode, read_bytes, write_atomic

    run = lint_files(plans, jobs)
    by_file: dict[str, list] = {}
    for f in run.findings:
        by_file.setdefault(f.path, []).append(f)
    added = files = 0
    for plan in plans:
        found = by_file.get(plan.candidate.display)
        if not found:
            continue
        notebook = plan.candidate.path.suffix == ".ipynb"
        try:
            data = read_bytes(plan.candidate.path)
            text = data.decode("utf-8").removeprefix("\ufeff") if notebook else decode(data)
        except (SourceError, UnicodeDecodeError):
            continue
        new, n = add_noqa_text(text, found, notebook=notebook)
        if n and new != text:
            payload = ((b"\xef\xbb\xbf" if data.startswith(b"\xef\xbb\xbf") else b"") + new.encode("utf-8")
                       if notebook else encode_like(new, data))
            write_atomic(plan.candidate.path, payload)
            added += n
            files += 1
    if not quiet:
        sys.stderr.write(f"Added {_plural(added, 'suppression')} in {_plural(files, 'file')}.\n")
    return 0


def _lint_stdin(resolver, stdin_filename: Optional[str], *, fmt: str, fix: bool, diff: bool, unsafe: bool,
                quiet: bool, statistics: bool, show_fixes: bool, out) -> int:
    """`lint - --stdin-filename path.py`: lint the text on stdin as if it were that file (its
    configuration, its name in messages). With `--fix` the fixed text goes to stdout and what
    remains to stderr; with `--diff`, the diff."""
    import difflib

    from jaxdoctor.static.discovery import Candidate
    from jaxdoctor.static.runner import check_text, fix_text
    from jaxdoctor.static.plan import Planner
    from jaxdoctor.source import SourceError, decode

    display = stdin_filename or "-"
    notebook = display.endswith(".ipynb")
    data = sys.stdin.buffer.read()
    try:
        text = data.decode("utf-8").removeprefix("\ufeff") if notebook else decode(data)
    except (SourceError, UnicodeDecodeError) as e:
        typer.echo(f"jaxdoctor: error: stdin: {e}", err=True)
        return 2
    plan = Planner(resolver).plan(Candidate(Path(display), display, explicit=True))


    if fix or diff:
        result = fix_text(text, display, plan.codes, unsafe=unsafe, options=plan.options, notebook=notebook)
        if diff:
            out.write("".join(difflib.unified_diff(text.splitlines(keepends=True),
                                                   result.source.splitlines(keepends=True),
                                                   fromfile=f"a/{display}", tofile=f"b/{display}")))
            return 1 if result.source != text else 0
        sys.stdout.write(result.source)
        sys.stdout.flush()
        if not quiet or statistics:
            _report(result.findings, sys.stderr, fmt=fmt, quiet=quiet, statistics=statistics,
                    show_fixes=show_fixes, files=1)
        return 1 if result.findings else 0
    findings = check_text(text, display, plan.codes, plan.options, notebook=notebook).findings
    _report(findings, out, fmt=fmt, quiet=quiet, statistics=statistics, show_fixes=show_fixes, files=1)
    return 1 if findings else 0


def _describe_settings(resolver, path: Path) -> str:
    """`--show-settings FILE`: where the settings for FILE come from, and what they are."""
    from jaxdoctor import config as config_mod
    from jaxdoctor.static.options import run_options

    s = resolver.for_path(path)
    codes = sorted(config_mod.enabled_codes(s))
    lines = [
        f"file: {path}",
        f"configuration: {s.source if s.source else '(none: defaults)'}",
    ]
    if len(s.files) > 1 or (s.files and s.files[0] != s.source):
        lines.append("read: " + ", ".join(str(f) for f in s.files))
    lines.append(f"root: {s.root}")
    lines.append(f"project pins from: {s.project if s.project else '(none)'}")
    for layer in s.layers():
        parts = []
        if layer.select is not None:
            parts.append(f"select = {list(layer.select)}")
        if layer.extend_select:
            parts.append(f"extend-select = {list(layer.extend_select)}")
        if layer.ignore:
            parts.append(f"ignore = {list(layer.ignore)}")
        if parts:
            lines.append(f"selection from {layer.where}: " + ", ".join(parts))
    lines.append(f"enabled rules ({len(codes)}): {', '.join(codes)}")
    lines.append(f"exclude: {s.exclude + s.extend_exclude}")
    lines.append(f"per-file-ignores: {dict(s.per_file_ignores)}")
    options = run_options(s)
    for package in ("jax", "flax", "equinox", "optax"):
        key = f"target-{package}-version"
        if key in options:
            origin = "configuration" if package in s.target_versions else "project pin"
            lines.append(f"{key}: {options[key]} ({origin})")
    lines.append(f"cache: {'on' if s.cache else 'off'}" + (f" ({s.cache_dir})" if s.cache_dir else ""))
    return "\n".join(lines) + "\n"


@app.command()
def rules(
    output_format: RulesFormat = typer.Option(RulesFormat.text, "--format", help="Output format."),
) -> None:
    """List every rule."""
    from jaxdoctor import registry

    described = [cls.describe() for cls in registry.all_rules().values()]
    if output_format is RulesFormat.json:
        typer.echo(json.dumps(described, indent=2))
        return
    rows = [(d["code"], d["name"] + ("" if d["default"] else " (opt-in)"), d["origin"], d["severity"],
             d["fix"] or "", d["summary"]) for d in described]
    header = ("code", "name", "pass", "severity", "fix", "summary")
    if not sys.stdout.isatty():
        # piped: every name and summary whole, one rule per line, columns aligned (no 80-column cut)
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]
        for row in [header, *rows]:
            typer.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[-1])
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, header_style="bold")
    for column in header:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*row)
    Console(highlight=False).print(table)


@app.command()
def explain(code: str = typer.Argument(..., help="A rule code such as JD101.")) -> None:
    """Show a rule's documentation."""
    from jaxdoctor import registry
    from jaxdoctor.docs import read_doc

    code = code.strip().upper()
    if code not in registry.all_rules():
        raise _fail(f"unknown rule code {code!r} (see `jaxdoctor rules`)")
    text = read_doc(code)
    if text is None:
        raise _fail(f"no documentation found for {code}")
    if not sys.stdout.isatty():
        # piped: the Markdown itself (links keep their URLs, no padding to the terminal's width)
        typer.echo(text, nl=not text.endswith("\n"))
        return
    from rich.console import Console
    from rich.markdown import Markdown

    Console().print(Markdown(text))


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": False})
def trace(
    ctx: typer.Context,
    target: Optional[str] = typer.Argument(None, help="pkg.module:fn, path/to/file.py:fn or path/to/script.py (default: the [[tool.jaxdoctor.trace]] entries)."),
    inputs: Optional[str] = typer.Option(None, "--inputs", help='Abstract inputs, e.g. "f32[8,3], i32[], key[], 3, {\'w\': f32[3]}".'),
    vmap: Optional[str] = typer.Option(None, "--vmap", help='Trace under jax.vmap with these in_axes, e.g. "None,0,0".'),
    batch: Optional[int] = typer.Option(None, "--batch", help="Batch size for --vmap."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu, gpu or tpu (chosen before jax is imported)."),
    timeout: Optional[float] = typer.Option(None, "--timeout", help="Seconds before the user's code is stopped (default 120)."),
    cost: bool = typer.Option(False, "--cost", help="Report FLOPs and memory of the traced function."),
    retrace_threshold: int = typer.Option(4, "--retrace-threshold", help="Report a function traced more than this many times in a row from one call site."),
    mesh: Optional[str] = typer.Option(None, "--mesh", help="Simulate a device mesh, e.g. data=4,model=2 (CPU devices, before jax is imported)."),
    device_memory: Optional[str] = typer.Option(None, "--device-memory", help="Memory per device to check against: a size (16GiB) or a device (v5e, h100, ...)."),
    replicated_threshold: Optional[str] = typer.Option(None, "--replicated-threshold", help="Report replicated parameters larger than this (default 64MiB)."),
    output_format: Format = typer.Option(Format.text, "--format", help="Output format."),
    config: Optional[Path] = typer.Option(None, "--config", help="Read [[tool.jaxdoctor.trace]] entries from this pyproject.toml."),
    exit_zero: bool = typer.Option(False, "--exit-zero", help="Exit with status 0 even when there are findings."),
    select: Optional[List[str]] = typer.Option(None, "--select", help="Rule codes or prefixes to report (replaces the config's)."),
    ignore: Optional[List[str]] = typer.Option(None, "--ignore", help="Rule codes or prefixes not to report."),
) -> None:
    """Trace a function on abstract inputs, or run a program under the doctor (`script.py -- args`)."""
    from jaxdoctor.render import render
    from jaxdoctor.trace.command import run_trace

    try:
        codes = _selected_codes(config, Path.cwd(), select, ignore, None)
    except UsageError as e:
        raise _fail(str(e))

    as_json = output_format.value in ("json", "sarif")
    try:
        result = run_trace(
            target, inputs=inputs, vmap=vmap, batch=batch, device=device, timeout=timeout, cost=cost,
            retrace_threshold=retrace_threshold, script_args=list(ctx.args), config=config,
            program_stdout=sys.stderr if as_json else None, codes=codes,
            mesh=mesh, device_memory=device_memory, replicated_threshold=replicated_threshold,
        )
    except UsageError as e:
        raise _fail(str(e))
    for message in result.messages:
        typer.echo(f"jaxdoctor: {message}", err=True)
    # after a failed run (exit 2, e.g. no such device) "All checks passed" would be false; a run
    # whose program failed says so in the summary (and has a finding that says how)
    # a usage error found by the child (no such module or device) prints nothing on stdout, as
    # one found here does: an empty JSON list or SARIF log would read as a clean run
    if result.exit_status != 2 or result.findings:
        render(output_format.value, result.findings, sys.stdout,
               summary=result.exit_status != 2 or bool(result.findings), files=None, failure=result.failure)
    raise typer.Exit(0 if exit_zero and result.exit_status != 2 else result.exit_status)


@app.command()
def server(
    debounce: int = typer.Option(150, "--debounce", min=0, help="Milliseconds to wait after an edit before linting again."),
) -> None:
    """Run the language server (LSP over stdio) for editors: diagnostics, fixes, hover docs."""
    try:
        from jaxdoctor.lsp.server import serve
    except ImportError as e:
        raise _fail(f"the language server needs pygls and lsprotocol ({e}): pip install 'jaxdoctor[server]'")
    serve(debounce)


def main() -> None:
    try:
        app()
    except UsageError as e:  # pragma: no cover - commands convert these themselves
        typer.echo(f"jaxdoctor: error: {e}", err=True)
        sys.exit(2)
