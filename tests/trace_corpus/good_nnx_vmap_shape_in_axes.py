"""Seed C done right: `nnx.vmap(in_axes=(0, None))` over a method taking a shape tuple."""
from flax import nnx


class Stack(nnx.Module):
    def __init__(self, n, rngs):
        self.n = n
        @nnx.split_rngs(splits=n)
        @nnx.vmap
        def make(rngs):
            return nnx.LSTMCell(3, 2, rngs=rngs)

        self.cells = make(rngs)

    def initialize_carry(self, input_shape, rngs):
        @nnx.split_rngs(splits=self.n)
        @nnx.vmap(in_axes=(0, None, 0))
        def init(cells, input_shape, rngs):
            return cells.initialize_carry(input_shape, rngs)

        return init(self.cells, input_shape, rngs)


def main():
    net = Stack(3, nnx.Rngs(0))
    carry = net.initialize_carry((1, 3), nnx.Rngs(1))
    return [c.shape for c in carry]
