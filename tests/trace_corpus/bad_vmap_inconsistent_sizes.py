"""Classic: vmapping over inputs and labels of different batch sizes (last batch mismatch)."""
import jax
import jax.numpy as jnp


def per_example_loss(w, x, y):
    return (x @ w - y) ** 2


def main():
    xs = jnp.ones((8, 3))
    ys = jnp.ones(7)
    return jax.vmap(per_example_loss, in_axes=(None, 0, 0))(jnp.ones(3), xs, ys)  # EXPECT JD515
