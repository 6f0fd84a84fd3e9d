"""`--format github`: one GitHub Actions workflow command per finding, escaped as the Actions
toolkit escapes them."""

from __future__ import annotations

import io
import re
import subprocess
import sys

from cli_support import BAD

from jaxdoctor.findings import Finding, Severity
from jaxdoctor.render import render
from jaxdoctor.render.github import annotation, escape_data, escape_property

COMMAND = re.compile(r"^::(error|warning|notice) ((?:[A-Za-z]+=[^,:]*)(?:,[A-Za-z]+=[^,:]*)*)::(.*)$")


def finding(**kw) -> Finding:
    base = dict(code="JD101", name="python-control-flow-on-tracer", severity=Severity.ERROR,
                message="Python `if` on traced value `x > 0`", path="pkg/model.py", line=6, column=8,
                end_line=6, end_column=13)
    base.update(kw)
    return Finding(**base)


def parse(line: str) -> tuple[str, dict[str, str], str]:
    m = COMMAND.match(line)
    assert m, line
    props = dict(p.split("=", 1) for p in m.group(2).split(","))
    return m.group(1), props, m.group(3)


def unescape(text: str) -> str:
    for code, ch in (("%0D", "\r"), ("%0A", "\n"), ("%3A", ":"), ("%2C", ","), ("%25", "%")):
        text = text.replace(code, ch)
    return text


def test_escaping_follows_the_actions_toolkit():
    assert escape_data("100% done\r\nnext: a, b") == "100%25 done%0D%0Anext: a, b"
    assert escape_property("C:\\a,b%\n") == "C%3A\\a%2Cb%25%0A"
    # `%` first: an already-escaped-looking sequence must not be decoded by GitHub
    assert escape_data("%0A") == "%250A"


def test_severity_commands_and_properties():
    lines = [annotation(finding(severity=s)) for s in (Severity.ERROR, Severity.WARNING, Severity.INFO)]
    assert [parse(l)[0] for l in lines] == ["error", "warning", "notice"]
    _, props, message = parse(lines[0])
    assert props == {"file": "pkg/model.py", "line": "6", "col": "8", "endLine": "6", "endColumn": "13",
                     "title": "JD101 python-control-flow-on-tracer"}
    assert message == "Python `if` on traced value `x > 0`"
    assert list(props)[:5] == ["file", "line", "col", "endLine", "endColumn"]


def test_hostile_paths_and_messages_stay_one_command():
    f = finding(path="a,b:c%d.py", message="line one\nline two: 50%\r", fix_title="Use `jax.lax.cond`, or not")
    out = io.StringIO()
    render("github", [f, finding(severity=Severity.WARNING)], out)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    _, props, message = parse(lines[0])
    assert unescape(props["file"]) == "a,b:c%d.py"
    assert unescape(message) == "line one\nline two: 50%\r\nhelp: Use `jax.lax.cond`, or not"
    assert lines[1].startswith("::warning file=pkg/model.py,line=6,")


def test_cli_github_end_to_end(tmp_path):
    (tmp_path / "model.py").write_text(BAD)
    proc = subprocess.run([sys.executable, "-m", "jaxdoctor", "lint", "--isolated", "--format", "github", "."],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={"NO_COLOR": "1", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert proc.returncode == 1, proc.stderr
    (line,) = proc.stdout.splitlines()
    assert line.startswith("::error file=model.py,line=6,col=8,endLine=6,endColumn=13,"
                           "title=JD101 python-control-flow-on-tracer::Python `if` on traced value `x > 0`")


def test_notebook_annotation_lands_on_the_cell_line_in_the_file(tmp_path):
    from test_notebook import TRACED_IF, code_cell, lint, write_notebook

    nb = write_notebook(tmp_path / "nb.ipynb", [code_cell("import jax\n"), code_cell(TRACED_IF)])
    (f,) = lint(nb.read_text())  # the pass that read the notebook placed it in the file
    assert (f.cell, f.line, f.column, f.end_line, f.end_column) == (2, 3, 8, 3, 13)
    _, props, message = parse(annotation(f))
    assert message.startswith("cell 2, line 3: ")
    line = nb.read_text().splitlines()[int(props["line"]) - 1]
    assert line[int(props["col"]) - 1:int(props["endColumn"]) - 1] == "x > 0"
