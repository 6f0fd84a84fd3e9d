"""NNX stacked layers: created with `nnx.split_rngs` + `nnx.vmap`, applied with `nnx.scan`."""
import jax.numpy as jnp
from flax import nnx


class Block(nnx.Module):
    def __init__(self, rngs):
        self.lin = nnx.Linear(8, 8, rngs=rngs)

    def __call__(self, x):
        return nnx.relu(self.lin(x))


@nnx.split_rngs(splits=3)
@nnx.vmap(in_axes=(0,), out_axes=0)
def make_blocks(rngs):
    return Block(rngs)


def main():
    blocks = make_blocks(nnx.Rngs(0))

    @nnx.scan(in_axes=(nnx.Carry, 0), out_axes=nnx.Carry)
    def forward(x, block):
        return block(x)

    return forward(jnp.ones((2, 8)), blocks).shape
