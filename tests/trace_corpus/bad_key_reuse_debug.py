"""Classic: the same key used for two draws, run with `jax_debug_key_reuse` on (KeyReuseError)."""
import jax
import jax.numpy as jnp

jax.config.update("jax_debug_key_reuse", True)


def init_layer(key, n_in, n_out):
    w = jax.random.normal(key, (n_in, n_out)) * 0.1
    b = jax.random.normal(key, (n_out,)) * 0.1  # EXPECT JD110
    return w, b


def main():
    w, b = init_layer(jax.random.key(0), 3, 2)
    return (jnp.ones(3) @ w + b).sum()
