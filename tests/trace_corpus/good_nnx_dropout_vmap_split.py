"""NNX stochastic model applied per example with independent dropout streams: `nnx.split_rngs`
with `nnx.StateAxes` (the answer in google/flax#4195)."""
import jax.numpy as jnp
from flax import nnx


class Net(nnx.Module):
    def __init__(self, rngs):
        self.lin = nnx.Linear(4, 4, rngs=rngs)
        self.drop = nnx.Dropout(0.5, rngs=rngs)

    def __call__(self, x):
        return self.drop(self.lin(x))


def main():
    model = Net(nnx.Rngs(0, dropout=1))
    state_axes = nnx.StateAxes({nnx.RngState: 0, ...: None})

    @nnx.split_rngs(splits=6)
    @nnx.vmap(in_axes=(state_axes, 0))
    def per_example(model, x):
        return model(x)

    return per_example(model, jnp.ones((6, 4))).shape
