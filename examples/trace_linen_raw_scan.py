"""Failure mode E: a raw `jax.lax.scan` around a submodule call in a Linen module: `init`
silently returns leaked tracers as params.

    jaxdoctor trace examples/trace_linen_raw_scan.py:main
"""
import jax, jax.numpy as jnp
import flax.linen as nn
class M(nn.Module):
    @nn.compact
    def __call__(self, x):
        d = nn.Dense(3)
        def body(c, _):
            return d(c), None
        y, _ = jax.lax.scan(body, x, None, length=3)  # JD504
        return y
def main():
    m = M()
    p = m.init(jax.random.key(0), jnp.ones((2, 3)))
    print(jax.tree.map(type, p))
    m.apply(p, jnp.ones((2, 3)))
