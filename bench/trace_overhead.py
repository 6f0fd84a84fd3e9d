"""`make bench`, trace part: what running under the doctor costs, and an abstract trace at scale.

1. Run mode against plain Python: `bench/programs/train_mlp.py` (an MLP trained with optax,
   one jitted step per batch, the loss printed every 100 steps) as `python script.py STEPS` and
   as `jaxdoctor trace script.py -- STEPS`, interleaved, `rounds` times each; STEPS is chosen by
   a short calibration run so that the plain run takes at least `min_seconds` (20 s) here. The
   doctor runs the script in its child process with every capture and runtime check on (jit
   traces analysed, NaN flags, key ledger, leak checker, JD510 call sites). Reported: the median
   wall and CPU time of each, and the overhead in percent (goal: <= 10% wall).
2. `jaxdoctor trace bench/programs/transformer_1b.py:train_step --inputs ...`: a 1.07B-parameter
   decoder-only transformer's training step (value_and_grad, scan over 20 layers, remat), traced
   from `--inputs` only: wall time of the whole command, the peak memory of its process tree (the
   parameters alone would be 4.3 GB in float32) and, for reference, `jax.make_jaxpr` of the same
   step in a bare Python process.

Both run on a 2-core machine; the whole part takes about 2-4 minutes there.

    python bench/trace_overhead.py [--rounds N] [--min-seconds S]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
TRAIN = HERE / "programs" / "train_mlp.py"
TRANSFORMER = HERE / "programs" / "transformer_1b.py"
sys.path.insert(0, str(HERE))

from measure import measure  # noqa: E402  (bench/measure.py: wall, CPU and peak RSS of a process tree)

_STEP_TIME = re.compile(r"after (?P<steps>\d+) steps in (?P<s>[\d.]+) s")


def _env() -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("JAX_PLATFORMS", None)
    return env


def calibrate(min_seconds: float) -> int:
    """Steps of the training script that make a plain run last at least `min_seconds`: two short
    runs give the fixed cost (imports, compilation) and the cost of a step."""
    def run(steps: int) -> float:
        t = time.perf_counter()
        subprocess.run([sys.executable, str(TRAIN), str(steps)], env=_env(), check=True,
                       stdout=subprocess.DEVNULL)
        return time.perf_counter() - t

    short, long = 20, 420
    a, b = run(short), run(long)
    per_step = max((b - a) / (long - short), 1e-4)
    fixed = max(a - short * per_step, 0.0)
    return max(long, int(1.15 * (min_seconds - fixed) / per_step))


def overhead(rounds: int, min_seconds: float) -> str:
    steps = calibrate(min_seconds)
    plain_cmd = [sys.executable, str(TRAIN), str(steps)]
    doctor_cmd = [sys.executable, "-m", "jaxdoctor", "trace", str(TRAIN), "--timeout", "3600", "--", str(steps)]
    plain, doctor = [], []
    for _ in range(rounds):
        for samples, cmd in ((plain, plain_cmd), (doctor, doctor_cmd)):
            s = measure(cmd, env=_env(), cwd=REPO)
            if s.returncode != 0:
                return f"run mode: `{' '.join(cmd[1:])}` exited {s.returncode}: {s.stderr_tail}"
            samples.append(s)
    wall_p, wall_d = (statistics.median(s.wall for s in x) for x in (plain, doctor))
    cpu_p, cpu_d = (statistics.median(s.cpu for s in x) for x in (plain, doctor))
    lines = [
        f"run mode vs plain python: {TRAIN.relative_to(REPO)} {steps} steps, median of {rounds} (interleaved)",
        f"  {'plain python':22s} wall {wall_p:7.1f} s   cpu {cpu_p:7.1f} s",
        f"  {'jaxdoctor trace':22s} wall {wall_d:7.1f} s   cpu {cpu_d:7.1f} s",
        f"  overhead: wall {100 * (wall_d / wall_p - 1):+.1f}% (goal <= 10%), cpu {100 * (cpu_d / cpu_p - 1):+.1f}%",
    ]
    if wall_p < min_seconds:
        lines.append(f"  (the plain run took {wall_p:.1f} s, under the {min_seconds:.0f} s asked: the machine "
                     "was faster than the calibration run)")
    return "\n".join(lines)


_MAKE_JAXPR = """
import sys, time
sys.path.insert(0, {programs!r})
import jax, jax.numpy as jnp
import transformer_1b as t
params = {{k: jax.ShapeDtypeStruct(s, jnp.float32) for k, s in t.SHAPES.items()}}
tokens = jax.ShapeDtypeStruct((t.BATCH, t.SEQ + 1), jnp.int32)
start = time.perf_counter()
jax.make_jaxpr(t.train_step)(params, tokens)
print(f"{{time.perf_counter() - start:.2f}}")
"""


def abstract_1b() -> str:
    sys.path.insert(0, str(TRANSFORMER.parent))
    import transformer_1b

    spec = transformer_1b.inputs_spec()
    cmd = [sys.executable, "-m", "jaxdoctor", "trace", f"{TRANSFORMER}:train_step", "--inputs", spec]
    s = measure(cmd, env=_env(), cwd=REPO)
    bare = subprocess.run([sys.executable, "-c", _MAKE_JAXPR.format(programs=str(TRANSFORMER.parent))],
                          capture_output=True, text=True, env=_env())
    bare_s = bare.stdout.strip().splitlines()[-1] if bare.returncode == 0 and bare.stdout.strip() else "n/a"
    gb = transformer_1b.n_params() * 4 / 1e9
    status = "" if s.returncode in (0, 1) else f" (exit {s.returncode}: {s.stderr_tail})"
    return "\n".join([
        f"abstract trace of a {transformer_1b.n_params() / 1e9:.2f}B-parameter transformer step from --inputs "
        f"(params would be {gb:.1f} GB in float32){status}",
        f"  jaxdoctor trace (whole command: start, import jax, trace, analyzers): wall {s.wall:.1f} s, "
        f"peak memory of the process tree {s.peak_rss / 2**20:.0f} MB",
        f"  for reference, jax.make_jaxpr of the same step alone: {bare_s} s",
    ])


def report(rounds: int = 2, min_seconds: float = 20.0) -> str:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return "\n".join([overhead(rounds, min_seconds), abstract_1b(),
                      f"load average before: {load} ({os.cpu_count()} cores)"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--min-seconds", type=float, default=20.0)
    args = ap.parse_args()
    print(report(args.rounds, args.min_seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
