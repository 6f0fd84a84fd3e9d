"""The sharding doctor end to end, through the CLI and the real child process: `--mesh` simulates a
mesh for a program that has none, `--inputs` takes shardings, a program that builds its own mesh
gets its simulated devices, its own device count wins, and bad options are one clear line in
every output format."""

from __future__ import annotations

import json
import os
import textwrap

import pytest
from cli_support import jaxdoctor
from trace_support import ROOT

FORMATS = ["text", "concise", "json", "sarif", "github"]

NO_MESH = """\
import jax
import jax.numpy as jnp


@jax.jit
def step(w, x):
    return jnp.tanh(x @ w).sum()


def main():
    w = jnp.ones((2048, 2048))
    x = jnp.ones((64, 2048))
    return [step(w, x) for _ in range(2)]
"""

MODEL = """\
import jax
import jax.numpy as jnp


def loss(params, tokens):
    return jnp.mean(params["embed"][tokens] ** 2)
"""

OWN_COUNT = """\
import os
os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"

import jax
import numpy as np
from jax.sharding import Mesh

mesh = Mesh(np.array(jax.devices()), ("data",))
print("devices:", jax.device_count())
"""


def jd(*args, cwd, env_extra=None):
    env = {k: v for k, v in os.environ.items() if k != "JAX_NUM_CPU_DEVICES"}
    env.update(PYTHONPATH=str(ROOT), **(env_extra or {}))
    return jaxdoctor(*args, cwd=cwd, timeout=240, env=env)


def test_mesh_simulates_a_mesh_for_a_program_without_one(tmp_path):
    (tmp_path / "prog.py").write_text(NO_MESH)
    proc = jd("trace", "prog.py:main", "--mesh", "data=4,model=2", "--replicated-threshold", "8MiB",
              "--device-memory", "8MiB", "--format", "json", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    found = {(f["code"], f["line"]) for f in json.loads(proc.stdout)}
    assert found == {("JD532", 13), ("JD533", 13)}, proc.stdout
    giant = next(f for f in json.loads(proc.stdout) if f["code"] == "JD532")
    assert "simulated mesh `data=4,model=2`" in giant["message"]
    assert giant["details"]["bytes_per_device"] == 16 << 20
    assert giant["details"]["bytes_per_device_sharded"] == 2 << 20


def test_inputs_take_shardings(tmp_path):
    (tmp_path / "model.py").write_text(MODEL)
    proc = jd("trace", "model.py:loss", "--mesh", "data=4,model=2", "--format", "json", "--inputs",
              "{'embed': f32[32768,1024]@P()}, i32[64,128]@P('data')", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    (f,) = json.loads(proc.stdout)
    assert (f["code"], f["line"]) == ("JD532", 5)
    assert f["details"]["arguments"] == ["params['embed']"]
    clean = jd("trace", "model.py:loss", "--mesh", "data=4,model=2", "--format", "json", "--inputs",
               "{'embed': f32[32768,1024]@P('model', None)}, i32[64,128]@P('data')", cwd=tmp_path)
    assert clean.returncode == 0 and json.loads(clean.stdout) == [], clean.stdout + clean.stderr


def test_the_programs_own_device_count_wins(tmp_path):
    (tmp_path / "own.py").write_text(OWN_COUNT)
    proc = jd("trace", "own.py", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "devices: 4" in proc.stdout


BAD_OPTIONS = [
    (["--mesh", "data=4,model=x"], "--mesh: 'model=x' is not axis=size"),
    (["--mesh", "data=2,data=4"], "the axis 'data' is given twice"),
    (["--device-memory", "12parsecs"], "--device-memory: '12parsecs' is neither a size"),
    (["--replicated-threshold", "big"], "--replicated-threshold: expected a size"),
    (["--inputs", "f32[8]@P('data')"], "is sharded, which needs a mesh: give --mesh"),
    (["--inputs", "f32[8]@P('batch')", "--mesh", "data=8"], "names the axis 'batch', but --mesh data=8 has only data"),
    (["--inputs", "f32[8]@Q('data')", "--mesh", "data=8"], "expected a PartitionSpec after `@`"),
    (["--inputs", "f32[8]@P('data', None)", "--mesh", "data=8"], "has 2 entries but f32[8] has rank 1"),
]


CASES = [(*case, "json") for case in BAD_OPTIONS] + [(*BAD_OPTIONS[0], fmt) for fmt in FORMATS if fmt != "json"]


@pytest.mark.parametrize("args, message, fmt", CASES, ids=[f"{c[0][0]}-{i}-{c[2]}" for i, c in enumerate(CASES)])
def test_bad_options_are_one_clear_line(tmp_path, args, message, fmt):
    (tmp_path / "model.py").write_text(textwrap.dedent("""\
        def f(x):
            return x
        """))
    target = ["model.py:f"] if "--inputs" in args else ["model.py:f", "--inputs", "f32[8]"]
    proc = jaxdoctor("trace", *target, *args, "--format", fmt, cwd=tmp_path,
                     env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.startswith("jaxdoctor: error:") and message in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_config_gives_the_mesh(tmp_path):
    (tmp_path / "prog.py").write_text(NO_MESH)
    (tmp_path / "pyproject.toml").write_text(textwrap.dedent("""\
        [tool.jaxdoctor]
        mesh = "data=8"
        replicated-threshold = "8MiB"

        [[tool.jaxdoctor.trace]]
        target = "prog.py:main"
        device-memory = "v5e"
        """))
    proc = jd("trace", "--format", "json", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert [(f["code"], f["line"]) for f in json.loads(proc.stdout)] == [("JD532", 13)]
    bad = tmp_path / "pyproject.toml"
    bad.write_text('[tool.jaxdoctor]\nmesh = 8\n')
    proc = jd("trace", "prog.py:main", cwd=tmp_path)
    assert proc.returncode == 2 and "[tool.jaxdoctor] mesh must be a string" in proc.stderr
