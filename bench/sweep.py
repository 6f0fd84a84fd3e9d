"""Real-world sweep: lint code bases nobody here wrote, and count what jaxdoctor says about them.

By default the installed jax, flax, equinox, optax and chex sources; `--tree NAME=PATH` adds (or,
with `--no-packages`, replaces them by) any checkout: google/flax, AI-Hypercomputer/maxtext,
stanford-crfm/levanter, google/brax, jax-ml/jax's `examples/` and `docs/` were used for the
precision work (`bench/judged/`). Each tree is linted the way its users would: from its own
root, with its own configuration and dependency pins.

Prints, per tree, files, lines, wall time and whether the run finished without an internal
error; then findings per rule and per 10k lines for each tree and in all, split into the rules
that judge code (everything but JD001/JD401/JD402) and those that read the API table. With
`--json-dir DIR` each tree's findings are written as `DIR/NAME.json` (`jaxdoctor lint --format
json`, paths prefixed with NAME/) for `judge.py sample`. Exit status 2 if a tree hit an
internal error.

Usage: python bench/sweep.py [--tree NAME=PATH ...] [--no-packages] [--json-dir DIR] [--jobs N]
"""

from __future__ import annotations

import argparse
import collections
import importlib.util
import json
import os
import sys
import time
from pathlib import Path

import subprocess

from jaxdoctor import registry

PACKAGES = ("jax", "flax", "equinox", "optax", "chex")
#: rules that report facts about the API table rather than judging code
API_RULES = frozenset({"JD001", "JD401", "JD402"})


def package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def count_lines(root: Path) -> tuple[int, int]:
    files = [p for p in root.rglob("*") if p.suffix in (".py", ".ipynb") and "__pycache__" not in p.parts
             and ".git" not in p.parts and p.is_file()]
    lines = 0
    for p in files:
        if p.suffix == ".py":
            lines += p.read_bytes().count(b"\n")
        else:
            try:
                nb = json.loads(p.read_text(encoding="utf-8"))
                for cell in nb.get("cells", []):
                    if cell.get("cell_type") == "code":
                        src = cell.get("source", "")
                        lines += len(src) if isinstance(src, list) else src.count("\n") + 1
            except (ValueError, OSError, AttributeError):
                pass
    return len(files), lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tree", action="append", default=[], metavar="NAME=PATH")
    ap.add_argument("--no-packages", action="store_true", help="sweep only the --tree paths")
    ap.add_argument("--packages", default=",".join(PACKAGES))
    ap.add_argument("--json-dir", type=Path, default=None)
    ap.add_argument("--jobs", type=int, default=None)
    args = ap.parse_args()

    trees: list[tuple[str, Path, bool]] = []  # name, root, isolated (no project config)
    if not args.no_packages:
        for name in args.packages.split(","):
            root = package_dir(name)
            if root is None:
                print(f"{name:14s} not installed")
                continue
            trees.append((f"lib-{name}", root, True))
    for spec in args.tree:
        name, _, path = spec.partition("=")
        trees.append((name, Path(path).resolve(), False))
    if args.json_dir is not None:
        args.json_dir.mkdir(parents=True, exist_ok=True)

    rules = registry.all_rules()
    per_tree: dict[str, collections.Counter[str]] = {}
    lines_of: dict[str, int] = {}
    failed = False
    print(f"{'tree':14s} {'files':>6s} {'lines':>8s} {'wall s':>7s} {'findings':>9s}  status")
    for name, root, isolated in trees:
        n_files, lines = count_lines(root)
        lines_of[name] = lines
        # as the tree's users would run it: from its root (its own configuration and pins;
        # installed packages have none), paths in findings relative to it
        cmd = [sys.executable, "-P", "-m", "jaxdoctor", "lint", ".", "--format", "json", "--exit-zero", "--no-cache"]
        if isolated:
            cmd.append("--isolated")
        if args.jobs:
            cmd += ["--jobs", str(args.jobs)]
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True)
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            failed = True
            last = (proc.stderr.strip().splitlines() or ["?"])[-1]
            print(f"{name:14s} {n_files:6d} {lines:8d} {wall:7.1f} {'':9s}  ERROR (exit {proc.returncode}): {last}")
            continue
        found = json.loads(proc.stdout)
        per_tree[name] = collections.Counter(f["code"] for f in found)
        print(f"{name:14s} {n_files:6d} {lines:8d} {wall:7.1f} {len(found):9d}  ok", flush=True)
        if args.json_dir is not None:
            for f in found:
                f["path"] = f"{name}/{f['path'].removeprefix('./')}"
            (args.json_dir / f"{name}.json").write_text(json.dumps(found, indent=1))

    total_lines = sum(lines_of[n] for n in per_tree)
    every = collections.Counter()
    for c in per_tree.values():
        every.update(c)
    print(f"\nfindings per 10k lines, by rule ({total_lines} lines in all; load average "
          + ", ".join(f"{x:.1f}" for x in os.getloadavg()) + ")")
    names = list(per_tree)
    print(f"  {'rule':6s} {'name':34s} " + " ".join(f"{n[:10]:>10s}" for n in names) + f" {'all':>7s} {'/10k':>6s}")
    for code, n in sorted(every.items(), key=lambda kv: (kv[0] in API_RULES, -kv[1])):
        cells = " ".join(f"{per_tree[t].get(code, 0):10d}" for t in names)
        print(f"  {code:6s} {rules[code].name[:34]:34s} {cells} {n:7d} {n * 10_000 / max(total_lines, 1):6.2f}")
    judged = sum(n for c, n in every.items() if c not in API_RULES)
    api = sum(n for c, n in every.items() if c in API_RULES)
    print(f"\ncode-judging rules (all but {', '.join(sorted(API_RULES))}): {judged} findings, "
          f"{judged * 10_000 / max(total_lines, 1):.2f} per 10k lines; API rules: {api}")
    for t in names:
        j = sum(n for c, n in per_tree[t].items() if c not in API_RULES)
        print(f"  {t:14s} {j:5d} code-judging findings, {j * 10_000 / max(lines_of[t], 1):6.2f} per 10k lines")
    return 2 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
