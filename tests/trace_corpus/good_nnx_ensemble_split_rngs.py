"""Seed C done right: the ensemble is created with `nnx.split_rngs` + `nnx.vmap`, and applied
with the members mapped (`in_axes=(0, None)`)."""
import jax.numpy as jnp
from flax import nnx


class MLP(nnx.Module):
    def __init__(self, rngs):
        self.l1 = nnx.Linear(4, 8, rngs=rngs)
        self.l2 = nnx.Linear(8, 1, rngs=rngs)

    def __call__(self, x):
        return self.l2(nnx.relu(self.l1(x)))


@nnx.split_rngs(splits=4)
@nnx.vmap(in_axes=0, out_axes=0)
def create_ensemble(rngs):
    return MLP(rngs)


def main():
    ensemble = create_ensemble(nnx.Rngs(0))
    out = nnx.vmap(lambda m, x: m(x), in_axes=(0, None))(ensemble, jnp.ones((3, 4)))
    return out.std(0).mean()
