"""Failure mode C: `nnx.vmap` over module construction without `nnx.split_rngs`.

Three mistakes from the same user report:
1. `nnx.vmap` on `__init__` building `nnx.LSTMCell`s from `rngs` without `nnx.split_rngs`;
2. an ensemble factory vmapped with `in_axes=None, axis_size=5` and no `split_rngs`;
3. `nnx.vmap` over a method that takes a shape tuple, with the default `in_axes=0`.

What happens today: (1) and (3) raise `ValueError: vmap was requested to map its argument along
axis 0, which implies that its rank should be at least 1, but is only 0` from inside flax.
(2) is silent and worse: every ensemble member is initialised from the same key, so the
"ensemble" is 5 identical copies of one network.

The fix: decorate with `@nnx.split_rngs(splits=N)` under `nnx.vmap` (or pass split `rngs` with
`in_axes=0`), and give non-array arguments `in_axes=None`, e.g. `in_axes=(0, None)`.
"""

import jax.numpy as jnp
from flax import nnx


class StackedCells(nnx.Module):
    @nnx.vmap
    def __init__(self, rngs: nnx.Rngs):
        self.cell = nnx.LSTMCell(8, 16, rngs=rngs)

    @nnx.vmap
    def initialize_carry(self, input_shape):
        return self.cell.initialize_carry(input_shape)


class Member(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
        self.linear = nnx.Linear(4, 1, rngs=rngs)

    def __call__(self, x):
        return self.linear(x)


@nnx.vmap(in_axes=None, out_axes=0, axis_size=5)
def create_ensemble(rngs: nnx.Rngs):
    return Member(rngs)


def ensemble_predict(ensemble: Member, x):
    return nnx.vmap(lambda m, x: m(x), in_axes=(0, None))(ensemble, x).mean(axis=0)


def main():
    ensemble = create_ensemble(nnx.Rngs(0))
    print(ensemble_predict(ensemble, jnp.ones((3, 4))))


if __name__ == "__main__":
    main()
