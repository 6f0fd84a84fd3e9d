"""Real-world sweep: lint the installed jax, flax, equinox, optax and chex sources.

Prints, per package, files, lines, wall time and whether the run finished without an internal
error, then findings per 10k lines by rule, and (with `--samples N`) N findings per rule, spread
over the corpus, for review by hand. Exit status 2 if any package hit an internal error.

Usage: python bench/sweep.py [--samples N] [--packages jax,flax,...] [--jobs N]
"""

from __future__ import annotations

import argparse
import collections
import importlib.util
import os
import sys
import time
from pathlib import Path

from jaxdoctor import registry
from jaxdoctor.config import Settings
from jaxdoctor.static.runner import InternalError, lint_paths

PACKAGES = ("jax", "flax", "equinox", "optax", "chex")


def package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packages", default=",".join(PACKAGES))
    ap.add_argument("--samples", type=int, default=0, help="findings to print per rule")
    ap.add_argument("--jobs", type=int, default=None)
    args = ap.parse_args()

    codes = registry.select(None)
    by_rule: collections.Counter[str] = collections.Counter()
    examples: dict[str, list] = collections.defaultdict(list)
    total_lines = 0
    failed = False
    print(f"{'package':10s} {'files':>6s} {'lines':>8s} {'wall s':>7s} {'findings':>9s}  status")
    for name in args.packages.split(","):
        root = package_dir(name)
        if root is None:
            print(f"{name:10s} not installed")
            continue
        files = [p for p in root.rglob("*.py") if "__pycache__" not in p.parts]
        lines = sum(p.read_bytes().count(b"\n") for p in files)
        total_lines += lines
        start = time.perf_counter()
        try:
            run = lint_paths([str(root)], Settings(root=root), codes, {}, jobs=args.jobs)
            status = "ok"
        except InternalError as e:
            failed = True
            print(f"{name:10s} {len(files):6d} {lines:8d} {'':7s} {'':9s}  INTERNAL ERROR: {str(e).splitlines()[0]}")
            continue
        wall = time.perf_counter() - start
        for f in run.findings:
            by_rule[f.code] += 1
            examples[f.code].append(f)
        print(f"{name:10s} {len(files):6d} {lines:8d} {wall:7.1f} {len(run.findings):9d}  {status}", flush=True)

    print(f"\nfindings per 10k lines, by rule ({total_lines} lines in all; load average "
          + ", ".join(f"{x:.1f}" for x in os.getloadavg()) + ")")
    rules = registry.all_rules()
    for code, n in sorted(by_rule.items(), key=lambda kv: -kv[1]):
        print(f"  {code} {rules[code].name:38s} {n:6d}  {n * 10_000 / max(total_lines, 1):7.2f}")
    if args.samples:
        for code, found in sorted(examples.items()):
            step = max(1, len(found) // args.samples)
            print(f"\n== {code} {rules[code].name}: {len(found)} findings, {args.samples} shown")
            for f in found[::step][: args.samples]:
                print(f"  {f.path}:{f.line}:{f.column}: {f.message}")
    return 2 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
