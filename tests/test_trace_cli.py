"""`jaxdoctor trace` end to end through the CLI and the isolated child process: the parent never
imports jax, and hangs, crashes, sys.exit, import errors, a missing jax, a missing device and
config entries all end in a clear message and exit status — never a jaxdoctor traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from cli_support import jaxdoctor
from trace_support import EXAMPLES, ROOT

from jaxdoctor.errors import UsageError


def jd(*args, cwd=None, timeout=120):
    return jaxdoctor(*args, cwd=cwd or ROOT, timeout=timeout, env=dict(os.environ, PYTHONPATH=str(ROOT)))


def write(tmp_path: Path, name: str, body: str) -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(body))
    return p


def no_jaxdoctor_traceback(proc):
    assert "Traceback" not in proc.stderr or "library frames hidden by jaxdoctor" in proc.stderr
    assert "jaxdoctor/trace" not in proc.stderr


def test_seed_a_abstract_json():
    proc = jd("trace", "examples/trace_cond_loop.py:step", "--inputs", "f32[1024,1024], f32[1024], bool[]",
              "--vmap", "None,0,0", "--batch", "64", "--format", "json")
    assert proc.returncode == 1, proc.stderr
    (f,) = json.loads(proc.stdout)
    assert (f["code"], f["line"], f["origin"]) == ("JD501", 18, "trace")
    assert "256.0 MiB" in f["message"] and f["details"]["bytes_after"] == 256 * 2**20


def test_parent_cli_does_not_import_jax():
    code = ("import sys, jaxdoctor.cli, jaxdoctor.trace.command, jaxdoctor.trace.runner; "
            "assert 'jax' not in sys.modules, 'jax imported in the parent'")
    subprocess.run([sys.executable, "-c", code], check=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))


def test_hang_is_stopped_and_located(tmp_path):
    p = write(tmp_path, "hang.py", """\
        import time

        def main():
            while True:
                time.sleep(0.05)
        """)
    t = time.perf_counter()
    proc = jd("trace", f"{p}:main", "--timeout", "10", "--format", "concise")
    assert time.perf_counter() - t < 40
    assert proc.returncode == 1
    # stopped inside `time.sleep` on line 5, reported at the loop that never ends (line 4)
    assert "JD512" in proc.stdout and "hang.py:4:" in proc.stdout, proc.stdout + proc.stderr
    assert proc.stdout.count("JD512") == 1 and "error" not in proc.stderr  # one finding, no second message
    no_jaxdoctor_traceback(proc)


def test_segfault_is_a_finding(tmp_path):
    p = write(tmp_path, "crash.py", """\
        import ctypes

        def main():
            return ctypes.string_at(0)
        """)
    proc = jd("trace", f"{p}:main", "--format", "concise")
    assert proc.returncode == 1
    assert "JD513" in proc.stdout and "crash.py:4:" in proc.stdout and "SIGSEGV" in proc.stdout


def test_script_output_args_and_exit_status_are_kept(tmp_path):
    p = write(tmp_path, "script.py", """\
        import sys
        import jax.numpy as jnp

        print("hello", sys.argv[1:], float(jnp.ones(3).sum()))
        sys.exit(3)
        """)
    proc = jd("trace", str(p), "--", "--lr", "0.1")
    assert proc.returncode == 3
    assert "hello ['--lr', '0.1'] 3.0" in proc.stdout
    # one finding at the `sys.exit` line, and a summary that says the run failed
    assert "script.py:5:1: JD523" in proc.stdout and "sys.exit(3)" in proc.stdout
    assert "the run failed: the program exited with status 3" in proc.stdout
    assert "All checks passed" not in proc.stdout
    no_jaxdoctor_traceback(proc)
    proc = jd("trace", str(p), "--format", "json", "--", "--lr", "0.1")
    assert proc.returncode == 3
    (f,) = json.loads(proc.stdout)
    assert (f["code"], f["line"], f["details"]["exit_status"]) == ("JD523", 5, 3)


def test_import_failure_and_uncaught_error(tmp_path):
    bad = write(tmp_path, "broken.py", """\
        import jax
        import not_a_real_module_xyz

        def main():
            pass
        """)
    proc = jd("trace", f"{bad}:main", "--format", "concise")
    assert proc.returncode == 1
    assert "JD514" in proc.stdout and "broken.py:2:" in proc.stdout
    raises = write(tmp_path, "raises.py", """\
        def main():
            return {}["missing"]
        """)
    proc = jd("trace", f"{raises}:main", "--format", "concise")
    assert proc.returncode == 1 and "JD511" in proc.stdout and "raises.py:2:" in proc.stdout
    assert "KeyError" in proc.stderr  # the program's own (user-frames-only) traceback
    no_jaxdoctor_traceback(proc)


def test_usage_errors_exit_2():
    for args in (["trace", "nope.py:main"], ["trace", "examples/trace_cond_loop.py:step", "--vmap", "0"],
                 ["trace", "examples/trace_cond_loop.py:step", "--inputs", "f32[", "--device", "cpu"],
                 ["trace", "examples/trace_cond_loop.py:main", "--device", "abacus"]):
        proc = jd(*args)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        assert proc.stderr.startswith("jaxdoctor: error:") and "Traceback" not in proc.stderr


@pytest.mark.parametrize("device", ["tpu", "gpu"])
def test_missing_device_names_existing_devices(device):
    # CI machines have neither: jax raises RuntimeError for tpu, a bare AssertionError for gpu
    proc = jd("trace", "examples/trace_cond_loop.py:main", "--device", device)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"--device {device}: JAX cannot use a {device} device here" in proc.stderr
    assert "devices that exist: cpu:0" in proc.stderr
    assert "internal error" not in proc.stderr and "All checks passed" not in proc.stdout


def test_missing_jax_install_is_a_clear_message(tmp_path):
    bare = "/usr/bin/python3"
    if subprocess.run([bare, "-c", "import jax"], capture_output=True).returncode == 0:
        pytest.fail("test needs a Python without jax at /usr/bin/python3")
    from jaxdoctor.trace import runner

    job = {"target": {"kind": "file", "spec": str(EXAMPLES / "trace_cond_loop.py"), "function": "main"}}
    res = runner.run_child([job], python=bare, timeout=60)
    assert res.fatal and "jax is not installed" in res.fatal["fatal"]


def test_config_entries_run_with_bare_trace(tmp_path):
    (tmp_path / "prog.py").write_text((EXAMPLES / "trace_cond_loop.py").read_text())
    (tmp_path / "pyproject.toml").write_text(textwrap.dedent("""\
        [tool.jaxdoctor]
        [[tool.jaxdoctor.trace]]
        target = "prog.py:step"
        inputs = "f32[512,512], f32[512], bool[]"
        vmap = "None,0,0"
        batch = 16
        timeout = 60

        [[tool.jaxdoctor.trace]]
        target = "prog.py:main"
        """))
    proc = jd("trace", "--format", "json", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    found = json.loads(proc.stdout)
    assert [(f["code"], f["line"]) for f in found] == [("JD501", 18)]  # deduplicated across entries


def test_config_unknown_key_is_a_clear_error(tmp_path):
    from jaxdoctor.trace.command import run_trace

    (tmp_path / "pyproject.toml").write_text('[tool.jaxdoctor]\n[[tool.jaxdoctor.trace]]\ntarget = "x.py:f"\ninptus = "f32[3]"\n')
    with pytest.raises(UsageError, match="unknown key 'inptus'.*did you mean 'inputs'"):
        run_trace(None, cwd=str(tmp_path))
    (tmp_path / "pyproject.toml").write_text('[tool.jaxdoctor]\n[[tool.jaxdoctor.trace]]\ntarget = "x.py:f"\nbatch = "8"\n')
    with pytest.raises(UsageError, match="'batch' must be a int"):
        run_trace(None, cwd=str(tmp_path))
