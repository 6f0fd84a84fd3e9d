"""The command line end to end: exit codes, config, selection, suppressions, output schema."""

from __future__ import annotations

import json
from pathlib import Path

from cli_support import BAD, jaxdoctor, write


def test_version():
    proc = jaxdoctor("--version")
    assert proc.returncode == 0 and proc.stdout.startswith("jaxdoctor ")


def test_exit_codes(tmp_path):
    write(tmp_path / "bad.py", BAD)
    write(tmp_path / "good.py", "import jax\n\nf = jax.jit(lambda x: x + 1)\n")
    assert jaxdoctor("lint", "good.py", cwd=tmp_path).returncode == 0
    proc = jaxdoctor("lint", "bad.py", cwd=tmp_path)
    assert proc.returncode == 1
    assert "bad.py:6:8: JD101" in proc.stdout
    assert "help:" in proc.stdout and "^^^^^" in proc.stdout
    assert jaxdoctor("lint", "--exit-zero", "bad.py", cwd=tmp_path).returncode == 0


def test_concise_and_json_schema(tmp_path):
    write(tmp_path / "bad.py", BAD)
    proc = jaxdoctor("lint", "--format", "concise", "bad.py", cwd=tmp_path)
    assert proc.stdout.splitlines()[0].startswith("bad.py:6:8: JD101 ")
    proc = jaxdoctor("lint", "--format", "json", "bad.py", cwd=tmp_path)
    data = json.loads(proc.stdout)
    assert len(data) == 1
    finding = data[0]
    for key in ("code", "name", "severity", "message", "path", "line", "column", "end_line",
                "end_column", "fix_title"):
        assert key in finding
    assert (finding["code"], finding["name"], finding["line"], finding["column"]) == (
        "JD101", "python-control-flow-on-tracer", 6, 8)
    assert (finding["end_line"], finding["end_column"]) == (6, 13)
    assert finding["severity"] == "error" and finding["origin"] == "static"


def test_unknown_rule_code_is_a_one_line_usage_error(tmp_path):
    write(tmp_path / "bad.py", BAD)
    proc = jaxdoctor("lint", "--select", "JD999", "bad.py", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "JD999" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_bad_config_key_is_a_one_line_error(tmp_path):
    write(tmp_path / "pyproject.toml", '[tool.jaxdoctor]\nselct = ["JD1"]\n')
    write(tmp_path / "bad.py", BAD)
    proc = jaxdoctor("lint", "bad.py", cwd=tmp_path)
    assert proc.returncode == 2
    assert "unknown key 'selct'" in proc.stderr and "did you mean 'select'" in proc.stderr
    assert proc.stderr.strip().count("\n") == 0


def test_bad_config_values_and_codes(tmp_path):
    write(tmp_path / "bad.py", BAD)
    write(tmp_path / "pyproject.toml", '[tool.jaxdoctor]\nignore = "JD7"\n')
    proc = jaxdoctor("lint", "bad.py", cwd=tmp_path)
    assert proc.returncode == 2 and "JD7" in proc.stderr
    write(tmp_path / "pyproject.toml", '[tool.jaxdoctor]\nselect = 3\n')
    proc = jaxdoctor("lint", "bad.py", cwd=tmp_path)
    assert proc.returncode == 2 and "list of strings" in proc.stderr
    write(tmp_path / "pyproject.toml", '[tool.jaxdoctor\n')
    proc = jaxdoctor("lint", "bad.py", cwd=tmp_path)
    assert proc.returncode == 2 and "invalid TOML" in proc.stderr


def test_config_select_ignore_and_per_file_ignores(tmp_path):
    write(tmp_path / "pkg" / "bad.py", BAD)
    write(tmp_path / "tests" / "test_bad.py", BAD)
    write(tmp_path / "pyproject.toml", """\
        [tool.jaxdoctor]
        per-file-ignores = { "tests/*" = ["JD101"] }
    """)
    proc = jaxdoctor("lint", ".", "--format", "concise", cwd=tmp_path)
    assert proc.returncode == 1
    assert "pkg/bad.py:6:8: JD101" in proc.stdout and "test_bad.py" not in proc.stdout
    write(tmp_path / "pyproject.toml", '[tool.jaxdoctor]\nignore = ["JD1"]\n')
    assert jaxdoctor("lint", ".", cwd=tmp_path).returncode == 0
    # the command line overrides the config
    proc = jaxdoctor("lint", ".", "--select", "JD101", cwd=tmp_path)
    assert proc.returncode == 1
    write(tmp_path / "pyproject.toml", '[tool.jaxdoctor]\nexclude = ["tests"]\n')
    proc = jaxdoctor("lint", ".", "--format", "concise", cwd=tmp_path)
    assert "test_bad.py" not in proc.stdout and "pkg/bad.py" in proc.stdout


def test_inline_suppressions(tmp_path):
    src = BAD.replace("if x > 0:", "if x > 0:  # jaxdoctor: ignore[JD101]")
    write(tmp_path / "a.py", src)
    assert jaxdoctor("lint", "a.py", cwd=tmp_path).returncode == 0
    write(tmp_path / "b.py", BAD.replace("if x > 0:", "if x > 0:  # noqa: JD101"))
    assert jaxdoctor("lint", "b.py", cwd=tmp_path).returncode == 0
    write(tmp_path / "c.py", BAD.replace("if x > 0:", "if x > 0:  # noqa: E501"))
    assert jaxdoctor("lint", "c.py", cwd=tmp_path).returncode == 1
    write(tmp_path / "d.py", BAD.replace("if x > 0:", "if x > 0:  # jaxdoctor: ignore"))
    assert jaxdoctor("lint", "d.py", cwd=tmp_path).returncode == 0
    write(tmp_path / "e.py", BAD.replace("if x > 0:", "if x > 0:  # jaxdoctor: ignore[JD102]"))
    assert jaxdoctor("lint", "e.py", cwd=tmp_path).returncode == 1


def test_lint_never_runs_user_code(tmp_path):
    marker = tmp_path / "was-run"
    write(tmp_path / "evil.py", f"""\
        import jax, sys
        open({str(marker)!r}, "w").write("ran")
        sys.exit(3)
    """)
    proc = jaxdoctor("lint", "evil.py", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not marker.exists()


def test_unreadable_and_broken_files_are_reported_and_the_run_goes_on(tmp_path):
    write(tmp_path / "bad.py", BAD)
    write(tmp_path / "broken.py", "import jax\ndef f(:\n")
    (tmp_path / "binary.py").write_bytes(b"import jax\x00\x01\x02")
    (tmp_path / "latin.py").write_bytes(b"import jax\ns = '\xff\xfe'\n")
    proc = jaxdoctor("lint", ".", "missing.py", "--format", "concise", cwd=tmp_path)
    assert proc.returncode == 1
    out = proc.stdout
    assert "bad.py:6:8: JD101" in out
    for name in ("broken.py", "binary.py", "latin.py", "missing.py"):
        assert f"{name}:" in out and "JD001" in out.split(f"{name}:", 1)[1].splitlines()[0]
    assert "Traceback" not in proc.stderr


def test_rules_and_explain():
    proc = jaxdoctor("rules", "--format", "json")
    codes = [r["code"] for r in json.loads(proc.stdout)]
    assert "JD101" in codes and codes == sorted(codes)
    proc = jaxdoctor("explain", "jd101")
    assert proc.returncode == 0 and "python-control-flow-on-tracer" in proc.stdout
    proc = jaxdoctor("explain", "JD999")
    assert proc.returncode == 2 and "unknown rule code" in proc.stderr


def test_trace_honours_select_and_ignore():
    root = Path(__file__).resolve().parent.parent
    example = str(root / "examples" / "trace_cond_loop.py") + ":main"
    proc = jaxdoctor("trace", example, "--format", "concise", cwd=root)
    assert proc.returncode == 1 and "JD501" in proc.stdout
    proc = jaxdoctor("trace", example, "--ignore", "JD501", cwd=root)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = jaxdoctor("trace", example, "--select", "JD9", cwd=root)
    assert proc.returncode == 2 and "JD9" in proc.stderr


def test_hang_is_reported_at_the_enclosing_loop(tmp_path):
    from jaxdoctor.trace.command import enclosing_loop_line

    src = write(tmp_path / "h.py", """\
        def main():
            x = 0
            while x >= 0:
                for i in range(3):
                    x = x + i
                x = x + 1
            return x
    """)
    assert enclosing_loop_line(str(src), 5) == 4
    assert enclosing_loop_line(str(src), 6) == 3
    assert enclosing_loop_line(str(src), 2) == 2
    assert enclosing_loop_line(str(tmp_path / "missing.py"), 9) == 9
