"""Classic: a flag declared static by name but passed positionally to a jitted function
(google/flax#4146 for nnx.jit; the same mistake with a plain jax.jit and static_argnums off by one)."""
import functools

import jax
import jax.numpy as jnp


@functools.partial(jax.jit, static_argnums=(2,))
def forward(x, training, scale):
    if training:  # EXPECT JD101
        return x * scale
    return x


def main():
    return forward(jnp.ones(3), True, 2.0)
