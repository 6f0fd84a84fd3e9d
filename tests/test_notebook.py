"""Notebooks: code cells linted as one program, IPython syntax blanked, findings per cell,
`--fix` keeping everything but the changed cells' source."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_support import jaxdoctor

from jaxdoctor import registry
from jaxdoctor.findings import Edit
from jaxdoctor.notebook import blank_ipython, file_positions
from jaxdoctor.static.engine import static_rules
from jaxdoctor.static.notebook import apply_cell_edits, lint_notebook_text

TRACED_IF = "@jax.jit\ndef f(x):\n    if x > 0:\n        return x\n    return -x\n"


def code_cell(source: str, count: int | None = None, outputs: list | None = None) -> dict:
    return {
        "cell_type": "code",
        "execution_count": count,
        "metadata": {},
        "outputs": outputs or [],
        "source": source.splitlines(keepends=True),
    }


def markdown_cell(source: str) -> dict:
    return {"cell_type": "markdown", "metadata": {}, "source": source.splitlines(keepends=True)}


def notebook(cells: list[dict], language: str = "python") -> dict:
    return {
        "cells": cells,
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": language, "name": "python3"},
            "language_info": {"name": language},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def jupyter_text(nb: dict) -> str:
    """What Jupyter writes (nbformat.writes): indent 1, sorted keys, non-ASCII kept, final newline."""
    return json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def write_notebook(path: Path, cells: list[dict], **kw) -> Path:
    path.write_text(jupyter_text(notebook(cells, **kw)), encoding="utf-8")
    return path


def lint(text: str, codes=None):
    codes = frozenset(codes or registry.select())
    return lint_notebook_text(text, "nb.ipynb", static_rules(codes), codes).findings


# ------------------------------------------------------------------------ linting


def test_traced_if_in_second_code_cell_is_flagged_in_that_cell(tmp_path):
    """The issue's acceptance check, through the CLI."""
    write_notebook(tmp_path / "demo.ipynb", [
        markdown_cell("# A notebook\n"),
        code_cell("import jax\nimport jax.numpy as jnp\n", 1),
        markdown_cell("Now a jitted function:\n"),
        code_cell(TRACED_IF, 2),
    ])
    proc = jaxdoctor("lint", "--isolated", "--format", "json", "demo.ipynb", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    (f,) = json.loads(proc.stdout)
    assert (f["code"], f["cell"], f["line"], f["column"], f["end_column"]) == ("JD101", 2, 3, 8, 13)
    assert f["path"] == "demo.ipynb"

    proc = jaxdoctor("lint", "--isolated", "demo.ipynb", cwd=tmp_path)
    assert "demo.ipynb:cell 2:3:8: JD101" in proc.stdout
    assert "3 |     if x > 0:" in proc.stdout  # the cell's own line, not line 3 of the JSON file
    assert "^^^^^" in proc.stdout


def test_code_cell_number_not_execution_count():
    text = jupyter_text(notebook([code_cell("import jax\n", 7), markdown_cell("x"), code_cell(TRACED_IF, 3)]))
    (f,) = lint(text)
    assert f.cell == 2


def test_imports_in_cell_1_resolve_in_cell_3():
    text = jupyter_text(notebook([
        code_cell("from jax import jit as J\n"),
        code_cell("x = 1\n"),
        code_cell("@J\ndef g(y):\n    while y < 3:\n        y = y + 1\n    return y\n"),
    ]))
    (f,) = lint(text)
    assert (f.code, f.cell, f.line) == ("JD101", 3, 3)


def test_no_jax_no_findings_and_no_import_means_no_tracing():
    text = jupyter_text(notebook([code_cell("def f(x):\n    if x > 0:\n        return x\n")]))
    assert lint(text) == []


@pytest.mark.parametrize("magic", [
    "%timeit f(1)",
    "%matplotlib inline",
    "!pip install -q jax",
    "?jax.jit",
    "jax.jit?",
    "jnp.where??",
    "files = !ls",
    "t = %timeit -o f(1)",
    "%time out = f(1) \\\n    + 1",
])
def test_magics_are_blanked_keeping_line_numbers(magic):
    text = jupyter_text(notebook([code_cell("import jax\n" + magic + "\n" + TRACED_IF)]))
    (f,) = lint(text)
    assert (f.code, f.cell, f.line) == ("JD101", 1, 2 + magic.count("\n") + 3)


def test_cell_magics():
    python_body = "%%time\n" + TRACED_IF
    other = "%%bash\nif [ -f x ]; then echo hi; fi\n"
    writefile = "%%writefile mod.py\ndef broken(:\n"
    text = jupyter_text(notebook([code_cell("import jax\n"), code_cell(python_body), code_cell(other),
                                  code_cell(writefile)]))
    findings = lint(text)
    assert [(f.code, f.cell, f.line) for f in findings] == [("JD101", 2, 4)]


def test_blanking_respects_strings_brackets_and_blocks():
    source = (
        "s = '''\n"
        "%d items\n"  # inside a string: not a magic
        "'''\n"
        "y = (10\n"
        "     % 3)\n"  # a continuation line: the modulo operator
        "for i in range(3):\n"
        "    %time f(i)\n"  # a magic inside a block: becomes `pass`, the block stays valid
        "z = 1  # what?\n"  # a comment ending in ? is not help
    )
    python, skipped = blank_ipython(source)
    lines = python.splitlines()
    assert not skipped
    assert lines[1] == "%d items" and lines[4] == "     % 3)"
    assert lines[6] == "    pass"
    assert lines[7] == "z = 1  # what?"
    assert len(lines) == source.count("\n")


def test_syntax_error_cell_is_jd001_and_other_cells_are_linted():
    text = jupyter_text(notebook([
        code_cell("import jax\n"),
        code_cell("def broken(:\n    pass\n"),
        code_cell(TRACED_IF),
    ]))
    findings = lint(text)
    assert [(f.code, f.cell) for f in findings] == [("JD001", 2), ("JD101", 3)]
    assert findings[0].message.startswith("syntax error")
    assert findings[1].line == 3


@pytest.mark.parametrize("content, reason", [
    ("{not json", "invalid JSON"),
    ("[1, 2]", "not a Jupyter notebook"),
    ('{"metadata": {}}', "no `cells`"),
    ('{"cells": [{"cell_type": "code", "source": 3}]}', "source"),
])
def test_not_a_notebook_is_jd001_for_the_file(tmp_path, content, reason):
    (tmp_path / "x.ipynb").write_text(content)
    (tmp_path / "ok.py").write_text("import jax\n" + TRACED_IF)
    proc = jaxdoctor("lint", "--isolated", "--format", "json", ".", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    found = json.loads(proc.stdout)
    bad = [f for f in found if f["path"] == "x.ipynb"]
    assert [(f["code"], f["cell"]) for f in bad] == [("JD001", None)]
    assert reason in bad[0]["message"]
    assert any(f["path"] == "ok.py" and f["code"] == "JD101" for f in found)  # the run went on


def test_non_python_kernel_is_skipped():
    text = jupyter_text(notebook([code_cell("import jax\n" + TRACED_IF)], language="R"))
    assert lint(text) == []


def test_suppression_comment_in_a_cell():
    text = jupyter_text(notebook([code_cell("import jax\n"),
                                  code_cell(TRACED_IF.replace("if x > 0:", "if x > 0:  # noqa: JD101"))]))
    assert lint(text) == []


def test_string_sources_and_the_quoted_cell_line():
    nb = notebook([code_cell("import jax\n"), code_cell("")])
    nb["cells"][1]["source"] = TRACED_IF  # nbformat also allows one string
    text = jupyter_text(nb)
    (f,) = lint(text)
    assert (f.cell, f.line) == (2, 3)
    assert f.quote.text == "    if x > 0:"  # the renderers quote this; they never read the file
    start, end = f.quote.file_start, f.quote.file_end
    assert text.splitlines()[start[0] - 1][start[1] - 1:end[1] - 1] == "x > 0"


def test_file_positions_map_cell_lines_into_the_json(tmp_path):
    cells = [code_cell("import jax\n"), code_cell('s = "é\\tü"\n' + TRACED_IF)]
    for name, nb in (("list.ipynb", notebook(cells)), ("str.ipynb", notebook([dict(c) for c in cells]))):
        if name == "str.ipynb":
            for c in nb["cells"]:
                c["source"] = "".join(c["source"])
        for ensure_ascii in (True, False):
            path = tmp_path / name
            path.write_text(json.dumps(nb, indent=1, ensure_ascii=ensure_ascii) + "\n", encoding="utf-8")
            position = file_positions(path.read_text(encoding="utf-8"))
            line, col = position(2, 4, 8)
            end_line, end_col = position(2, 4, 13)
            assert end_line == line
            assert path.read_text(encoding="utf-8").splitlines()[line - 1][col - 1:end_col - 1] == "x > 0"
            assert position(9, 1, 1) is None
    assert file_positions("[1, 2]") is None  # not a notebook


# ------------------------------------------------------------------------ fixing


def test_apply_cell_edits_changes_only_that_cells_source():
    outputs = [{"output_type": "stream", "name": "stdout", "text": ["é ✓\n"]}]
    nb = notebook([markdown_cell("# Títle\n"), code_cell("import jax\n", 1, outputs),
                   code_cell("x = 1\ny = 2\n", 2)])
    nb["cells"][2]["metadata"] = {"tags": ["keep"], "scrolled": True}
    text = jupyter_text(nb)
    new = apply_cell_edits(text, {2: [Edit(2, 5, 2, 6, "3")]})
    assert json.loads(new)["cells"][2]["source"] == ["x = 1\n", "y = 3\n"]
    old_lines, new_lines = text.splitlines(), new.splitlines()
    assert len(old_lines) == len(new_lines)
    assert [(a, b) for a, b in zip(old_lines, new_lines) if a != b] == [('    "y = 2\\n"', '    "y = 3\\n"')]
    assert new.endswith("}\n")
    assert apply_cell_edits(text, {}) == text


def test_apply_cell_edits_keeps_another_layout():
    nb = notebook([code_cell("x = 1\n")])
    text = json.dumps(nb, indent=2)  # not sorted, ASCII-escaped, no final newline
    new = apply_cell_edits(text, {1: [Edit(1, 5, 1, 6, "2")]})
    assert new == text.replace('"x = 1\\n"', '"x = 2\\n"')


def test_apply_cell_edits_refuses_to_break_a_cell():
    text = jupyter_text(notebook([code_cell("x = 1\n")]))
    with pytest.raises(ValueError, match="break cell 1"):
        apply_cell_edits(text, {1: [Edit(1, 1, 1, 2, "(")]})


INPLACE = "@jax.jit\ndef f(x):\n    x[0] = 1.0\n    return x\n"


def test_fix_and_diff_on_a_notebook(tmp_path):
    outputs = [{"output_type": "execute_result", "execution_count": 2, "metadata": {},
                "data": {"text/plain": ["Array([1., 0.], dtype=float32)"]}}]
    nb = notebook([markdown_cell("# Fïx me\n"), code_cell("import jax\n%load_ext autoreload\n", 1),
                   code_cell(INPLACE, 2, outputs), code_cell("%timeit f(x)\n", 5)])
    nb["metadata"]["widgets"] = {"state": {}}
    path = tmp_path / "fix.ipynb"
    path.write_text(jupyter_text(nb), encoding="utf-8")
    original = path.read_bytes()

    proc = jaxdoctor("lint", "--isolated", "--diff", "fix.ipynb", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert '-    "    x[0] = 1.0\\n",' in proc.stdout and '+    "    x = x.at[0].set(1.0)\\n",' in proc.stdout
    assert path.read_bytes() == original  # --diff writes nothing

    proc = jaxdoctor("lint", "--isolated", "--fix", "fix.ipynb", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    fixed = json.loads(path.read_text(encoding="utf-8"))
    assert fixed["cells"][2]["source"] == ["@jax.jit\n", "def f(x):\n", "    x = x.at[0].set(1.0)\n", "    return x\n"]
    expected = json.loads(original)
    expected["cells"][2]["source"] = fixed["cells"][2]["source"]
    assert fixed == expected  # outputs, metadata, execution counts, nbformat: all kept
    assert path.read_text(encoding="utf-8") == jupyter_text(expected)  # Jupyter's layout kept

    after = path.read_bytes()
    proc = jaxdoctor("lint", "--isolated", "--fix", "fix.ipynb", cwd=tmp_path)
    assert proc.returncode == 0 and path.read_bytes() == after  # a second --fix is a no-op
