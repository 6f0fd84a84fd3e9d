"""`jax.debug.print` inside a jitted function (the right way to print traced values)."""
import jax
import jax.numpy as jnp


@jax.jit
def step(x):
    y = jnp.tanh(x) * 2
    jax.debug.print("mean activation {m:.3f}", m=y.mean())
    return y


def main():
    return step(jnp.ones(4)).sum()
