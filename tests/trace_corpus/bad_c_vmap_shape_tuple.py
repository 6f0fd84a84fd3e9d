"""C: `nnx.vmap` over a method that takes a shape tuple, without `in_axes=(0, None)`
(seed report: initialize_carry on a stack of LSTM cells)."""
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
        @nnx.vmap
        def init(cells, input_shape, rngs):
            return cells.initialize_carry(input_shape, rngs)

        return init(self.cells, input_shape, rngs)  # EXPECT JD108


def main():
    net = Stack(3, nnx.Rngs(0))
    return net.initialize_carry((1, 3), nnx.Rngs(1))
