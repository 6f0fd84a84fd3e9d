"""NNX: a module method mutating state under raw `jax.jit` (instead of `nnx.jit`): a BatchStat
update inside the trace escapes ("Cannot mutate ... from a different trace level").
The raw transform and the mutation it breaks are both right places to report it."""
import jax
import jax.numpy as jnp
from flax import nnx


class Counter(nnx.Module):
    def __init__(self):
        self.count = nnx.BatchStat(jnp.array(0))

    def __call__(self, x):
        self.count.value += 1  # EXPECT JD211
        return x * 2


def main():
    model = Counter()
    step = jax.jit(lambda x: model(x))  # EXPECT JD211
    return step(jnp.ones(3))
