"""C in plain JAX: an ensemble of parameter sets initialised with `jax.vmap(init, in_axes=None,
axis_size=N)` from one key: every member is identical (a common mistake in ensemble RL code)."""
import jax
import jax.numpy as jnp


def init_params(key):
    k1, k2 = jax.random.split(key)
    return {"w": jax.random.normal(k1, (8, 8)) * 0.1, "b": jax.random.normal(k2, (8,)) * 0.1}


def main():
    key = jax.random.key(0)
    members = jax.vmap(init_params, in_axes=None, axis_size=5)(key)  # EXPECT JD501
    x = jnp.ones(8)
    preds = jax.vmap(lambda p: jnp.tanh(p["w"] @ x + p["b"]))(members)
    return preds.std(0).mean()
