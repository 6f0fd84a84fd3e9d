"""Score `jaxdoctor trace` on the held-out corpus in this directory.

    .venv/bin/python tests/trace_corpus/score.py            # every program, 2 at a time
    .venv/bin/python tests/trace_corpus/score.py -j 1 bad_range_traced.py good_scan_rnn.py
    .venv/bin/python tests/trace_corpus/score.py --json     # machine-readable summary

Each program has a zero-argument `main()` and is run exactly as a user would run it:
`jaxdoctor trace FILE:main --format json`, in its own process.

- `bad_*.py` mark the line(s) where a user wants the finding with `# EXPECT JDxxx`. The program
  counts as *found* when any finding (any code) is reported on a marked line of that file; the
  code named in the marker is what we expected, and a different code on that line is listed as
  `code-mismatch` (still found). When a program has several marked lines, they are
  alternatives: one of them is enough.
- `good_*.py` are correct look-alikes: any finding of severity warning or error on them is a
  false positive. Info-level findings are listed but not counted.

Recall = found / bad programs. The acceptance bar (issue 3): recall >= 70%, and at most
`--max-fp` (default 2) correct programs with a warning or error.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
_EXPECT = re.compile(r"#\s*EXPECT\s+((?:JD\d{3}[\s,]*)+)\s*$")
COUNTED = {"warning", "error"}


def expectations(path: Path) -> dict[int, set[str]]:
    out: dict[int, set[str]] = {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        m = _EXPECT.search(line)
        if m:
            out[lineno] = set(re.findall(r"JD\d{3}", m.group(1)))
    return out


def run_one(path: Path, timeout: float) -> dict:
    cmd = [sys.executable, "-m", "jaxdoctor", "trace", f"{path}:main", "--format", "json"]
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                              check=False)
    except subprocess.TimeoutExpired:
        return {"file": path.name, "error": f"timed out after {timeout:.0f}s", "findings": [],
                "seconds": time.perf_counter() - start}
    seconds = time.perf_counter() - start
    try:
        findings = json.loads(proc.stdout) if proc.stdout.strip() else []
    except json.JSONDecodeError:
        return {"file": path.name, "error": f"exit {proc.returncode}, no JSON: {proc.stdout[-300:]!r} "
                f"{proc.stderr[-500:]!r}", "findings": [], "seconds": seconds}
    if proc.returncode not in (0, 1):
        return {"file": path.name, "error": f"exit {proc.returncode}: {proc.stderr[-500:]}",
                "findings": findings, "seconds": seconds}
    return {"file": path.name, "findings": findings, "seconds": seconds}


def judge(path: Path, run: dict) -> dict:
    name = path.name
    mine = [f for f in run["findings"] if os.path.basename(f.get("path") or "") == name]
    res = {"file": name, "seconds": round(run["seconds"], 2), "error": run.get("error"),
           "findings": [(f["code"], f.get("severity"), f.get("line")) for f in run["findings"]]}
    if name.startswith("bad_"):
        want = expectations(path)
        res["kind"] = "bad"
        res["expected"] = {str(k): sorted(v) for k, v in want.items()}
        hits = [f for f in mine if f.get("line") in want]
        res["found"] = bool(hits)
        res["exact_code"] = any(f["code"] in want[f["line"]] for f in hits)
        res["elsewhere"] = [(f["code"], f.get("line")) for f in run["findings"] if f not in hits]
    else:
        res["kind"] = "good"
        bad = [f for f in run["findings"] if f.get("severity") in COUNTED]
        res["false_positive"] = bool(bad)
        res["info"] = [(f["code"], f.get("line")) for f in run["findings"] if f.get("severity") not in COUNTED]
    return res


def score(files: list[Path], jobs: int = 2, timeout: float = 150.0) -> dict:
    with cf.ThreadPoolExecutor(max_workers=jobs) as pool:
        runs = list(pool.map(lambda p: run_one(p, timeout), files))
    results = [judge(p, r) for p, r in zip(files, runs)]
    bad = [r for r in results if r["kind"] == "bad"]
    good = [r for r in results if r["kind"] == "good"]
    found = sum(r["found"] for r in bad)
    return {
        "results": results,
        "bad": len(bad), "found": found, "recall": found / len(bad) if bad else 1.0,
        "exact_code": sum(r["exact_code"] for r in bad),
        "good": len(good), "false_positives": sum(r["false_positive"] for r in good),
        "errors": [r["file"] for r in results if r["error"]],
    }


def corpus(names: list[str] | None = None) -> list[Path]:
    if names:
        return [HERE / os.path.basename(n) for n in names]
    return sorted(HERE.glob("bad_*.py")) + sorted(HERE.glob("good_*.py"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="*")
    ap.add_argument("-j", "--jobs", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=150.0)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--min-recall", type=float, default=0.70)
    ap.add_argument("--max-fp", type=int, default=2)
    args = ap.parse_args(argv)
    start = time.perf_counter()
    s = score(corpus(args.files), args.jobs, args.timeout)
    s["seconds"] = round(time.perf_counter() - start, 1)
    if args.json:
        print(json.dumps(s, indent=1))
    else:
        for r in s["results"]:
            if r["kind"] == "bad":
                status = ("found" if r["exact_code"] else "found (code-mismatch)") if r["found"] else "MISSED"
                want = "; ".join(f"{k}:{','.join(v)}" for k, v in r["expected"].items())
            else:
                status = "FALSE POSITIVE" if r["false_positive"] else "clean"
                want = "-"
            extra = f" ERROR: {r['error']}" if r["error"] else ""
            print(f"{r['file']:44s} {status:22s} want {want:14s} got {r['findings']} ({r['seconds']}s){extra}")
        print()
        print(f"recall at the right line: {s['found']}/{s['bad']} = {s['recall']:.0%} "
              f"(expected code: {s['exact_code']}/{s['bad']})")
        print(f"correct programs with a warning/error: {s['false_positives']}/{s['good']}")
        if s["errors"]:
            print(f"runner errors: {s['errors']}")
        print(f"{s['seconds']}s")
    ok = s["recall"] >= args.min_recall and s["false_positives"] <= args.max_fp
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
