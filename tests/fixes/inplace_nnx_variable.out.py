import jax.numpy as jnp
from flax import nnx


class KVCache(nnx.Module):
    def __init__(self, max_len, dim):
        self.k = nnx.Cache(jnp.zeros((max_len, dim)))
        self.n = nnx.Variable(jnp.zeros(max_len))

    def __call__(self, pos, k):
        self.k.value = self.k.value.at[pos].set(k)
        self.n.value = self.n.value.at[pos].add(1)
        self.k[pos] = k  # Variable.__setitem__: untouched
        return self.k.value
