"""`jaxdoctor lint` never imports jax (the pre-commit hook's environment does not have it), nor the
language server's pygls/lsprotocol (the optional `server` extra)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_lint_does_not_import_jax(tmp_path: Path) -> None:
    f = tmp_path / "model.py"
    f.write_text("import jax\nimport jax.numpy as jnp\n\n@jax.jit\ndef f(x):\n    if x > 0:\n        return x\n    return jnp.abs(x)\n")
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "jaxdoctor", "lint", "--no-cache", str(f)],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 1, proc.stderr  # it did lint: JD101
    assert "JD101" in proc.stdout
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    assert "libcst" in imported  # the check sees real imports
    leaked = sorted(m for m in imported if m.split(".")[0] in ("jax", "jaxlib", "flax", "equinox", "optax",
                                                                "pygls", "lsprotocol")
                    or m == "jaxdoctor.lsp" or m.startswith("jaxdoctor.lsp."))
    assert not leaked, leaked
