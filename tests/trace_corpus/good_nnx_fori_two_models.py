"""Seed B as it works today (flax >= 0.10.3): `nnx.fori_loop` over a carry of two different
modules and a state array, with the body returning the same structure."""
import jax.numpy as jnp
from flax import nnx


def main():
    model = nnx.Linear(2, 2, rngs=nnx.Rngs(0))
    model2 = nnx.Linear(2, 2, rngs=nnx.Rngs(1))

    def body(i, carry):
        m1, m2, x = carry
        return m1, m2, m2(m1(x))

    _, _, x = nnx.fori_loop(0, 3, body, (model, model2, jnp.ones(2)))
    return x
