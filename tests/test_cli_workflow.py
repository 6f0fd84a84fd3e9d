"""The ruff-like workflow of `jaxdoctor lint`, end to end through the real command: stdin, fix
previews, honest fix counts, --statistics with --fix, --add-noqa, --output-file, and the small
things a new user hits (empty folders, empty or trace-only selections, piped `rules`/`explain`)."""

from __future__ import annotations

import json

from cli_support import jaxdoctor as run
from cli_support import write

SAFE_AND_UNSAFE = """\
import jax
import jax.numpy as jnp


@jax.jit
def f(x, i):
    x[i] = 0.0
    if x.sum() > 0:  # jaxdoctor: ignore[JD110]
        return x
    print("x", x)
    return x
"""


def test_stdin_lint_fix_and_diff(tmp_path):
    write(tmp_path / "sub" / "pyproject.toml", '[tool.jaxdoctor]\nignore = ["JD101"]\n')
    proc = run("lint", "-", "--stdin-filename", "sub/step.py", "--format", "concise", cwd=tmp_path,
               stdin=SAFE_AND_UNSAFE)
    assert proc.returncode == 1, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("sub/step.py:7:5: JD104 ")
    assert not any("JD101" in line for line in lines)  # the configuration next to the named file
    assert not (tmp_path / "sub" / "step.py").exists()
    # --fix: the fixed text on stdout, what remains on stderr
    proc = run("lint", "-", "--stdin-filename", "step.py", "--fix", "--format", "concise", cwd=tmp_path,
               stdin=SAFE_AND_UNSAFE)
    assert "    x = x.at[i].set(0.0)\n" in proc.stdout and proc.stdout.startswith("import jax\n")
    assert "    if x.sum() > 0:\n" in proc.stdout  # the unused suppression (JD002) was removed
    assert "step.py:8:8: JD101" in proc.stderr and proc.returncode == 1
    proc = run("lint", "-", "--diff", cwd=tmp_path, stdin=SAFE_AND_UNSAFE)
    assert proc.returncode == 1 and "+    x = x.at[i].set(0.0)" in proc.stdout
    # a text without any problem
    assert run("lint", "-", cwd=tmp_path, stdin="import jax\n").returncode == 0
    proc = run("lint", "-", "a.py", cwd=tmp_path, stdin="")
    assert proc.returncode == 2 and "stdin" in proc.stderr


def test_show_fixes_and_honest_counts(tmp_path):
    write(tmp_path / "step.py", SAFE_AND_UNSAFE)
    proc = run("lint", "step.py", "--show-fixes", "--no-cache", cwd=tmp_path)
    out = proc.stdout
    assert "7 -     x[i] = 0.0" in out and "7 +     x = x.at[i].set(0.0)" in out
    assert "unsafe fix:" in out  # the debug print's fix is labelled
    assert out.rstrip().endswith(
        "Found 4 problems (2 fixable with `--fix`, 1 more with `--unsafe-fixes`).")
    proc = run("lint", "step.py", "--statistics", "--no-cache", cwd=tmp_path)
    assert proc.stdout.rstrip().endswith("Found 4 problems (2 fixable with `--fix`, 1 more with `--unsafe-fixes`).")
    # --statistics with --fix: what remains after fixing
    proc = run("lint", "step.py", "--statistics", "--fix", "--show-fixes", "--no-cache", cwd=tmp_path)
    assert proc.stdout.splitlines()[-1] == "Found 2 problems (1 fixable with `--fix --unsafe-fixes`)."
    assert "Fixed 2 findings in 1 file." in proc.stderr
    assert "1 × JD104 (inplace-array-update)" in proc.stderr and "1 × JD002 (unused-suppression)" in proc.stderr
    assert "x = x.at[i].set(0.0)" in (tmp_path / "step.py").read_text()


def test_add_noqa_and_output_file(tmp_path):
    write(tmp_path / "step.py", SAFE_AND_UNSAFE.replace("  # jaxdoctor: ignore[JD110]", "  # keep"))
    proc = run("lint", "step.py", "--add-noqa", "--no-cache", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Added 3 suppressions in 1 file." in proc.stderr
    text = (tmp_path / "step.py").read_text()
    assert "    x[i] = 0.0  # jaxdoctor: ignore[JD104]\n" in text
    assert "    if x.sum() > 0:  # keep  # jaxdoctor: ignore[JD101]\n" in text
    assert run("lint", "step.py", "--no-cache", cwd=tmp_path).returncode == 0
    # --output-file: the report goes to the file, nothing to stdout
    write(tmp_path / "bad.py", SAFE_AND_UNSAFE)
    proc = run("lint", "bad.py", "--format", "json", "--output-file", "report.json", "--no-cache", cwd=tmp_path)
    assert proc.returncode == 1 and proc.stdout == ""
    assert {f["code"] for f in json.loads((tmp_path / "report.json").read_text())} >= {"JD101", "JD104"}
    proc = run("lint", "bad.py", "--output-file", "no/such/dir/r.txt", cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1


def test_small_things(tmp_path):
    (tmp_path / "empty").mkdir()
    write(tmp_path / "notes" / "README.md", "# nothing to lint\n")
    for where in ("empty", "notes"):
        proc = run("lint", where, cwd=tmp_path)
        assert proc.returncode == 0 and "warning: no Python files found" in proc.stderr, proc.stderr
    write(tmp_path / "m.py", SAFE_AND_UNSAFE)
    for args in (["--select", ""], ["--select", "JD5"], ["--select", "JD501,JD502"]):
        proc = run("lint", *args, "m.py", cwd=tmp_path)
        assert proc.returncode == 2, args
        assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "trace rules" in run("lint", "--select", "JD5", "m.py", cwd=tmp_path).stderr
    write(tmp_path / "pyproject.toml", '[tool.jaxdoctor]\nselect = ["JD50"]\n')
    proc = run("lint", "m.py", cwd=tmp_path)
    assert proc.returncode == 2 and "pyproject.toml" in proc.stderr


def test_rules_and_explain_when_piped(tmp_path):
    proc = run("rules", cwd=tmp_path)
    lines = proc.stdout.splitlines()
    assert lines[0].split() == ["code", "name", "pass", "severity", "fix", "summary"]
    rules = json.loads(run("rules", "--format", "json", cwd=tmp_path).stdout)
    assert len(lines) == len(rules) + 1  # one line per rule: nothing folded
    for rule, line in zip(rules, lines[1:]):
        assert line.startswith(rule["code"]) and rule["name"] in line and line.endswith(rule["summary"])
    proc = run("explain", "JD002", cwd=tmp_path)
    assert proc.stdout.startswith("# unused-suppression (JD002)\n")
    assert "(https://docs.astral.sh/ruff/rules/unused-noqa/)" in proc.stdout
    assert not any(line.endswith(" ") for line in proc.stdout.splitlines())
