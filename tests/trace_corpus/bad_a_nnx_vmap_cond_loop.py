"""A in NNX form (google/flax#4709): `nnx.fori_loop` inside a `cond` branch of a module method,
the model broadcast with `nnx.vmap(..., in_axes=(None, 0))`, the predicate batched."""
import jax
import jax.numpy as jnp
from flax import nnx


class Refiner(nnx.Module):
    def __init__(self, rngs):
        self.linear = nnx.Linear(32, 32, rngs=rngs)

    def __call__(self, x):
        def loop(x):
            return jax.lax.fori_loop(0, 4, lambda i, h: self.linear(h), x)

        return jax.lax.cond(x.sum() > 0, loop, lambda x: x, x)  # EXPECT JD501


@nnx.vmap(in_axes=(None, 0))
def forward(model, x):
    return model(x)


def main():
    model = Refiner(nnx.Rngs(0))
    xs = jnp.linspace(-1, 1, 6 * 32).reshape(6, 32)
    return forward(model, xs).shape
