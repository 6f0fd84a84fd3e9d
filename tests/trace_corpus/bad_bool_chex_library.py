"""Classic: a library check that needs a concrete value, called on a tracer inside `jit`
(a chex scalar assertion on the learning rate inside a jitted update)."""
import chex
import jax
import jax.numpy as jnp


@jax.jit
def update(w, g, lr):
    chex.assert_scalar_positive(lr)  # EXPECT JD101
    return w - lr * g


def main():
    return update(jnp.ones(3), jnp.ones(3), 0.1)
