"""The lint result cache: hits on unchanged input, never stale, tolerant of corrupt entries,
safe for two runs sharing a directory."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from cli_support import BAD

from jaxdoctor import registry
from jaxdoctor.config import Settings
from jaxdoctor.static.cache import Cache
from jaxdoctor.static.runner import lint_paths

GOOD = "import jax\n\n@jax.jit\ndef f(x):\n    return jax.numpy.where(x > 0, x, -x)\n"


def lint(paths, cache, codes=None):
    return lint_paths([str(p) for p in paths], Settings(root=paths[0].parent), codes or registry.select(None), {},
                      jobs=1, cache=cache)


def summary(run):
    return [(f.code, f.path, f.line, f.column, f.message) for f in run.findings]


def test_second_run_is_served_from_the_cache(tmp_path: Path) -> None:
    src = tmp_path / "a.py"
    src.write_text(BAD)
    first = lint([src], Cache(tmp_path / "cache"))
    assert first.cached == 0 and [f.code for f in first.findings] == ["JD101"]
    second = lint([src], Cache(tmp_path / "cache"))
    assert second.cached == 1 and second.parsed == 1
    assert summary(second) == summary(first)
    assert second.findings == first.findings  # fixes, titles, severities round-trip too


def test_never_stale_when_the_file_or_the_codes_change(tmp_path: Path) -> None:
    src = tmp_path / "a.py"
    src.write_text(BAD)
    cache = tmp_path / "cache"
    lint([src], Cache(cache))
    src.write_text(GOOD)
    run = lint([src], Cache(cache))
    assert run.cached == 0 and run.findings == []
    src.write_text(BAD)
    assert lint([src], Cache(cache)).cached == 1  # back to the old content: its entry is valid
    only_jd102 = lint([src], Cache(cache), codes=frozenset({"JD102"}))
    assert only_jd102.cached == 0 and only_jd102.findings == []


def test_corrupt_entries_are_misses(tmp_path: Path) -> None:
    src = tmp_path / "a.py"
    src.write_text(BAD)
    cache = tmp_path / "cache"
    expected = summary(lint([src], Cache(cache)))
    entries = list(cache.rglob("*.json"))
    assert len(entries) == 1
    for garbage in (b"", b"{not json", b'{"key": "other", "parsed": true, "findings": []}', b"\xff\x00"):
        entries[0].write_bytes(garbage)
        run = lint([src], Cache(cache))
        assert run.cached == 0 and summary(run) == expected
    assert lint([src], Cache(cache)).cached == 1  # rewritten by the last miss


def test_unreadable_cache_dir_does_not_fail_the_run(tmp_path: Path) -> None:
    src = tmp_path / "a.py"
    src.write_text(BAD)
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    run = lint([src], Cache(blocker / "cache"))
    assert [f.code for f in run.findings] == ["JD101"]


def test_two_concurrent_runs_share_a_cache(tmp_path: Path) -> None:
    for i in range(40):
        (tmp_path / f"m{i}.py").write_text(BAD if i % 2 else GOOD)
    cache = tmp_path / "cache"
    cmd = [sys.executable, "-m", "jaxdoctor", "lint", "--isolated", "--format", "concise", "-q",
           "--cache-dir", str(cache), "--jobs", "2", "."]
    procs = [subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 1, err
        assert out.count("JD101") == 20
    assert outs[0][0] == outs[1][0]
    again = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert again.stdout == outs[0][0]
    assert not list(cache.rglob(".tmp-*"))  # no temporary files left behind


def test_no_cache_flag_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text(BAD)
    cache = tmp_path / "cache"
    proc = subprocess.run([sys.executable, "-m", "jaxdoctor", "lint", "--isolated", "--no-cache",
                           "--cache-dir", str(cache), "a.py"], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 1 and "JD101" in proc.stdout
    assert not cache.exists()
