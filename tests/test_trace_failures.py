"""A trace run never claims success after a failure (issue 10, item 4): bad targets and bad
`--inputs` are one clear usage message (exit 2); a program that fails is one finding in every
output format and a summary that says the run failed; `--cost` travels in JSON `details`;
argument names are the user's; carets sit under the expression."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest
from cli_support import jaxdoctor
from trace_support import ROOT

from jaxdoctor.errors import UsageError


def jd(*args, cwd=None):
    return jaxdoctor(*args, cwd=cwd or ROOT, timeout=180, env=dict(os.environ, PYTHONPATH=str(ROOT), NO_COLOR="1"))


def write(tmp_path: Path, name: str, body: str) -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(body))
    return p


def one_usage_error(proc) -> str:
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert proc.stdout.strip() in ("", "[]") and "All checks passed" not in proc.stdout
    assert proc.stderr.startswith("jaxdoctor: error:") and "Traceback" not in proc.stderr
    return proc.stderr


# --- targets -----------------------------------------------------------------------------------


def test_notebook_and_other_files_are_usage_errors(tmp_path):
    from jaxdoctor.trace.targets import parse_target

    (tmp_path / "nb.ipynb").write_text('{"cells": []}')
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "pkg").mkdir()
    for text, words in (("nb.ipynb", "is a notebook"), ("nb.ipynb:main", "is a notebook"),
                        ("notes.txt", "is not a Python file"), ("missing.ipynb", "no such file"),
                        ("pkg", "is a directory")):
        with pytest.raises(UsageError, match=words):
            parse_target(text, cwd=str(tmp_path))
    assert parse_target("pkg.module:fn", cwd=str(tmp_path)).kind == "module"


def test_unimportable_module_is_one_clear_message_in_every_format(tmp_path):
    for fmt in ("text", "json"):
        err = one_usage_error(jd("trace", "nomodule_xyz:fn", "--format", fmt, cwd=tmp_path))
        assert "no module named 'nomodule_xyz'" in err and err.count("\n") == 1


def test_module_whose_own_import_fails_is_a_finding_not_a_usage_error(tmp_path):
    write(tmp_path, "needs_missing.py", """\
        import not_a_real_module_xyz


        def main():
            pass
        """)
    proc = jd("trace", "needs_missing:main", "--format", "json", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    (f,) = json.loads(proc.stdout)
    assert (f["code"], f["line"]) == ("JD514", 1)


# --- --inputs ----------------------------------------------------------------------------------


@pytest.mark.parametrize("text, message, caret", [
    ("f32[8,3", "`[` at column 4 is never closed", 3),
    ("f32[8,3]]", "`]` at column 9 closes nothing", 8),
    ("{'w': f32[3}", "`}` at column 12 does not close the `[` at column 10", 11),
    ("f32[8,3] i32[]", "invalid syntax", 0),
    ("f32[2], x=", "invalid syntax", 10),
])
def test_inputs_syntax_error_names_the_position(text, message, caret):
    from jaxdoctor.trace.inputs import parse_inputs

    with pytest.raises(UsageError) as info:
        parse_inputs(text)
    head, shown, marker = str(info.value).split("\n")
    assert message in head and "')'" not in head
    assert shown.strip() == text and marker.index("^") - shown.index(text[0]) == caret


def test_inputs_of_the_wrong_arity_are_a_usage_error(tmp_path):
    p = write(tmp_path, "predict.py", """\
        import jax.numpy as jnp


        def predict(x):
            return jnp.tanh(x).sum()
        """)
    for fmt in ("text", "json"):
        err = one_usage_error(jd("trace", f"{p}:predict", "--inputs", "f32[8,3], f32[2]", "--format", fmt))
        assert "--inputs gives (float32[8,3], float32[2]) but `predict(x)` cannot take them" in err
    err = one_usage_error(jd("trace", f"{p}:predict", "--inputs", "f32[8,3"))
    assert "`[` at column 4 is never closed" in err and "    f32[8,3\n       ^" in err


# --- failed programs, in every format ----------------------------------------------------------


def test_uncaught_error_fails_the_run_in_every_format(tmp_path):
    p = write(tmp_path, "raises.py", """\
        def main():
            return {}["missing"]
        """)
    text = jd("trace", f"{p}:main")
    assert text.returncode == 1
    assert "JD511" in text.stdout and "the run failed: it raised KeyError" in text.stdout
    assert "All checks passed" not in text.stdout
    (f,) = json.loads(jd("trace", f"{p}:main", "--format", "json").stdout)
    assert (f["code"], f["line"]) == ("JD511", 2)
    sarif = json.loads(jd("trace", f"{p}:main", "--format", "sarif").stdout)
    assert [r["ruleId"] for r in sarif["runs"][0]["results"]] == ["JD511"]


def test_os_exit_is_a_finding(tmp_path):
    p = write(tmp_path, "quits.py", """\
        import os


        def main():
            os._exit(4)
        """)
    proc = jd("trace", f"{p}:main", "--format", "json")
    assert proc.returncode == 4
    (f,) = json.loads(proc.stdout)
    assert f["code"] == "JD523" and f["details"]["exit_status"] == 4


# --- --cost, names and carets ------------------------------------------------------------------


def test_cost_goes_into_json_details_and_keeps_exit_0(tmp_path):
    p = write(tmp_path, "loop.py", """\
        import jax
        import jax.numpy as jnp


        def step(w, x):
            def body(h, _):
                return jnp.tanh(h @ w), None

            return jax.lax.scan(body, x, None, length=10)[0].sum()
        """)
    proc = jd("trace", f"{p}:step", "--inputs", "f32[64,64], f32[8,64]", "--cost", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    (f,) = json.loads(proc.stdout)
    assert (f["code"], f["severity"], f["line"]) == ("JD524", "info", 5)
    d = f["details"]
    assert d["flops"] >= 10 * 2 * 8 * 64 * 64  # ten matmuls, counted ten times
    assert d["xla_flops"] < d["flops"]  # XLA counts the scan body once
    assert "each loop body counted once" in d["explained"]["xla_flops"]
    assert "cost:" not in proc.stderr  # no raw dict on stderr any more


def test_jd101_names_the_users_argument_and_carets_sit_under_the_expression(tmp_path):
    p = write(tmp_path, "flag.py", """\
        import jax.numpy as jnp


        def predict(x, training):
            if training:
                x = x * 0.5
            return jnp.tanh(x).sum()
        """)
    proc = jd("trace", f"{p}:predict", "--inputs", "f32[3], bool[]", "--format", "json")
    (f,) = json.loads(proc.stdout)
    assert f["code"] == "JD101" and f["details"]["arguments"] == ["training"]
    assert "`training`" in f["message"] and "dyn[" not in f["message"]
    assert (f["line"], f["column"]) == (5, 5)
