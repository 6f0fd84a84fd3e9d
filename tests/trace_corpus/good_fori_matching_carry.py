"""`fori_loop` with a float accumulator of the right dtype and a tuple carry that keeps its structure."""
import jax
import jax.numpy as jnp


@jax.jit
def stats(xs):
    def body(i, carry):
        s, sq, n = carry
        return s + xs[i], sq + xs[i] ** 2, n + 1

    return jax.lax.fori_loop(0, xs.shape[0], body, (jnp.float32(0), jnp.float32(0), 0))


def main():
    return stats(jnp.arange(6.0))
