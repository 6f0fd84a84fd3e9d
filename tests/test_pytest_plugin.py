"""`pytest --jaxdoctor`: the plugin, loaded through its real `pytest11` entry point, run by
pytest's own `pytester` in a subprocess on real jax."""

from __future__ import annotations

import pytest

TESTS = '''
import jax
import jax.numpy as jnp


def noise(key):
    a = jax.random.normal(key, (3,))
    b = jax.random.uniform(key, (3,))
    return a + b


def test_key_reuse():
    assert jax.jit(noise)(jax.random.key(0)).shape == (3,)


def test_clean():
    assert float(jax.jit(lambda x: x * 2)(jnp.ones(3)).sum()) == 6.0


def test_python_if_on_a_tracer():
    @jax.jit
    def f(x):
        if x > 0:
            return x
        return -x
    f(jnp.float32(1.0))
'''


def test_findings_are_reported_per_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_model=TESTS)
    result = pytester.runpytest_subprocess("--jaxdoctor", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=1)  # the doctor does not change what the tests do
    out = result.stdout.str()
    summary = out.split("= jaxdoctor =")[1]
    lines = summary.splitlines()
    reuse = lines.index("test_model.py::test_key_reuse:")
    assert lines[reuse + 1].startswith("  test_model.py:7:9: JD503 [traced-prng-key-reuse]")
    assert "test_model.py::test_clean:" not in summary
    # a JAX trace error that fails a test is explained at the user's line
    failed = lines.index("test_model.py::test_python_if_on_a_tracer:")
    assert lines[failed + 1].startswith("  test_model.py:22:12: JD101 ")
    assert "jaxdoctor: 2 findings in 2 tests" in summary


def test_strict_fails_the_run_and_ignore_drops_codes(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_model=TESTS)
    result = pytester.runpytest_subprocess("--jaxdoctor-strict", "-p", "no:cacheprovider", "-k", "key_reuse or clean")
    result.assert_outcomes(passed=2)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert "(--jaxdoctor-strict: the run fails)" in result.stdout.str()
    result = pytester.runpytest_subprocess("--jaxdoctor-strict", "--jaxdoctor-ignore", "JD503", "-p",
                                           "no:cacheprovider", "-k", "key_reuse or clean")
    assert result.ret == pytest.ExitCode.OK
    assert "jaxdoctor: no findings" in result.stdout.str()


def test_without_the_flag_the_plugin_is_loaded_and_costs_nothing(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_plain='''
        import sys


        def test_no_jax(pytestconfig):
            assert pytestconfig.pluginmanager.has_plugin("jaxdoctor")  # the pytest11 entry point
            assert not pytestconfig.pluginmanager.has_plugin("jaxdoctor-doctor")
            assert "jax" not in sys.modules
            assert not [m for m in sys.modules if m.startswith("jaxdoctor.") and m != "jaxdoctor.trace.pytest_plugin"
                        and m != "jaxdoctor.trace"]
    ''')
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert "= jaxdoctor =" not in result.stdout.str()
