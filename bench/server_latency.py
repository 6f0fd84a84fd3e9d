"""Re-lint latency inside `jaxdoctor server`: an edited 1,000-line file, as an editor sends it.

A real server process (`jaxdoctor server --debounce 0`, so the figure is the lint and the
protocol, not the debounce an editor user sees on top) and pygls's LSP client over stdio. The
file is a realistic JAX module (jitted steps, a `scan`, an Equinox and a Linen module, each a few
times over, with a finding in every block). Each edit is one incremental `didChange` that retypes a
constant; the time is from sending it to receiving the `publishDiagnostics` for that version.

Usage: python bench/server_latency.py [--edits N]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

BLOCK = '''

@jax.jit
def step_{i}(params, x, key):
    key, sub = jax.random.split(key)
    noise = jax.random.normal(sub, x.shape) * {scale}
    h = jnp.tanh(x @ params["w"] + params["b"] + noise)
    if h.sum() > 0:
        h = -h
    return h, key


def body_{i}(carry, x):
    total, count = carry
    return (total + jnp.sum(x), count + 1), x * 2.0


def run_{i}(xs):
    (total, count), ys = jax.lax.scan(body_{i}, (0.0, 0), xs)
    return total / count, ys


class Block{i}(eqx.Module):
    linear: eqx.nn.Linear

    def __init__(self, key):
        self.linear = eqx.nn.Linear(8, 8, key=key)

    def __call__(self, x):
        return jax.nn.relu(self.linear(x))


class Dense{i}(nn.Module):
    features: int = 16

    @nn.compact
    def __call__(self, x):
        return nn.Dense(self.features)(x)
'''
HEADER = "import equinox as eqx\nimport flax.linen as nn\nimport jax\nimport jax.numpy as jnp\n"


def source(lines: int = 1000) -> str:
    """Whole blocks up to `lines` lines, then module constants to make exactly `lines`."""
    out, i = HEADER, 0
    while (out + BLOCK.format(i=i, scale="0.1")).count("\n") <= lines:
        out += BLOCK.format(i=i, scale="0.1")
        i += 1
    k = 0
    while out.count("\n") < lines:
        out += f"SEED_{k} = {k}\n"
        k += 1
    return out


async def measure(edits: int) -> tuple[list[float], int, int]:
    from lsprotocol import types as lsp
    from pygls.lsp.client import LanguageClient

    text = source()
    with tempfile.TemporaryDirectory(prefix="jaxdoctor-server-bench-") as tmp:
        path = Path(tmp) / "model.py"
        path.write_text(text)
        uri = path.as_uri()
        client = LanguageClient("bench", "1")
        queue: asyncio.Queue = asyncio.Queue()

        @client.feature(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        def published(params: lsp.PublishDiagnosticsParams) -> None:
            queue.put_nowait((time.perf_counter(), params))

        await client.start_io(sys.executable, "-m", "jaxdoctor", "server", "--debounce", "0")
        await client.initialize_async(lsp.InitializeParams(capabilities=lsp.ClientCapabilities(),
                                                           root_uri=Path(tmp).as_uri()))
        client.initialized(lsp.InitializedParams())
        client.text_document_did_open(lsp.DidOpenTextDocumentParams(
            lsp.TextDocumentItem(uri=uri, language_id="python", version=1, text=text)))
        _, first = await asyncio.wait_for(queue.get(), 120)
        findings = len(first.diagnostics)
        lines = text.splitlines()
        targets = [n for n, line in enumerate(lines) if "* 0.1" in line]
        times = []
        for k in range(edits):
            line = targets[k % len(targets)]
            col = lines[line].index("* 0.") + 2
            new = f"0.{k % 9 + 1}"
            sent = time.perf_counter()
            client.text_document_did_change(lsp.DidChangeTextDocumentParams(
                lsp.VersionedTextDocumentIdentifier(uri=uri, version=k + 2),
                [lsp.TextDocumentContentChangePartial(
                    range=lsp.Range(lsp.Position(line, col), lsp.Position(line, col + 3)), text=new)]))
            lines[line] = lines[line][:col] + new + lines[line][col + 3:]
            while True:
                got, params = await asyncio.wait_for(queue.get(), 120)
                if params.version == k + 2:
                    break
            times.append(got - sent)
        await client.shutdown_async(None)
        client.exit(None)
        await client.stop()
    return times, len(lines), findings


def report(edits: int = 40) -> str:
    times, lines, findings = asyncio.run(measure(edits))
    ms = sorted(t * 1000 for t in times)
    p50 = statistics.median(ms)
    p90 = ms[min(len(ms) - 1, int(len(ms) * 0.9))]
    return (f"server re-lint of an edited {lines}-line file ({findings} findings), {edits} edits, debounce 0: "
            f"p50 {p50:.1f} ms, p90 {p90:.1f} ms, min {ms[0]:.1f} ms (goal p50 <= 50 ms)")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--edits", type=int, default=40)
    print(report(ap.parse_args().edits))
