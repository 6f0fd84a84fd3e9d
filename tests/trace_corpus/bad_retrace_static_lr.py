"""Classic: a learning-rate schedule value passed as a static argument: every step recompiles."""
import functools

import jax
import jax.numpy as jnp


@functools.partial(jax.jit, static_argnames="lr")
def update(w, g, lr):  # EXPECT JD510
    return w - lr * g


def main():
    w = jnp.ones(3)
    for step in range(8):
        lr = 0.1 * 0.9**step
        w = update(w, jnp.full(3, 0.1), lr=lr)
    return w
