"""Classic: `value or default` on a traced array inside `jit` (the idiom named in the review of
jax-ml/jax#16430)."""
import jax
import jax.numpy as jnp


@jax.jit
def sgd_step(params, grads, lr):
    lr = lr or 1e-3  # EXPECT JD101
    return jax.tree_util.tree_map(lambda p, g: p - lr * g, params, grads)


def main():
    params = {"w": jnp.ones(3)}
    grads = {"w": jnp.full(3, 0.1)}
    return sgd_step(params, grads, jnp.float32(0.01))
