"""NNX: a model broadcast with `nnx.vmap(in_axes=(None, 0))` over a batch, no control flow on
batched data (the normal way to apply a model per example)."""
import jax.numpy as jnp
from flax import nnx


class MLP(nnx.Module):
    def __init__(self, rngs):
        self.l1 = nnx.Linear(8, 16, rngs=rngs)
        self.l2 = nnx.Linear(16, 2, rngs=rngs)

    def __call__(self, x):
        return self.l2(nnx.gelu(self.l1(x)))


@nnx.vmap(in_axes=(None, 0))
def per_example(model, x):
    return model(x)


def main():
    model = MLP(nnx.Rngs(0))
    return per_example(model, jnp.ones((5, 8))).shape
