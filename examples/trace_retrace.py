"""JD510: a jitted function retraced on every call because a static argument changes.

    jaxdoctor trace examples/trace_retrace.py:main
"""
import functools

import jax
import jax.numpy as jnp


@functools.partial(jax.jit, static_argnums=1)
def scale(x, factor):  # JD510
    return x * factor


def main():
    x = jnp.ones(3)
    for i in range(6):
        x = scale(x, i + 1)  # JD510
    return x
