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
    """Enabled codes: the config's selection, or the command line's, which replaces it (ruff)."""
    from jaxdoctor import registry

    sel = _split(select)
    if sel is not None:
        return registry.select(sel, ignore=_split(ignore) or [], extend_select=_split(extend_select) or [])
    return registry.select(
        settings.select,
        ignore=settings.ignore + (_split(ignore) or []),
        extend_select=settings.extend_select + (_split(extend_select) or []),
    )


def _selected_codes(config, start, select, ignore, extend_select) -> frozenset[str]:
    from jaxdoctor import config as config_mod

    return _codes(config_mod.load(config, start), select, ignore, extend_select)


@app.command()
def lint(
    paths: List[str] = typer.Argument(None, help="Files or directories (default: the current directory)."),
    select: Optional[List[str]] = typer.Option(None, "--select", help="Rule codes or prefixes to enable (replaces the config's)."),
    extend_select: Optional[List[str]] = typer.Option(None, "--extend-select", help="Rule codes or prefixes to enable in addition."),
    ignore: Optional[List[str]] = typer.Option(None, "--ignore", help="Rule codes or prefixes to disable."),
    exclude: Optional[List[str]] = typer.Option(None, "--exclude", help="Glob patterns of files to skip (added to the config's)."),
    output_format: Format = typer.Option(Format.text, "--format", help="Output format."),
    config: Optional[Path] = typer.Option(None, "--config", help="Read settings from this pyproject.toml."),
    isolated: bool = typer.Option(False, "--isolated", help="Ignore all configuration files."),
    jobs: Optional[int] = typer.Option(None, "--jobs", "-j", min=1, help="Worker processes (default: all cores)."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Neither read nor write the result cache."),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="Result cache directory (default: $XDG_CACHE_HOME/jaxdoctor or ~/.cache/jaxdoctor)."),
    exit_zero: bool = typer.Option(False, "--exit-zero", help="Exit with status 0 even when there are findings."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Text format: no summary line."),
    statistics: bool = typer.Option(False, "--statistics", help="Show counts per rule instead of the findings (JSON with --format json)."),
    fix: bool = typer.Option(False, "--fix", help="Apply safe fixes in place, then report what remains."),
    unsafe_fixes: bool = typer.Option(False, "--unsafe-fixes", help="With --fix or --diff: include fixes that may change behaviour."),
    diff: bool = typer.Option(False, "--diff", help="Print a unified diff of what --fix would change; write nothing (exit 1 if there are changes)."),
) -> None:
    """Check Python files statically (never imports or runs them)."""
    from jaxdoctor import config as config_mod
    from jaxdoctor import registry
    from jaxdoctor.render import render
    from jaxdoctor.static.runner import InternalError, lint_paths

    paths = paths or ["."]
    try:
        settings = config_mod.load(config, Path(paths[0]), isolated=isolated)
        if exclude:
            settings.exclude = settings.exclude + _split(exclude)
        codes = _codes(settings, select, ignore, extend_select)
        per_file = {
            glob: frozenset(registry.expand(selectors, what=f"per-file-ignores code for {glob!r}"))
            for glob, selectors in settings.per_file_ignores.items()
        }
    except UsageError as e:
        raise _fail(str(e))
    if fix or diff:
        try:
            status = _fix(paths, settings, codes, per_file, jobs=jobs, diff=diff, unsafe=unsafe_fixes,
                          output_format=output_format.value, quiet=quiet, exit_zero=exit_zero)
        except InternalError as e:
            typer.echo(f"jaxdoctor: {e}", err=True)
            raise typer.Exit(2)
        raise typer.Exit(status)
    from jaxdoctor.progress import progress_bar

    cache = None
    if settings.cache and not no_cache:
        from jaxdoctor.static.cache import Cache, resolve_dir

        cache = Cache(resolve_dir(cache_dir, settings.cache_dir, settings.root if settings.source else None))
    bar = progress_bar()
    try:
        run = lint_paths(paths, settings, codes, per_file, jobs=jobs, cache=cache, progress=bar)
    except InternalError as e:
        typer.echo(f"jaxdoctor: {e}", err=True)
        raise typer.Exit(2)
    finally:
        if bar is not None:
            bar.close()
    if statistics:
        from jaxdoctor.render.statistics import render_statistics

        render_statistics(run.findings, sys.stdout, fmt=output_format.value)
    else:
        render(output_format.value, run.findings, sys.stdout, summary=not quiet, files=run.files)
    raise typer.Exit(0 if exit_zero or not run.findings else 1)


def _fix(paths, settings, codes, per_file, *, jobs, diff: bool, unsafe: bool, output_format: str,
         quiet: bool, exit_zero: bool) -> int:
    """`lint --fix` / `lint --diff`: returns the exit status.

    `--diff` prints the unified diff only (like ruff): 1 when there would be changes, else 0.
    `--fix` writes the fixed files, then renders the findings that remain (status from those).
    """
    from jaxdoctor.render import render
    from jaxdoctor.static.runner import fix_paths

    run = fix_paths(paths, settings, codes, per_file, unsafe=unsafe, write=not diff, jobs=jobs)
    changed = run.changed
    if diff:
        for ff in changed:
            sys.stdout.write(ff.diff())
        if not quiet:
            n = run.applied
            sys.stderr.write(f"Would fix {_count(n, 'finding')} in {_count(len(changed), 'file')}.\n"
                             if n else "No fixes available.\n")
        return 0 if exit_zero or not changed else 1
    findings = run.findings
    render(output_format, findings, sys.stdout, summary=not quiet, files=len(run.files))
    if not quiet and run.applied:
        sys.stderr.write(f"Fixed {_count(run.applied, 'finding')} in {_count(len(changed), 'file')}.\n")
    return 0 if exit_zero or not findings else 1


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'s' if n != 1 else ''}"


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
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, header_style="bold")
    for column in ("code", "name", "pass", "severity", "fix", "summary"):
        table.add_column(column, overflow="fold")
    for d in described:
        table.add_row(d["code"], d["name"] + ("" if d["default"] else " (opt-in)"), d["origin"],
                      d["severity"], d["fix"] or "", d["summary"])
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
    retrace_threshold: int = typer.Option(3, "--retrace-threshold", help="Report functions traced more than this many times."),
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
        )
    except UsageError as e:
        raise _fail(str(e))
    for message in result.messages:
        typer.echo(f"jaxdoctor: {message}", err=True)
    for report in result.cost:
        typer.echo("jaxdoctor: cost: " + json.dumps(report, default=str), err=True)
    # after a failed run (exit 2, e.g. no such device) "All checks passed" would be false
    render(output_format.value, result.findings, sys.stdout,
           summary=result.exit_status != 2 or bool(result.findings), files=None)
    raise typer.Exit(0 if exit_zero and result.exit_status != 2 else result.exit_status)


def main() -> None:
    try:
        app()
    except UsageError as e:  # pragma: no cover - commands convert these themselves
        typer.echo(f"jaxdoctor: error: {e}", err=True)
        sys.exit(2)
