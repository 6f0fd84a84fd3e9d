"""B in NNX form (seed report, google/flax fori_loop with two models): the body returns a
carry with a different structure than the `(model, model2, x)` it got."""
import jax.numpy as jnp
from flax import nnx


def main():
    model = nnx.Linear(2, 2, rngs=nnx.Rngs(0))
    model2 = nnx.Linear(2, 2, rngs=nnx.Rngs(1))

    def body(i, carry):
        m1, m2, x = carry
        return m1, m2(m1(x))

    return nnx.fori_loop(0, 3, body, (model, model2, jnp.ones(2)))  # EXPECT JD107
