"""A weak-typed Python int as the initial `fori_loop` accumulator while the body adds floats:
JAX promotes the weak type (this used to fail, jax-ml/jax#833); nothing to report."""
import jax
import jax.numpy as jnp


@jax.jit
def weighted_sum(xs, ws):
    def body(i, acc):
        return acc + xs[i] * ws[i]

    return jax.lax.fori_loop(0, xs.shape[0], body, 0)


def main():
    return weighted_sum(jnp.arange(5.0), jnp.full(5, 0.5))
