"""Failure mode D: Equinox `Dropout` (a Python `if inference:`) under `scan` in `eqx.filter_jit`
with a traced flag; jaxdoctor names the real argument (`inference`), not `dynamic_nodonate[...]`.

    jaxdoctor trace examples/trace_eqx_dropout_scan.py:main
"""
import jax, jax.numpy as jnp, equinox as eqx
class M(eqx.Module):
    drop: eqx.nn.Dropout
    lin: eqx.nn.Linear
    def __call__(self, x, inference, key):
        return self.drop(self.lin(x), inference=inference, key=key)  # JD301
@eqx.filter_jit
def run(m, xs, inference, key):
    def body(c, x):
        return c, m(x, inference, key)
    return jax.lax.scan(body, 0, xs)
def main():
    m = M(eqx.nn.Dropout(0.5), eqx.nn.Linear(3, 3, key=jax.random.key(0)))
    run(m, jnp.ones((4, 3)), jnp.array(True), jax.random.key(1))
