"""Plain-JAX ensemble done right: one key per member (`jax.random.split(key, N)`), vmapped init."""
import jax
import jax.numpy as jnp


def init_params(key):
    k1, k2 = jax.random.split(key)
    return {"w": jax.random.normal(k1, (8, 8)) * 0.1, "b": jax.random.normal(k2, (8,)) * 0.1}


def main():
    keys = jax.random.split(jax.random.key(0), 5)
    members = jax.vmap(init_params)(keys)
    preds = jax.vmap(lambda p: jnp.tanh(p["w"] @ jnp.ones(8) + p["b"]))(members)
    return preds.std(0).mean()
