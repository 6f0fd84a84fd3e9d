"""Equinox Dropout under scan with `inference` as a Python bool closed over (static): fine."""
import equinox as eqx
import jax
import jax.numpy as jnp


def main():
    key = jax.random.key(0)
    lin = eqx.nn.Linear(3, 3, key=key)
    drop = eqx.nn.Dropout(p=0.2)
    training = True

    def step(carry, x):
        h, k = carry
        k, sub = jax.random.split(k)
        h = drop(lin(x) + h, inference=not training, key=sub)
        return (h, k), h

    return jax.lax.scan(step, (jnp.zeros(3), key), jnp.ones((4, 3)))[1].shape
