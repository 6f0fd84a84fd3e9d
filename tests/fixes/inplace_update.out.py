import jax
import jax.numpy as jnp
import numpy as np


@jax.jit
def step(x, i, v):
    x = x.at[i].set(v)
    x = x.at[i].add(1.0)
    x = x.at[:, 0].subtract(v)  # keeps this comment
    x = x.at[0].multiply(2)
    x = x.at[1].divide(2)
    x = x.at[2].power(2)
    x = x.at[i].set((1, 2))
    counts = {}
    counts["n"] = 1  # a dict: untouched
    host = np.zeros(3)
    host[0] = 1.0  # numpy: untouched
    return x


def build():
    buf = jnp.zeros((4, 4))
    buf = buf.at[0, :].set(1.0)
    return buf
