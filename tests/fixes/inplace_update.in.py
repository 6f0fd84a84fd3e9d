import jax
import jax.numpy as jnp
import numpy as np


@jax.jit
def step(x, i, v):
    x[i] = v
    x[i] += 1.0
    x[:, 0] -= v  # keeps this comment
    x[0] *= 2
    x[1] /= 2
    x[2] **= 2
    x[i] = 1, 2
    counts = {}
    counts["n"] = 1  # a dict: untouched
    host = np.zeros(3)
    host[0] = 1.0  # numpy: untouched
    return x


def build():
    buf = jnp.zeros((4, 4))
    buf[0, :] = 1.0
    return buf
