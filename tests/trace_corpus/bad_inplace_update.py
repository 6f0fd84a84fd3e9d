"""Classic: NumPy-style in-place assignment on a JAX array inside a jitted function."""
import jax
import jax.numpy as jnp


@jax.jit
def one_hot(idx, n):
    out = jnp.zeros(n.shape)
    out[idx] = 1.0  # EXPECT JD104
    return out


def main():
    return one_hot(jnp.int32(2), jnp.zeros(5))
