"""C: an NNX ensemble built with `nnx.vmap(in_axes=None, axis_size=4)` and no `nnx.split_rngs`:
all four members get the same initial weights (google/flax#4195 and the NNX ensembling guide)."""
import jax.numpy as jnp
from flax import nnx


class MLP(nnx.Module):
    def __init__(self, rngs):
        self.l1 = nnx.Linear(8, 16, rngs=rngs)
        self.l2 = nnx.Linear(16, 1, rngs=rngs)

    def __call__(self, x):
        return self.l2(nnx.relu(self.l1(x)))


@nnx.vmap(in_axes=None, axis_size=4)  # EXPECT JD501
def create_ensemble(rngs):
    return MLP(rngs)


def main():
    ensemble = create_ensemble(nnx.Rngs(0))
    x = jnp.ones((3, 8))
    out = nnx.vmap(lambda m, x: m(x), in_axes=(0, None))(ensemble, x)
    return out.shape
