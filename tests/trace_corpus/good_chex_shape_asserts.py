"""chex shape/rank assertions inside `jit` (static checks, fine on tracers)."""
import chex
import jax
import jax.numpy as jnp


@jax.jit
def attention(q, k, v):
    chex.assert_rank([q, k, v], 2)
    chex.assert_equal_shape([q, k])
    w = jax.nn.softmax(q @ k.T / jnp.sqrt(q.shape[-1]))
    return w @ v


def main():
    x = jnp.ones((4, 8))
    return attention(x, x, x).shape
