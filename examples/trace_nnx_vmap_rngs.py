"""Failure mode C: `nnx.vmap` on `__init__` building an LSTMCell from `rngs` without `nnx.split_rngs`.

    jaxdoctor trace examples/trace_nnx_vmap_rngs.py:main
"""
import jax, jax.numpy as jnp
from flax import nnx
class C(nnx.Module):
    @nnx.vmap
    def __init__(self, rng):
        self.lay = nnx.LSTMCell(3, 1, rngs=rng)
def main():
    C(nnx.Rngs(0))  # JD210
