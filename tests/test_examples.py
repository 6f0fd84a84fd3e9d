"""`make demo` lints examples/: every failure-mode example has findings, the clean one none."""

from __future__ import annotations

from pathlib import Path

import pytest

from jaxdoctor import registry
from jaxdoctor.static.engine import lint_source, static_rules

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
EXPECTED = {
    "a_loop_in_cond_under_vmap.py": {"JD105"},
    "b_fori_loop_two_models.py": {"JD107"},
    "c_nnx_vmap_ensemble.py": {"JD210", "JD108"},
    "d_eqx_dropout_under_scan.py": {"JD301"},
    "e_linen_raw_transform.py": {"JD201", "JD202"},
    "clean_training_step.py": set(),
}


def _codes(name: str) -> set[str]:
    source = (EXAMPLES / name).read_text()
    result = lint_source(source, name, static_rules(registry.all_rules()))
    return {f.code for f in result.findings}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_findings(name):
    codes = _codes(name)
    if EXPECTED[name]:
        assert EXPECTED[name] <= codes
    else:
        assert codes == set()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_has_docstring_and_no_import_side_effects(name):
    import ast

    tree = ast.parse((EXAMPLES / name).read_text())
    assert ast.get_docstring(tree), "each example explains its failure mode"
    for stmt in tree.body:
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
            pytest.fail(f"top-level call at line {stmt.lineno}: examples must not run on import")
