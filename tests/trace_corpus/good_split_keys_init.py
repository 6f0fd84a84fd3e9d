"""Keys split properly for every draw, including a fold_in per step."""
import jax
import jax.numpy as jnp


def init_layer(key, n_in, n_out):
    kw, kb = jax.random.split(key)
    return jax.random.normal(kw, (n_in, n_out)) * 0.1, jax.random.normal(kb, (n_out,)) * 0.1


@jax.jit
def noisy(x, key, step):
    k = jax.random.fold_in(key, step)
    return x + 0.01 * jax.random.normal(k, x.shape)


def main():
    key = jax.random.key(0)
    k1, k2, k3 = jax.random.split(key, 3)
    w1, b1 = init_layer(k1, 3, 4)
    w2, b2 = init_layer(k2, 4, 2)
    x = jnp.ones(3)
    for step in range(3):
        x = noisy(x, k3, step)
    return jnp.tanh(x @ w1 + b1) @ w2 + b2
