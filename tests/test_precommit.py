"""The pre-commit hook, for real: `pre-commit try-repo` installs this repository's hook into its
own environment (as a user's pre-commit would) and runs it on a temporary git repository."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cli_support import BAD

ROOT = Path(__file__).resolve().parent.parent



def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def pre_commit_home(tmp_path_factory) -> Path:
    # shared by the tests of this module: the hook environment is built once
    return tmp_path_factory.mktemp("pre-commit-home")


def _try_repo(repo: Path, home: Path, *extra: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PRE_COMMIT_HOME=str(home), NO_COLOR="1")
    env.pop("PRE_COMMIT", None)
    return subprocess.run(
        [sys.executable, "-m", "pre_commit", "try-repo", str(ROOT), "jaxdoctor", *extra],
        cwd=repo, env=env, capture_output=True, text=True, timeout=600,
    )


def _new_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "user-repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    _git(repo, "config", "user.email", "u@example.com")
    _git(repo, "config", "user.name", "u")
    return repo


@pytest.mark.skipif(shutil.which("git") is None, reason="git is required by pre-commit")
def test_hook_fails_on_a_staged_bad_file(tmp_path, pre_commit_home):
    repo = _new_repo(tmp_path)
    (repo / "model.py").write_text(BAD)
    _git(repo, "add", "model.py")
    proc = _try_repo(repo, pre_commit_home)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "jaxdoctor" in out and "Failed" in out
    assert "model.py:6:8: JD101" in out


@pytest.mark.skipif(shutil.which("git") is None, reason="git is required by pre-commit")
def test_hook_passes_quietly_without_python_files(tmp_path, pre_commit_home):
    repo = _new_repo(tmp_path)
    (repo / "README.md").write_text("# no python here\n")
    _git(repo, "add", "README.md")
    proc = _try_repo(repo, pre_commit_home)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "Traceback" not in out
    assert "jaxdoctor" in out and ("Skipped" in out or "Passed" in out)


def _readme_block(containing: str) -> str:
    import re

    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", readme, re.S)
    (block,) = [b for b in blocks if containing in b]
    return block


@pytest.mark.skipif(shutil.which("git") is None, reason="git is required by pre-commit")
def test_readme_local_hook_works_exactly_as_written(tmp_path, pre_commit_home):
    repo = _new_repo(tmp_path)
    (repo / ".pre-commit-config.yaml").write_text(_readme_block("repo: local"))
    (repo / "model.py").write_text(BAD)
    _git(repo, "add", ".")
    env = dict(os.environ, PRE_COMMIT_HOME=str(pre_commit_home), NO_COLOR="1",
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    env.pop("PRE_COMMIT", None)
    proc = subprocess.run([sys.executable, "-m", "pre_commit", "run", "--all-files"], cwd=repo, env=env,
                          capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "model.py:6:8: JD101" in out


@pytest.mark.skipif(shutil.which("git") is None, reason="git is required by pre-commit")
def test_readme_remote_hook_works_with_a_commit_sha_as_rev(tmp_path, pre_commit_home):
    # the snippet with its two placeholders filled in: this repository, and a commit of it
    sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    block = _readme_block("rev:")
    lines = []
    for line in block.splitlines():
        if "repo:" in line:
            line = f"  - repo: {ROOT}"
        elif "rev:" in line:
            line = f"    rev: {sha}"
        lines.append(line)
    repo = _new_repo(tmp_path)
    (repo / ".pre-commit-config.yaml").write_text("\n".join(lines) + "\n")
    (repo / "model.py").write_text(BAD)
    _git(repo, "add", ".")
    env = dict(os.environ, PRE_COMMIT_HOME=str(pre_commit_home), NO_COLOR="1")
    env.pop("PRE_COMMIT", None)
    proc = subprocess.run([sys.executable, "-m", "pre_commit", "run", "--all-files"], cwd=repo, env=env,
                          capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "model.py:6:8: JD101" in out
