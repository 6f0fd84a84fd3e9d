"""What the project around a file says about its code: 64-bit mode switched on for a whole test
suite by a `conftest.py` (or `JAX_ENABLE_X64` in the pytest configuration) above the file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

WIDE = "import jax.numpy as jnp\n\n\ndef test_f64():\n    return jnp.zeros(3, dtype=jnp.float64)\n"


def _codes(root: Path, *paths: str) -> list[str]:
    proc = subprocess.run([sys.executable, "-m", "jaxdoctor", "lint", "--isolated", "--no-cache", "--format",
                           "json", *paths], cwd=root, capture_output=True, text=True)
    assert proc.returncode in (0, 1), proc.stderr
    return [f["code"] for f in json.loads(proc.stdout)]


def test_conftest_above_turns_x64_on(tmp_path: Path):
    (tmp_path / ".git").mkdir()  # the repository root: the search stops here
    tests = tmp_path / "tests" / "unit"
    tests.mkdir(parents=True)
    (tests / "test_a.py").write_text(WIDE)
    assert _codes(tmp_path, "tests") == ["JD125"]
    (tmp_path / "tests" / "conftest.py").write_text(
        'import jax\n\njax.config.update("jax_enable_x64", True)\n')
    assert _codes(tmp_path, "tests") == []


def test_pytest_configuration_env_turns_x64_on(tmp_path: Path):
    (tmp_path / ".git").mkdir()
    (tmp_path / "test_a.py").write_text(WIDE)
    (tmp_path / "pytest.ini").write_text("[pytest]\nenv =\n    JAX_ENABLE_X64=1\n")
    assert _codes(tmp_path, "test_a.py") == []


def test_conftest_outside_the_repository_does_not_count(tmp_path: Path):
    (tmp_path / "conftest.py").write_text('import jax\njax.config.update("jax_enable_x64", True)\n')
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "test_a.py").write_text(WIDE)
    assert _codes(repo, "test_a.py") == ["JD125"]


def test_conftest_that_switches_x64_off_does_not_count(tmp_path: Path):
    (tmp_path / ".git").mkdir()
    (tmp_path / "test_a.py").write_text(WIDE)
    (tmp_path / "conftest.py").write_text('import jax\njax.config.update("jax_enable_x64", False)\n')
    assert _codes(tmp_path, "test_a.py") == ["JD125"]
