"""D: the `inference` flag of Equinox Dropout carried through `jax.lax.scan` over epochs as part
of the carry (traced), instead of `eqx.nn.inference_mode`."""
import equinox as eqx
import jax
import jax.numpy as jnp


def main():
    key = jax.random.key(0)
    lin = eqx.nn.Linear(3, 3, key=key)
    drop = eqx.nn.Dropout(p=0.2)

    def step(carry, x):
        h, flag, k = carry
        k, sub = jax.random.split(k)
        h = drop(lin(x) + h, inference=flag, key=sub)  # EXPECT JD301
        return (h, flag, k), h

    return jax.lax.scan(step, (jnp.zeros(3), True, key), jnp.ones((4, 3)))
