"""JD401/JD402: the deprecation table, target versions (config, pins, default) and fixes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from jaxdoctor.config import Settings
from jaxdoctor.findings import Applicability
from jaxdoctor.rules.api import load_table
from jaxdoctor.static.engine import lint_source, static_rules
from jaxdoctor.static.options import pinned_version, run_options, version_key

RULES = static_rules({"JD401", "JD402"})


def lint(source: str, **options: str):
    opts = {f"target-{k}-version": v for k, v in options.items()}
    return lint_source(textwrap.dedent(source), "t.py", RULES, opts).findings


def apply_fixes(source: str, findings, unsafe: bool = False) -> str:
    """Apply the findings' edits (bottom-up), as --fix does."""
    lines = source.splitlines(keepends=True)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))
    edits = [e for f in findings if f.fix and (unsafe or f.fix.applicability is Applicability.SAFE)
             for e in f.fix.edits]
    for e in sorted(edits, key=lambda e: (e.line, e.column), reverse=True):
        start = offsets[e.line - 1] + e.column - 1
        end = offsets[e.end_line - 1] + e.end_column - 1
        source = source[:start] + e.content + source[end:]
    return source


def test_table_is_well_formed_and_cheap():
    table = load_table()
    assert load_table() is table  # read once per process
    assert len(table.entries) >= 40
    for symbol, entry in table.entries.items():
        assert symbol.split(".")[0] in ("jax", "flax", "equinox", "optax"), symbol
        assert entry.package == {"equinox": "equinox"}.get(symbol.split(".")[0], symbol.split(".")[0])
        if entry.deprecated and entry.removed:
            assert version_key(entry.deprecated) < version_key(entry.removed), symbol
    # jax.tree_util.* is the long-term home of the tree functions: never in the table
    # (build_tree was removed outright, with no jax.tree_util successor)
    assert not [s for s in table.entries if s.startswith("jax.tree_util.")
                and s not in ("jax.tree_util.tree_multimap", "jax.tree_util.build_tree")]
    assert "jax.tree.map" not in table.entries


def test_lint_never_imports_jax():
    code = ("import sys; from jaxdoctor.rules.api import load_table; load_table(); "
            "import jaxdoctor.static.options; print('jax' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize(
    "target, expect",
    [
        ("0.4.20", set()),  # before jax.tree_map was deprecated (0.4.26)
        ("0.4.26", {"JD402"}),
        ("0.5.3", {"JD402"}),
        ("0.6.0", {"JD401"}),
        (None, {"JD401"}),  # default: the newest release in the table
    ],
)
def test_tree_map_judged_against_target(target, expect):
    opts = {"jax": target} if target else {}
    found = lint("import jax\ny = jax.tree_map(abs, [1])\n", **opts)
    assert {f.code for f in found} == expect


def test_old_target_gets_a_replacement_that_exists_then():
    # jax.tree_leaves is deprecated since 0.3.15, but jax.tree only exists from 0.4.25
    src = "import jax\nn = len(jax.tree_leaves({}))\n"
    (old,) = lint(src, jax="0.4.20")
    assert old.code == "JD402" and "jax.tree_util.tree_leaves" in old.message
    assert apply_fixes(src, [old]) == "import jax\nn = len(jax.tree_util.tree_leaves({}))\n"
    (new,) = lint(src, jax="0.4.30")
    assert apply_fixes(src, [new]) == "import jax\nn = len(jax.tree.leaves({}))\n"


def test_pins_and_config_give_the_target():
    assert pinned_version("jax==0.4.20") == ("jax", "0.4.20")
    assert pinned_version("jax[cuda12]>=0.4.30,<0.5") == ("jax", "0.4.30")
    assert pinned_version("flax ~= 0.8.0 ; python_version > '3.9'") == ("flax", "0.8.0")
    assert pinned_version("jax") is None
    s = Settings(dependencies=["jax>=0.4.30", "numpy>=2", "flax==0.10.0"])
    assert run_options(s) == {"target-flax-version": "0.10.0", "target-jax-version": "0.4.30"}
    s.target_versions = {"jax": "0.6.1"}  # config wins over the pin
    assert run_options(s)["target-jax-version"] == "0.6.1"


def test_pinned_project_through_the_cli(tmp_path: Path):
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "p"\ndependencies = ["jax>=0.4.30"]\n\n[tool.jaxdoctor]\nselect = ["JD4"]\n'
    )
    (tmp_path / "m.py").write_text("import jax\ny = jax.tree_map(abs, [1])\n")
    out = subprocess.run([sys.executable, "-m", "jaxdoctor", "lint", "m.py", "--format", "concise"],
                         cwd=tmp_path, capture_output=True, text=True)
    assert "JD402" in out.stdout and "JD401" not in out.stdout, out.stdout + out.stderr


def test_fixes_are_idempotent_and_respell_with_the_files_imports():
    src = textwrap.dedent("""\
        import equinox as eqx
        import jax
        import jax.numpy as jnp
        from jax import tree_map as tm


        class M(eqx.Module):
            a: int = eqx.static_field()
            b: int = eqx.static_field(default=2)


        def f(x, i):
            y = jnp.row_stack([x, x])
            z = jax.ops.index_update(x, i, 0.0)
            return tm(abs, jax.tree_leaves(y)), z
        """)
    found = lint(src)
    fixed = apply_fixes(src, found)
    assert "eqx.field(static=True)" in fixed and "eqx.field(static=True, default=2)" in fixed
    assert "jnp.vstack([x, x])" in fixed and "x.at[i].set(0.0)" in fixed
    assert "from jax.tree_util import tree_map as tm" in fixed and "jax.tree.leaves(y)" in fixed
    compile(fixed, "fixed.py", "exec")
    assert lint(fixed) == []


def test_no_fix_without_a_spelling_or_for_several_imported_names():
    # `jax.lax.zeros_like_array` → jax.numpy.zeros_like, but the file never imports jax.numpy
    found = lint("import jax.lax as lax\nz = lax.zeros_like_array(1)\nfrom jax import jit, tree_map\n")
    assert [f.code for f in found] == ["JD401", "JD401"]
    assert all(f.fix is None for f in found)


def test_unsafe_entries_need_unsafe_fixes():
    src = "import jax\nfrom jax.experimental import pjit\nf = pjit.pjit(abs)\n"
    (finding,) = lint(src)
    assert finding.fix is not None and finding.fix.applicability is Applicability.UNSAFE
    assert apply_fixes(src, [finding]) == src
    assert lint(src, jax="0.7.2") == []  # not deprecated yet


def test_acceptance_fix_rewrites_inplace_update_and_tree_map(tmp_path: Path):
    path = tmp_path / "step.py"
    path.write_text(textwrap.dedent("""\
        import jax
        import jax.numpy as jnp


        @jax.jit
        def step(params, x, i):
            x[i] = 0.0
            return jax.tree_map(lambda p: p * 2, params), x
        """))
    run = [sys.executable, "-m", "jaxdoctor", "lint", str(path), "--isolated"]
    before = path.read_text()
    subprocess.run(run + ["--diff"], capture_output=True, text=True)
    assert path.read_text() == before
    subprocess.run(run + ["--fix"], capture_output=True, text=True)
    fixed = path.read_text()
    assert "x = x.at[i].set(0.0)" in fixed and "jax.tree.map(" in fixed, fixed
    compile(fixed, str(path), "exec")
    subprocess.run(run + ["--fix"], capture_output=True, text=True)
    assert path.read_text() == fixed


# ------------------------------------------------------------------ JD403 legacy-api
LEGACY = static_rules({"JD401", "JD402", "JD403"})


def lint_legacy(source: str, **options: str):
    opts = {f"target-{k}-version": v for k, v in options.items()}
    return lint_source(textwrap.dedent(source), "t.py", LEGACY, opts).findings


def test_prngkey_is_legacy_opt_in_with_an_unsafe_fix():
    from jaxdoctor import registry

    rule = registry.all_rules()["JD403"]
    assert not rule.default_enabled and rule.severity.value == "info"
    src = "import jax\nkey = jax.random.PRNGKey(0)\n"
    assert lint(src) == []  # not a JD401/JD402 matter
    (finding,) = lint_legacy(src)
    assert finding.code == "JD403" and "jax.random.key" in finding.message
    assert finding.fix is not None and finding.fix.applicability is Applicability.UNSAFE
    assert apply_fixes(src, [finding]) == src  # never under plain --fix
    assert apply_fixes(src, [finding], unsafe=True) == "import jax\nkey = jax.random.key(0)\n"
    assert lint_legacy(src, jax="0.4.25") == []  # before jax's docs switched to jax.random.key


def test_legacy_import_is_reported_once_without_a_rewrite_of_the_import():
    found = lint_legacy("from jax.random import PRNGKey\nk = PRNGKey(0)\nk2 = PRNGKey(1)\n")
    assert [(f.code, f.line) for f in found] == [("JD403", 1)]
    assert found[0].fix is None


def test_new_entries_are_judged_against_the_target():
    src = "import jax.numpy as jnp\ny = jnp.fix(x)\n"
    assert [f.code for f in lint(src)] == ["JD401"]
    assert [f.code for f in lint(src, jax="0.9.2")] == ["JD402"]
    assert lint(src, jax="0.8.2") == []
    fixed = apply_fixes(src, lint(src))
    assert fixed == "import jax.numpy as jnp\ny = jnp.trunc(x)\n"
    # only one-argument calls are rewritten (`out=` has no `trunc` equivalent)
    (f,) = lint("import jax.numpy as jnp\ny = jnp.fix(x, out=None)\n")
    assert f.fix is None


def test_removed_module_is_reported_at_the_import_not_per_use():
    found = lint("from jax.lib import xla_bridge\np = xla_bridge.get_backend().platform\n")
    assert [(f.code, f.line) for f in found] == [("JD401", 1)]
    found = lint("import jax\np = jax.lib.xla_bridge.get_backend().platform\n")
    assert [(f.code, f.line) for f in found] == [("JD401", 2)]
    assert "jax.default_backend()" in found[0].message
    # the surviving names of a module with removed members are not reported
    assert lint("import jax.ad_checkpoint\ny = jax.ad_checkpoint.checkpoint_name(x, 'a')\n") == []
