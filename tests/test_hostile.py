"""Hostile input never crashes or hangs `jaxdoctor lint`, in any output format: each unparsable
file is a JD001 finding naming it, the other files are linted, the exit status stays 0/1, and
there is no traceback."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from cli_support import BAD, BAD_JD101, jaxdoctor

#: name → why it can't be linted (each must be a JD001 finding that names the file)
UNPARSABLE = {
    "binary.py": "binary",
    "nul.py": "NUL",
    "bad_utf8.py": "decode",
    "python2.py": "syntax",
    "deep_parens.py": "nested",
    "deep_subscripts.py": "nested",
    "deep_unary.py": "nested",
    "deep_lambda.py": "nested",
    "fifo.py": "regular file",
    "loop_a.py": "cannot read",
    "dangling.py": "cannot read",
}


def build(root: Path, many: bool = True) -> Path:
    d = root / "hostile"
    d.mkdir()
    (d / "binary.py").write_bytes(bytes(range(256)) * 8)
    (d / "nul.py").write_bytes(b"import jax\nx = 1\x00\n")
    (d / "bad_utf8.py").write_bytes(b"import jax\nx = '\xff\xfe\xfa'\n")
    (d / "python2.py").write_text("import jax\nprint 'hello'\nexec 'x = 1'\n")
    (d / "deep_parens.py").write_text("import jax\nx = " + "(" * 3000 + "1" + ")" * 3000 + "\n")
    (d / "deep_subscripts.py").write_text("import jax\nx = " + "a[" * 3000 + "1" + "]" * 3000 + "\n")
    (d / "deep_unary.py").write_text("import jax\nx = " + "-" * 3000 + "1\n")
    (d / "deep_lambda.py").write_text("import jax\nf = " + "lambda: " * 10000 + "1\n")
    if many:  # 60,000 functions, gate passed: parsed and linted for real
        (d / "many.py").write_text(
            "import jax\n" + "".join(f"def f{i}(x): return x + {i}\n" for i in range(60_000)))
    os.mkfifo(d / "fifo.py")
    os.symlink("loop_b.py", d / "loop_a.py")
    os.symlink("loop_a.py", d / "loop_b.py")
    os.symlink(".", d / "dir_loop")  # a directory symlink loop: not followed
    os.symlink("does_not_exist.py", d / "dangling.py")  # unreadable (we are root: chmod won't do)
    (d / "x.py").mkdir()  # a directory named like a source file: walked, not read
    (d / "x.py" / "inner.py").write_text(BAD)
    (d / "empty.py").write_text("")
    (d / "bom.py").write_bytes(b"\xef\xbb\xbf" + BAD.encode())
    (d / "crlf.py").write_bytes(BAD.replace("\n", "\r\n").encode())
    (d / "ok.py").write_text(BAD)
    for i in range(20):  # enough files for the worker pool
        (d / f"plain_{i}.py").write_text(f"import jax.numpy as jnp\n\ny{i} = jnp.ones(3)\n")
    return d


def run_cli(cwd: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return jaxdoctor("lint", "--isolated", "--no-cache", *args, cwd=cwd, timeout=timeout)


def check(proc: subprocess.CompletedProcess, many: bool) -> None:
    assert proc.returncode in (0, 1), proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    findings = json.loads(proc.stdout)
    jd001 = {Path(f["path"]).name: f["message"] for f in findings if f["code"] == "JD001"}
    for name, why in UNPARSABLE.items():
        assert name in jd001, f"{name} not reported as JD001: {sorted(jd001)}"
        assert why in jd001[name], (name, jd001[name])
    # the loop partner is either reported or not, but no readable file is a JD001
    assert not set(jd001) - set(UNPARSABLE) - {"loop_b.py"}, jd001
    jd101 = {(Path(f["path"]).name, f["line"], f["column"]) for f in findings if f["code"] == "JD101"}
    assert {(name, *BAD_JD101) for name in ("ok.py", "bom.py", "crlf.py", "inner.py")} <= jd101, jd101
    if many:
        assert not any(Path(f["path"]).name == "many.py" for f in findings)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs and symlinks (POSIX)")
def test_hostile_folder_workers(tmp_path: Path) -> None:
    d = build(tmp_path)
    proc = run_cli(tmp_path, "--format", "json", "--jobs", "2", str(d))
    check(proc, many=True)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs and symlinks (POSIX)")
def test_hostile_folder_in_process(tmp_path: Path) -> None:
    d = build(tmp_path, many=False)
    proc = run_cli(tmp_path, "--format", "json", "--jobs", "1", str(d))
    check(proc, many=False)
    # named on the command line too (explicit files, text output)
    text = run_cli(tmp_path, "--format", "concise", str(d / "fifo.py"), str(d / "deep_parens.py"),
                   str(d / "dangling.py"), str(d / "x.py"))
    assert text.returncode == 1 and "Traceback" not in text.stdout + text.stderr
    for name in ("fifo.py", "deep_parens.py", "dangling.py", "inner.py"):
        assert name in text.stdout


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs and symlinks (POSIX)")
@pytest.mark.parametrize("fmt", ["text", "concise", "sarif", "github"])
def test_hostile_folder_in_every_format(tmp_path: Path, fmt: str) -> None:
    """The renderers never open the linted files: a FIFO named x.py must not block them."""
    d = build(tmp_path, many=False)
    proc = run_cli(tmp_path, "--format", fmt, "--jobs", "1", str(d))
    assert proc.returncode == 1, proc.stderr
    assert "Traceback (most recent call last)" not in proc.stdout + proc.stderr
    for name in [*UNPARSABLE, "ok.py", "inner.py"]:
        assert name in proc.stdout, (fmt, name)
