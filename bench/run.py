"""`make bench`: jaxdoctor against the libcst parse floor and peer linters, on code nobody here wrote.

Corpus: the sources of the installed flax, equinox and optax packages. From one run this prints,
for each command, the median over `--rounds` rounds (commands interleaved within a round, so
load from other processes hits all of them alike) of wall time, CPU time (user+sys of the whole
process tree) and peak memory (the largest sum of RSS over the process tree, sampled every
20 ms), then the ratios jaxdoctor/floor and jaxdoctor/peer, and the load average before and after.

- floor: a bare `libcst.parse_module` loop over the same files, one process (interpreter start
  and `import libcst` included, as they are for jaxdoctor).
- jaxdoctor cold: `lint --no-cache` (all cores); warm: `lint` with a cache primed before the
  first round (in a fresh temporary cache directory); one-file: `lint --no-cache` of the
  corpus file of median size, interpreter start included (the pre-commit case).
- jaxdoctor runs from a snapshot copy of the package taken at start, so that edits made to the
  checkout while the bench runs neither mix versions nor invalidate the warm cache.
- peers: `ruff check --select ALL`, `fixit lint`, `pylint` (both on the equinox package only:
  on the whole corpus each takes minutes; jaxdoctor is timed on that subset too, for their
  ratio), `jaxlint check`. A peer that exits with a traceback is reported as crashed.

- server: re-lint latency of an edited 1,000-line file inside `jaxdoctor server` (a real
  server process and LSP client; see `bench/server_latency.py`).
- trace: the overhead of running a >= 20 s training script under the doctor against plain
  `python script.py`, and an abstract trace of a 1B-parameter transformer step from `--inputs`
  (see `bench/trace_overhead.py`).
- sharding: the sharding doctor's analysis time against XLA's compile time of the same jitted
  functions, on 8 simulated CPU devices (see `bench/sharding.py`).

Usage: python bench/run.py [--rounds N] [--jobs N] [--skip-slow] [--server-only] [--sharding-only] [--edits N]
                           [--trace-only] [--skip-trace] [--trace-rounds N]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from measure import Sample, measure  # bench/measure.py (run as a script: this folder is on sys.path)

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PACKAGES = ("flax", "equinox", "optax")
SUBSET = "equinox"


def package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)  # finds without importing the package
    if spec is None or not spec.submodule_search_locations:
        sys.exit(f"bench: package {name!r} is not installed in {sys.prefix}")
    return Path(list(spec.submodule_search_locations)[0])


def python_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)


# measuring a process tree: bench/measure.py (shared with trace_overhead.py)


@dataclass
class Result:
    name: str
    what: str
    samples: list[Sample] = field(default_factory=list)
    crashed: str | None = None

    def median(self, attr: str) -> float:
        return statistics.median(getattr(s, attr) for s in self.samples)


FLOOR = """
import sys, libcst
for path in sys.argv[1:]:
    with open(path, encoding="utf-8") as f:
        source = f.read()
    try:
        libcst.parse_module(source)
    except Exception:
        pass
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--jobs", type=int, default=None, help="jaxdoctor --jobs (default: all cores)")
    ap.add_argument("--skip-slow", action="store_true", help="skip fixit and pylint")
    ap.add_argument("--server-only", action="store_true", help="only the language server's re-lint latency")
    ap.add_argument("--edits", type=int, default=40, help="edits sent to the language server")
    ap.add_argument("--trace-only", action="store_true", help="only the trace part (run mode overhead, 1B trace)")
    ap.add_argument("--skip-trace", action="store_true", help="skip the trace part")
    ap.add_argument("--trace-rounds", type=int, default=2, help="rounds of the run-mode overhead measurement")
    ap.add_argument("--sharding-only", action="store_true", help="only the sharding doctor's cost vs compile time")
    args = ap.parse_args()
    if args.server_only:
        print(_server_latency(args.edits))
        return 0
    if args.trace_only:
        print(_trace(args.trace_rounds))
        return 0
    if args.sharding_only:
        print(_sharding())
        return 0

    installed = [package_dir(p) for p in PACKAGES]
    tmp = Path(tempfile.mkdtemp(prefix="jaxdoctor-bench-"))
    try:
        # Every tool lints the same copy, outside site-packages: ruff and fixit skip anything
        # under a `site-packages` directory (fixit silently checks 0 files there).
        dirs = []
        for name, src in zip(PACKAGES, installed):
            shutil.copytree(src, tmp / "corpus" / name, ignore=shutil.ignore_patterns("__pycache__"))
            dirs.append(tmp / "corpus" / name)
        files = [f for d in dirs for f in python_files(d)]
        lines = sum(f.read_bytes().count(b"\n") for f in files)
        subset_dir = tmp / "corpus" / SUBSET
        subset_files = python_files(subset_dir)
        subset_lines = sum(f.read_bytes().count(b"\n") for f in subset_files)
        gated = [f for f in files if b"jax" in f.read_bytes() or b"flax" in f.read_bytes()]
        one = sorted(gated, key=lambda f: f.stat().st_size)[len(gated) // 2]
        one_lines = one.read_bytes().count(b"\n")

        snapshot = tmp / "snapshot"
        shutil.copytree(REPO / "jaxdoctor", snapshot / "jaxdoctor",
                        ignore=shutil.ignore_patterns("__pycache__"))
        env = dict(os.environ, PYTHONPATH=str(snapshot))
        env.pop("JAXDOCTOR_CACHE_DIR", None)
        cache_dir = tmp / "cache"
        py = sys.executable
        jd = [py, "-m", "jaxdoctor", "lint", "--isolated", "--exit-zero", "-q", "--format", "concise"]
        if args.jobs:
            jd += ["--jobs", str(args.jobs)]
        floor_script = tmp / "floor.py"
        floor_script.write_text(FLOOR)
        corpus = [os.path.relpath(d, tmp) for d in dirs]  # short relative paths, as a user types them
        commands: list[tuple[Result, list[str]]] = [
            (Result("floor", f"libcst.parse_module loop, 1 process, {len(files)} files"),
             [py, str(floor_script), *(os.path.relpath(f, tmp) for f in files)]),
            (Result("jaxdoctor cold", "lint --no-cache"), jd + ["--no-cache", *corpus]),
            (Result("jaxdoctor warm", "lint (cache primed)"), jd + ["--cache-dir", str(cache_dir), *corpus]),
            (Result("jaxdoctor one file", f"lint --no-cache {one.parent.name}/{one.name} ({one_lines} lines)"),
             jd + ["--no-cache", os.path.relpath(one, tmp)]),
            (Result("ruff", "check --select ALL --no-cache"),
             [str(BIN / "ruff"), "check", "--select", "ALL", "--no-cache", "--isolated", "--exit-zero", "-q", *corpus]),
            (Result("jaxlint", "check"), [str(BIN / "jaxlint"), "check", *corpus]),
        ]
        if not args.skip_slow:
            commands += [
                (Result(f"jaxdoctor cold [{SUBSET}]", f"lint --no-cache, {SUBSET} only"),
                 jd + ["--no-cache", os.path.relpath(subset_dir, tmp)]),
                (Result(f"fixit [{SUBSET}]", f"lint (built-in rules), {SUBSET} only"),
                 [str(BIN / "fixit"), "lint", os.path.relpath(subset_dir, tmp)]),
                (Result(f"pylint [{SUBSET}]", f"default checks, -j1, {SUBSET} only"),
                 [str(BIN / "pylint"), "-j", "1", "--exit-zero", "--disable=import-error", os.path.relpath(subset_dir, tmp)]),
            ]
        load_before = os.getloadavg()
        print(f"corpus: {', '.join(f'{p} ({d})' for p, d in zip(PACKAGES, installed))}, copied to a temporary directory")
        print(f"        {len(files)} files, {lines} lines; {len(gated)} mention jax/flax; "
              f"subset {SUBSET}: {len(subset_files)} files, {subset_lines} lines")
        print(f"machine: {os.cpu_count()} cores; load average before: "
              + ", ".join(f"{x:.2f}" for x in load_before), flush=True)
        # prime the cache (same working directory as the measured runs: paths in findings match),
        # and let the snapshot write its bytecode, as an installed package has it
        subprocess.run(jd + ["--cache-dir", str(cache_dir), *corpus], env=env, cwd=tmp, stdout=subprocess.DEVNULL)
        for r in range(args.rounds):
            for result, cmd in commands:
                if result.crashed is not None:
                    continue
                s = measure(cmd, env=env, cwd=tmp)
                if s.returncode not in (0, 1) or re.match(r"^[\w.]*(Error|Exception)\b", s.stderr_tail):
                    result.crashed = f"exit {s.returncode}: {s.stderr_tail[:100]}"
                result.samples.append(s)
            print(f"  round {r + 1}/{args.rounds} done", file=sys.stderr, flush=True)
        load_after = os.getloadavg()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print()
    print(f"{'command':28s} {'wall s':>8s} {'cpu s':>8s} {'peak MB':>8s}  what (median of {args.rounds})")
    for result, _ in commands:
        if not result.samples:
            continue
        if result.crashed is not None:
            print(f"{result.name:28s} {'crashed':>8s} {'':8s} {'':8s}  {result.what}: {result.crashed}")
            continue
        print(f"{result.name:28s} {result.median('wall'):8.2f} {result.median('cpu'):8.2f} "
              f"{result.median('peak_rss') / 2**20:8.0f}  {result.what}")
    by = {r.name: r for r, _ in commands}

    def ratio(a: str, b: str, label: str) -> None:
        ra, rb = by.get(a), by.get(b)
        if ra is None or rb is None or not ra.samples or not rb.samples or ra.crashed or rb.crashed:
            print(f"  {label:40s} n/a" + (f" ({b} crashed)" if rb is not None and rb.crashed else ""))
            return
        print(f"  {label:40s} {ra.median('wall') / rb.median('wall'):6.2f}  (cpu {ra.median('cpu') / rb.median('cpu'):.2f})")

    print("\nratios (wall, medians):")
    ratio("jaxdoctor cold", "floor", "jaxdoctor cold / floor      (target <= 1.0)")
    ratio("jaxdoctor warm", "floor", "jaxdoctor warm / floor      (target <= 0.15)")
    ratio("jaxdoctor cold", "ruff", "jaxdoctor cold / ruff")
    ratio("jaxdoctor cold", "jaxlint", "jaxdoctor cold / jaxlint")
    ratio(f"jaxdoctor cold [{SUBSET}]", f"fixit [{SUBSET}]", f"jaxdoctor / fixit   [{SUBSET}]")
    ratio(f"jaxdoctor cold [{SUBSET}]", f"pylint [{SUBSET}]", f"jaxdoctor / pylint  [{SUBSET}]")
    one_file = by["jaxdoctor one file"]
    print(f"  {'jaxdoctor one file (target <= 0.6 s)':40s} {one_file.median('wall'):6.2f} s")
    peak = max(by[n].median("peak_rss") for n in ("jaxdoctor cold", "jaxdoctor warm")) / 2**20
    print(f"  {'jaxdoctor peak memory (target <= 300 MB)':40s} {peak:6.0f} MB")
    print("\nload average after: " + ", ".join(f"{x:.2f}" for x in load_after)
          + f"  ({os.cpu_count()} cores; above {os.cpu_count()} other processes competed for the CPU)")
    print("\n" + _server_latency(args.edits))
    if not args.skip_trace:
        print("\n" + _trace(args.trace_rounds))
    print("\n" + _sharding())
    return 0


def _trace(rounds: int) -> str:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    try:
        import trace_overhead
    except ImportError as e:  # pragma: no cover - jax or optax missing
        return f"trace: n/a ({e})"
    try:
        import jax  # noqa: F401
        import optax  # noqa: F401
    except ImportError as e:
        return f"trace: n/a ({e}; pip install 'jaxdoctor[trace]' optax)"
    return trace_overhead.report(rounds)


def _sharding() -> str:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    try:
        import sharding
    except ImportError as e:  # pragma: no cover
        return f"sharding: n/a ({e})"
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return sharding.report() + f"\n  load average before: {load}"


def _server_latency(edits: int) -> str:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    try:
        import server_latency
    except ImportError as e:  # pragma: no cover - pygls missing
        return f"server: n/a ({e}; pip install 'jaxdoctor[server]')"
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return server_latency.report(edits) + f"; load average before: {load}"


if __name__ == "__main__":
    sys.exit(main())
