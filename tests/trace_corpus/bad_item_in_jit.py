"""Classic: `.item()` / `float()` on a traced loss inside a jitted step, to log it."""
import jax
import jax.numpy as jnp

history = []


@jax.jit
def train_step(w, x, y):
    loss, g = jax.value_and_grad(lambda w: jnp.mean((x @ w - y) ** 2))(w)
    history.append(loss.item())  # EXPECT JD102
    return w - 0.1 * g


def main():
    x = jnp.ones((8, 2))
    return train_step(jnp.zeros(2), x, jnp.ones(8))
