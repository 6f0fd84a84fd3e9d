"""A training flag passed as a static argument with only two values: two compilations."""
import functools

import jax
import jax.numpy as jnp


@functools.partial(jax.jit, static_argnames="training")
def forward(x, key, training):
    if training:
        mask = jax.random.bernoulli(key, 0.9, x.shape)
        return x * mask / 0.9
    return x


def main():
    key = jax.random.key(0)
    x = jnp.ones(5)
    for i in range(3):
        key, sub = jax.random.split(key)
        x = forward(x, sub, training=True)
    return forward(x, key, training=False)
