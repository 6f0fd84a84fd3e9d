"""JD002 unused-suppression: suppressions that silence nothing, or name codes that don't exist."""

from __future__ import annotations

import json
import textwrap

from jaxdoctor import registry
from jaxdoctor.static.engine import lint_source, static_rules
from jaxdoctor.static.fixes import fix_source

ALL_RULES = static_rules(registry.all_rules())


def lint(src: str, rules=ALL_RULES):
    return lint_source(textwrap.dedent(src), "m.py", rules).findings


def codes(src: str, rules=ALL_RULES):
    return [(f.line, f.code) for f in lint(src, rules)]


USED = """\
    import jax


    @jax.jit
    def f(x):
        if x > 0:  # noqa: JD101
            return x
        return -x  # jaxdoctor: ignore[JD101]
    """


def test_a_suppression_that_silences_a_finding_is_not_reported_and_one_that_does_not_is():
    assert codes(USED) == [(8, "JD002")]
    (f,) = lint(USED)
    assert f.message == "`# jaxdoctor: ignore[JD101]` suppresses nothing: no `JD101` finding on this line"
    assert (f.column, f.end_column) == (16, 42)
    assert f.fix is not None and f.fix.applicability.value == "safe"


def test_unknown_codes_bare_directives_and_other_tools():
    src = """\
        import jax
        a = 1  # noqa: JD1011
        b = 2  # jaxdoctor: ignore
        c = 3  # noqa
        d = 4  # noqa: E501
        e = 5  # noqa: JD501
        s = "x  # jaxdoctor: ignore[JD101]"
        t = '''
        # noqa: JD101
        '''
        """
    found = lint(src)
    assert [(f.line, f.code) for f in found] == [(2, "JD002"), (3, "JD002")]
    assert "unknown rule code `JD1011`" in found[0].message
    assert "suppresses nothing: no finding on this line" in found[1].message


def test_codes_not_enabled_are_not_judged():
    src = "import jax\nx = 1  # noqa: JD101\n"
    only = [r for r in ALL_RULES if r.code in ("JD002", "JD104")]
    assert codes(src, only) == []
    assert codes(src) == [(2, "JD002")]
    without = [r for r in ALL_RULES if r.code != "JD002"]
    assert codes(src, without) == []


def test_jd002_in_a_directive_keeps_it():
    assert codes("import jax\nx = 1  # noqa: JD101, JD002\n") == []


def test_fix_removes_only_the_unused_codes_and_keeps_other_comments():
    src = textwrap.dedent("""\
        import jax


        @jax.jit
        def f(x):
            if x > 0:  # noqa: JD101, JD102
                return x  # jaxdoctor: ignore[JD101]  # why: kept
            y = x  # type: ignore  # noqa: E501, JD110
            return -x  # jaxdoctor: ignore
        """)
    fixed = fix_source(src, "m.py", ALL_RULES).source
    assert fixed == textwrap.dedent("""\
        import jax


        @jax.jit
        def f(x):
            if x > 0:  # noqa: JD101
                return x  # why: kept
            y = x  # type: ignore  # noqa: E501
            return -x
        """)
    assert codes(fixed) == []


def test_files_without_jax_are_judged_too():
    # nothing is checked in a file that never mentions JAX, so its suppressions suppress nothing
    assert codes("x = 1  # noqa: JD101\n") == [(1, "JD002")]


def test_notebook_cells(tmp_path):
    from jaxdoctor.static.notebook import lint_notebook_text

    nb = {"cells": [{"cell_type": "code", "source": "import jax\n", "metadata": {}, "outputs": []},
                    {"cell_type": "code", "source": "y = 1  # noqa: JD101\n", "metadata": {}, "outputs": []}],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    result = lint_notebook_text(json.dumps(nb), "n.ipynb", ALL_RULES, frozenset(r.code for r in ALL_RULES))
    (f,) = result.findings
    assert (f.code, f.cell, f.line, f.column) == ("JD002", 2, 1, 8)
    assert f.fix is not None and f.fix.edits[0].line == 1
