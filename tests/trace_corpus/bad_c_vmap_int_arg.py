"""C: `jax.vmap` mapping axis 0 over a Python int argument (the number of steps), a common
StackOverflow question: "vmap ... rank should be at least 1, but is only 0"."""
import jax
import jax.numpy as jnp


def simulate(x0, n_steps):
    return x0 * n_steps


def main():
    x0 = jnp.ones(4)
    return jax.vmap(simulate)(x0, 10)  # EXPECT JD108
