"""Programs modelled on user reports, run under the doctor through a zero-argument `main` in one
shared process: each `bad_*` is reported exactly on its `# JDxxx` lines, each `clean_*` is silent.
Covers failure modes A (batched cond), C (nnx.vmap rngs, identical ensemble), D (Equinox dropout
under scan), E (Linen raw transforms, leaked tracers) and the classic trace errors."""

from __future__ import annotations

import pytest
from trace_support import EXAMPLES, FIXTURES, located, marks, run_in_process

BAD = sorted(p.name for p in FIXTURES.glob("bad_*.py"))
CLEAN = sorted(p.name for p in FIXTURES.glob("clean_*.py"))


@pytest.mark.parametrize("name", BAD)
def test_bad_program_reported_at_marked_line(name):
    path = FIXTURES / name
    want = marks(path)
    assert want, f"{name} has no # JDxxx marker"
    findings = run_in_process(path)
    assert located(findings, path) == want, [(f["code"], f["line"], f["message"]) for f in findings]
    assert all(f.get("path") for f in findings)


@pytest.mark.parametrize("name", CLEAN)
def test_clean_program_is_silent(name):
    findings = run_in_process(FIXTURES / name)
    assert findings == [], [(f["code"], f["path"], f["line"], f["message"]) for f in findings]


def test_seed_a_run_under_doctor_reports_cond_line_with_bytes():
    path = EXAMPLES / "trace_cond_loop.py"
    findings = run_in_process(path)
    assert located(findings, path) == marks(path)
    (f,) = findings
    assert f["details"]["batch_size"] == 8
    assert f["details"]["bytes_after"] == 8 * f["details"]["bytes_before"]


def test_equinox_internal_argument_name_is_recovered():
    findings = run_in_process(FIXTURES / "bad_eqx_dropout_scan.py")
    (f,) = findings
    assert f["details"]["arguments"] == ["inference"]
    assert "dynamic_nodonate" not in f["message"]


def test_retrace_names_the_changing_static_argument():
    at_def, at_call = run_in_process(FIXTURES / "bad_retrace.py")
    for f in (at_def, at_call):
        assert f["details"]["argument"] == "factor"
        assert f["details"]["traces"] == 6
        assert f["details"]["values"][:2] == ["static 1", "static 2"]
    assert at_call["details"]["role"] == "call" and at_call["line"] == at_def["details"]["call_line"]
    assert "`factor` is new every time" in at_call["message"]


def test_retrace_threshold_is_respected():
    assert run_in_process(FIXTURES / "bad_retrace.py", retrace_threshold=10) == []


def test_capture_does_not_change_results():
    import importlib.util

    import jax.numpy as jnp
    import numpy as np

    spec = importlib.util.spec_from_file_location("_plain_cond_loop", EXAMPLES / "trace_cond_loop.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    expected_out = np.asarray(mod.main())
    from jaxdoctor.trace.capture import Capture
    from jaxdoctor.trace.protocol import Session
    from jaxdoctor.trace.retrace import RetraceLog

    cap = Capture(Session(), RetraceLog())
    cap.install()
    try:
        got = np.asarray(mod.main())
    finally:
        cap.uninstall()
    np.testing.assert_array_equal(got, expected_out)
    assert cap.captured == 1
    assert jnp.ones(2).sum() == 2  # jax works normally after uninstalling


EXAMPLE_PROGRAMS = sorted(p.name for p in EXAMPLES.glob("trace_*.py"))


@pytest.mark.parametrize("name", EXAMPLE_PROGRAMS)
def test_examples_reported_at_marked_lines(name):
    path = EXAMPLES / name
    assert located(run_in_process(path), path) == marks(path)


def _write(tmp_path, name, body):
    import textwrap

    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return path


def test_carry_mismatch_message_keeps_the_component_and_types(tmp_path):
    # JAX's first line only announces the difference ("... but they differ:"); the types follow.
    path = _write(tmp_path, "carry_dtype.py", """\
        import jax
        import jax.numpy as jnp


        def main():
            def body(i, acc):
                return acc + 0.5 * i

            return jax.lax.fori_loop(0, 10, body, jnp.zeros(3, jnp.int32))  # JD107
        """)
    findings = run_in_process(path)
    assert located(findings, path) == marks(path)
    (f,) = findings
    assert "int32[3]" in f["message"] and "float32[3]" in f["message"]
    assert "float32[3]" in f["details"]["error"]


def test_equinox_module_through_raw_jit_is_jd302(tmp_path):
    path = _write(tmp_path, "eqx_raw_jit.py", """\
        import equinox as eqx
        import jax
        import jax.numpy as jnp


        def main():
            model = eqx.nn.MLP(3, 1, 8, 2, key=jax.random.key(0))

            @jax.jit
            def fwd(model, x):
                return model(x)

            return fwd(model, jnp.ones(3))  # JD302
        """)
    findings = run_in_process(path)
    assert located(findings, path) == marks(path)
    assert "filter_jit" in findings[0]["fix_title"]


def test_non_module_argument_through_raw_jit_stays_generic(tmp_path):
    path = _write(tmp_path, "fn_raw_jit.py", """\
        import jax
        import jax.numpy as jnp


        def main():
            @jax.jit
            def apply(f, x):
                return f(x)

            return apply(jnp.tanh, jnp.ones(3))  # JD511
        """)
    assert located(run_in_process(path), path) == marks(path)


def test_equinox_module_through_raw_grad_is_jd302(tmp_path):
    path = _write(tmp_path, "eqx_raw_grad.py", """\
        import equinox as eqx
        import jax
        import jax.numpy as jnp


        def main():
            model = eqx.nn.MLP(3, 1, 8, 2, key=jax.random.key(0))

            def loss(model, x):
                return model(x).sum()

            return jax.grad(loss)(model, jnp.ones(3))  # JD302
        """)
    assert located(run_in_process(path), path) == marks(path)
