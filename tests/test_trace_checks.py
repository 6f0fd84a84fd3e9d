"""JAX's runtime checks under the doctor (`jaxdoctor.trace.checks`) and the leak checker of
`--inputs` mode, on real programs in this process: the findings sit at the user's line, the
program computes exactly what it computes without the doctor, and every hook is gone after the
run. (The bad/clean programs of each check are in tests/fixtures/trace/, run by
test_trace_programs.py; those that need `--inputs` are in tests/fixtures/trace/inputs/.)"""

from __future__ import annotations

import builtins
import textwrap
import warnings

import pytest
from trace_support import FIXTURES, located, marks, run_in_process

INPUTS = FIXTURES / "inputs"
BAD = sorted(p.name for p in INPUTS.glob("bad_*.py"))
CLEAN = sorted(p.name for p in INPUTS.glob("clean_*.py"))


@pytest.mark.parametrize("name", BAD)
def test_inputs_mode_leak_reported_at_marked_line(name):
    path = INPUTS / name
    want = marks(path)
    assert want
    assert located(run_in_process(path, "forward"), path) == want


@pytest.mark.parametrize("name", CLEAN)
def test_inputs_mode_clean_is_silent(name):
    assert run_in_process(INPUTS / name, "forward") == []


def _write(tmp_path, name, body):
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return path


def _load(path):
    import importlib.util

    spec = importlib.util.spec_from_file_location(path.stem, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_checks_change_no_result_and_leave_nothing_behind(tmp_path):
    """With every check installed, a training loop (NaN-free) and a NaN-making function give the
    very values they give without the doctor; afterwards JAX and Python are as they were."""
    import jax
    import numpy as np
    from jax._src import api as _api
    from jax._src import pjit as _pjit
    from jax._src.random import core as _rcore

    path = _write(tmp_path, "train.py", """\
        import jax
        import jax.numpy as jnp


        @jax.jit
        def step(w, x):
            loss, g = jax.value_and_grad(lambda w: jnp.mean((x @ w) ** 2))(w)
            return w - 0.1 * g, loss


        @jax.jit
        def bad(x):
            return jnp.where(x > 0, jnp.sqrt(x), 0.0).sum(), jax.grad(lambda v: jnp.where(v > 0, jnp.sqrt(v), 0.0).sum())(x)


        def main():
            w = jnp.ones(3)
            x = jax.random.normal(jax.random.key(0), (8, 3))
            losses = []
            for _ in range(5):
                w, loss = step(w, x)
                losses.append(loss)
            return w, jnp.stack(losses), bad(jnp.array([1.0, 0.0]))
        """)
    mod = _load(path)
    plain = jax.tree.map(np.asarray, mod.main())
    before = (_api._post_hook_state.get_global(), _pjit._run_python_pjit, _rcore._check_prng_key,
              builtins.print, warnings.warn)

    from jaxdoctor.trace import checks
    from jaxdoctor.trace.capture import Capture
    from jaxdoctor.trace.protocol import Session
    from jaxdoctor.trace.retrace import RetraceLog

    jax.clear_caches()  # as in a fresh process: the doctor sees every trace
    session = Session()
    capture = Capture(session, RetraceLog())
    capture.install()
    uninstall = checks.install(session, capture)
    try:
        doctored = jax.tree.map(np.asarray, mod.main())
    finally:
        uninstall()
        capture.uninstall()
    for a, b in zip(jax.tree.leaves(plain), jax.tree.leaves(doctored)):
        np.testing.assert_array_equal(a, b)
    assert [(f["code"], f["line"]) for f in session.findings] == [("JD124", 13)]
    after = (_api._post_hook_state.get_global(), _pjit._run_python_pjit, _rcore._check_prng_key,
             builtins.print, warnings.warn)
    assert after == before


def test_the_programs_own_debug_nans_is_explained(tmp_path):
    """A program that turns `jax_debug_nans` on itself gets JAX's FloatingPointError, explained."""
    path = _write(tmp_path, "own_nans.py", """\
        import jax
        import jax.numpy as jnp


        def main():
            jax.config.update("jax_debug_nans", True)
            try:
                return jnp.log(jnp.array([-1.0]))  # JD520
            finally:
                jax.config.update("jax_debug_nans", False)
        """)
    assert located(run_in_process(path), path) == marks(path)


def test_checks_can_be_turned_off_per_job():
    path = FIXTURES / "bad_print_in_jit.py"
    assert run_in_process(path, checks=False) == []
    assert located(run_in_process(path), path) == marks(path)
