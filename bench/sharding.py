"""The sharding doctor's cost against the compile time of the same functions (`make bench`).

In one fresh process with 8 simulated CPU devices, every program of tests/fixtures/sharding/ and a
larger model (a 16-layer transformer block stack, tensor- and data-parallel, unrolled: a big
optimized module) run under the doctor. For each jitted function compiled for more than one
device the child reports XLA's compile time and the doctor's analysis time (reading the optimized
module and its frame index, the jaxpr's constraints, the analyzers); this prints them, their
ratio per function and over all, against the goal of 1.5x.

Usage: python bench/sharding.py [--rounds N]   (or through bench/run.py)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures" / "sharding"

LARGE = '''
"""A 16-layer transformer stack, Megatron-style tensor parallelism over `model`, batch over
`data`, unrolled (no scan), forward and backward: a large optimized module."""
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

mesh = Mesh(np.array(jax.devices()).reshape(4, 2), ("data", "model"))
L, D, F, H = 16, 256, 1024, 8


def block(x, w):
    b, s, d = x.shape
    q = (x @ w["wq"]).reshape(b, s, H, d // H)
    k = (x @ w["wk"]).reshape(b, s, H, d // H)
    v = (x @ w["wv"]).reshape(b, s, H, d // H)
    att = jax.nn.softmax(jnp.einsum("bqhd,bkhd->bhqk", q, k) / 8.0, axis=-1)
    o = jnp.einsum("bhqk,bkhd->bqhd", att, v).reshape(b, s, d)
    x = x + o @ w["wo"]
    return x + jax.nn.gelu(x @ w["up"]) @ w["down"]


def loss_fn(params, x):
    for w in params:
        x = block(x, w)
    return jnp.mean(x ** 2)


def main():
    col = NamedSharding(mesh, P(None, "model"))
    row = NamedSharding(mesh, P("model", None))
    spec = {"wq": col, "wk": col, "wv": col, "wo": row, "up": col, "down": row}
    shapes = {"wq": (D, D), "wk": (D, D), "wv": (D, D), "wo": (D, D), "up": (D, F), "down": (F, D)}
    params = [{k: jax.ShapeDtypeStruct(shapes[k], jnp.float32, sharding=spec[k]) for k in spec} for _ in range(L)]
    x = jax.ShapeDtypeStruct((32, 128, D), jnp.float32, sharding=NamedSharding(mesh, P("data")))
    return jax.jit(jax.value_and_grad(loss_fn)).lower(params, x).compile()
'''

CHILD = '''
import json, os, re, sys, time
sys.path.insert(0, {repo!r})
from jaxdoctor.trace.child import run_job
from jaxdoctor.trace.protocol import Session
import contextlib, io
out = []
for path in sys.argv[1:]:
    m = re.search(r"jaxdoctor-options: (.*)", open(path).read())
    opts = dict(kv.strip().split("=", 1) for kv in m.group(1).split(",")) if m else {{}}
    session = Session()
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        run_job({{"target": {{"kind": "file", "spec": path, "function": "main"}}, **opts}}, session)
    wall = time.perf_counter() - t0
    for r in session.records:
        if r.get("event") == "sharding" and r.get("devices", 1) > 1:
            out.append(dict(r, program=os.path.basename(path), wall=wall))
print("@@" + json.dumps(out))
'''


def measure(rounds: int = 1) -> list[dict]:
    with tempfile.TemporaryDirectory(prefix="jaxdoctor-bench-sharding-") as tmp:
        large = Path(tmp) / "large_transformer.py"
        large.write_text(textwrap.dedent(LARGE))
        script = Path(tmp) / "child.py"
        script.write_text(CHILD.format(repo=str(REPO)))
        programs = sorted(str(p) for p in FIXTURES.glob("*.py")) + [str(large)]
        env = dict(os.environ, JAX_NUM_CPU_DEVICES="8", PYTHONPATH=str(REPO))
        rows: list[dict] = []
        for _ in range(rounds):
            proc = subprocess.run([sys.executable, str(script), *programs], env=env, capture_output=True,
                                  text=True, timeout=1800)
            line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("@@")), None)
            if line is None:
                raise RuntimeError(f"bench child failed: {proc.stderr[-2000:]}")
            rows.extend(json.loads(line[2:]))
        return rows


def report(rounds: int = 1) -> str:
    rows = measure(rounds)
    by: dict[tuple, list[dict]] = {}
    for r in rows:
        by.setdefault((r["program"], r["function"]), []).append(r)
    lines = [f"sharding doctor: analysis vs compile, {len(by)} functions compiled for 8 simulated CPU devices "
             f"(median of {rounds})", f"  {'program':44s} {'function':18s} {'compile s':>9s} {'analysis s':>10s} {'ratio':>6s}"]
    total_c = total_a = 0.0
    ratios = []
    for (program, function), rs in sorted(by.items()):
        c = statistics.median(r["compile_seconds"] for r in rs)
        a = statistics.median(r["analysis_seconds"] for r in rs)
        total_c += c
        total_a += a
        ratios.append(a / c if c else 0.0)
        lines.append(f"  {program[:44]:44s} {function[:18]:18s} {c:9.3f} {a:10.3f} {a / c if c else 0:6.2f}")
    worst = max(ratios) if ratios else 0.0
    lines.append(f"  all: compile {total_c:.2f} s, analysis {total_a:.2f} s: {total_a / total_c if total_c else 0:.2f}x "
                 f"(median per function {statistics.median(ratios) if ratios else 0:.2f}x, worst {worst:.2f}x; goal <= 1.5x)")
    lines.append("  (run mode reuses JAX's own compilation: the analysis is the doctor's whole extra cost; "
                 "--mesh on a program without a mesh adds one compile of each function)")
    return "\n".join(lines)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=1)
    print(report(ap.parse_args().rounds))
