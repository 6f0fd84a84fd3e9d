"""Classic: `jax.jit` of a fresh lambda inside the training loop (recompiles every iteration)."""
import jax
import jax.numpy as jnp


def loss_fn(w, x):
    return jnp.sum((x @ w) ** 2)


def main():
    w = jnp.ones(3)
    x = jnp.ones((2, 3))
    for _ in range(6):
        g = jax.jit(lambda w: jax.grad(loss_fn)(w, x))(w)  # EXPECT JD510
        w = w - 0.01 * g
    return w
