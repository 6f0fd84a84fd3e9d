"""Per-example gradients: `jax.vmap(jax.grad(loss), in_axes=(None, 0, 0))` with broadcast params."""
import jax
import jax.numpy as jnp


def loss(params, x, y):
    pred = jnp.tanh(x @ params["w"] + params["b"])
    return (pred - y) ** 2


@jax.jit
def per_example_grads(params, xs, ys):
    return jax.vmap(jax.grad(loss), in_axes=(None, 0, 0))(params, xs, ys)


def main():
    params = {"w": jnp.ones(3) * 0.1, "b": jnp.float32(0.0)}
    xs = jnp.ones((6, 3))
    ys = jnp.linspace(0, 1, 6)
    g = per_example_grads(params, xs, ys)
    return jax.tree_util.tree_map(jnp.shape, g)
