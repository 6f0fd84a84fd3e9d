"""Configuration per file, as ruff does it: the nearest `[tool.jaxdoctor]` (or `jaxdoctor.toml`)
above each file, `extend`, command-line target versions, `--show-settings`, `--show-files`,
and the project's pins as default target versions."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from cli_support import BAD, write
from cli_support import jaxdoctor as run

DEPRECATED = "import jax\nn = len(jax.tree_leaves({}))\n"


def codes(proc: subprocess.CompletedProcess) -> list[tuple[str, str]]:
    return sorted((f["path"], f["code"]) for f in json.loads(proc.stdout))


def monorepo(root: Path) -> None:
    write(root / "pyproject.toml", '[tool.jaxdoctor]\nignore = ["JD101"]\n')
    write(root / "a" / "m.py", BAD)
    write(root / "b" / "pyproject.toml", '[project]\nname = "b"\n\n[tool.jaxdoctor]\nselect = ["JD1"]\n')
    write(root / "b" / "m.py", BAD)
    write(root / "c" / "jaxdoctor.toml", 'select = ["JD4"]\n')
    write(root / "c" / "m.py", BAD + DEPRECATED)


def test_each_file_uses_its_nearest_configuration_in_any_order(tmp_path):
    monorepo(tmp_path)
    one = run("lint", "--format", "json", "--no-cache", "a/m.py", "b/m.py", "c/m.py", cwd=tmp_path)
    other = run("lint", "--format", "json", "--no-cache", "c/m.py", "b/m.py", "a/m.py", cwd=tmp_path)
    assert one.returncode == other.returncode == 1, one.stderr
    assert codes(one) == codes(other) == [("b/m.py", "JD101"), ("c/m.py", "JD401")]
    # linting the whole tree gives the same answer: subprojects keep their rules
    assert codes(run("lint", "--format", "json", "--no-cache", ".", cwd=tmp_path)) == codes(one)
    # from inside a subproject too
    inside = run("lint", "--format", "json", "--no-cache", "m.py", cwd=tmp_path / "b")
    assert [f["code"] for f in json.loads(inside.stdout)] == ["JD101"]


def test_config_flag_applies_one_file_to_every_path(tmp_path):
    monorepo(tmp_path)
    proc = run("lint", "--format", "json", "--no-cache", "--config", "pyproject.toml", "b/m.py", cwd=tmp_path)
    assert proc.returncode == 0 and json.loads(proc.stdout) == []


def test_per_directory_exclude_and_per_file_ignores_are_relative_to_their_file(tmp_path):
    write(tmp_path / "sub" / "pyproject.toml", """\
        [tool.jaxdoctor]
        exclude = ["gen/*"]
        per-file-ignores = { "tests/*" = ["JD101"] }
    """)
    write(tmp_path / "sub" / "gen" / "x.py", BAD)
    write(tmp_path / "sub" / "tests" / "t.py", BAD)
    write(tmp_path / "sub" / "src" / "s.py", BAD)
    proc = run("lint", "--show-files", ".", cwd=tmp_path)
    assert proc.stdout.split() == ["sub/src/s.py", "sub/tests/t.py"]
    proc = run("lint", "--format", "json", "--no-cache", ".", cwd=tmp_path)
    assert codes(proc) == [("sub/src/s.py", "JD101")]


def test_extend_inherits_and_overrides(tmp_path):
    write(tmp_path / "pyproject.toml", """\
        [tool.jaxdoctor]
        select = ["JD1", "JD4"]
        ignore = ["JD101"]
        target-jax-version = "0.4.20"
    """)
    write(tmp_path / "sub" / "pyproject.toml", """\
        [tool.jaxdoctor]
        extend = "../pyproject.toml"
        extend-select = ["JD101"]
    """)
    write(tmp_path / "sub" / "m.py", BAD + DEPRECATED)
    write(tmp_path / "m.py", BAD + DEPRECATED)
    proc = run("lint", "--format", "json", "--no-cache", ".", cwd=tmp_path)
    assert codes(proc) == [("m.py", "JD402"), ("sub/m.py", "JD101"), ("sub/m.py", "JD402")]
    shown = run("lint", "--show-settings", "sub/m.py", cwd=tmp_path).stdout
    assert f"configuration: {tmp_path / 'sub' / 'pyproject.toml'}" in shown
    assert "target-jax-version: 0.4.20 (configuration)" in shown
    assert "JD101" in shown.split("enabled rules")[1].splitlines()[0]
    # a missing or cyclic extend is a one-line configuration error
    write(tmp_path / "sub" / "pyproject.toml", '[tool.jaxdoctor]\nextend = "../nope.toml"\n')
    proc = run("lint", "sub/m.py", cwd=tmp_path)
    assert proc.returncode == 2 and "nope.toml" in proc.stderr and proc.stderr.count("\n") == 1
    write(tmp_path / "pyproject.toml", '[tool.jaxdoctor]\nextend = "sub/pyproject.toml"\n')
    write(tmp_path / "sub" / "pyproject.toml", '[tool.jaxdoctor]\nextend = "../pyproject.toml"\n')
    proc = run("lint", "sub/m.py", cwd=tmp_path)
    assert proc.returncode == 2 and "cycle" in proc.stderr


def test_project_pins_are_the_default_target_without_a_jaxdoctor_table(tmp_path):
    write(tmp_path / "pyproject.toml", '[project]\nname = "p"\ndependencies = ["jax==0.4.20"]\n')
    write(tmp_path / "m.py", "import jax\nn = len(jax.tree_leaves({}))\n")
    proc = run("lint", "--format", "json", "--no-cache", "m.py", cwd=tmp_path)
    (f,) = json.loads(proc.stdout)
    # deprecated since 0.3.15, and jax.tree (the newer spelling) does not exist in 0.4.20
    assert f["code"] == "JD402" and "jax.tree_util.tree_leaves" in f["message"]
    shown = run("lint", "--show-settings", "m.py", cwd=tmp_path).stdout
    assert "target-jax-version: 0.4.20 (project pin)" in shown
    # the command line wins over the pin
    proc = run("lint", "--format", "json", "--no-cache", "--target-jax-version", "0.4.30", "m.py", cwd=tmp_path)
    assert "jax.tree.leaves" in json.loads(proc.stdout)[0]["message"]


def test_malformed_versions_are_configuration_errors(tmp_path):
    write(tmp_path / "m.py", DEPRECATED)
    for flag in ("--target-jax-version", "--target-flax-version"):
        proc = run("lint", flag, "banana", "m.py", cwd=tmp_path)
        assert proc.returncode == 2, proc.stdout
        assert proc.stderr.count("\n") == 1 and "banana" in proc.stderr and "Traceback" not in proc.stderr
    write(tmp_path / "pyproject.toml", '[tool.jaxdoctor]\ntarget-jax-version = "banana"\n')
    proc = run("lint", "m.py", cwd=tmp_path)
    assert proc.returncode == 2 and "target-jax-version" in proc.stderr and "banana" in proc.stderr
    assert proc.stderr.count("\n") == 1


def test_reload_notices_an_edited_configuration(tmp_path):
    from jaxdoctor.config import Resolver, enabled_codes

    write(tmp_path / "pyproject.toml", '[tool.jaxdoctor]\nselect = ["JD1"]\n')
    f = write(tmp_path / "pkg" / "m.py", BAD)
    resolver = Resolver()
    assert "JD402" not in enabled_codes(resolver.for_path(f))
    write(tmp_path / "pyproject.toml", '[tool.jaxdoctor]\nselect = ["JD4"]\n\n# longer now\n')
    assert "JD402" in enabled_codes(resolver.for_path(f, revalidate=True))
    write(tmp_path / "pkg" / "jaxdoctor.toml", 'select = ["JD2"]\n')  # a nearer one appears
    assert enabled_codes(resolver.for_path(f, revalidate=True)) >= {"JD201"}
    assert "JD402" not in enabled_codes(resolver.for_path(f, revalidate=True))
