"""C: `@nnx.vmap` on `__init__` that builds `nnx.LSTMCell` from `rngs`, without
`nnx.split_rngs` (the seed report): "vmap was requested to map its argument along axis 0,
which implies that its rank should be at least 1, but is only 0"."""
from flax import nnx


class Parallel(nnx.Module):
    @nnx.vmap
    def __init__(self, rngs):
        self.cell = nnx.LSTMCell(3, 2, rngs=rngs)


def main():
    net = Parallel(nnx.Rngs(0))  # EXPECT JD210
    return net
