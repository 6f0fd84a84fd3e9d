"""A loop inside a `cond` branch under `jit` without `vmap`: only one branch runs, no copies."""
import jax
import jax.numpy as jnp


@jax.jit
def maybe_refine(W, x, refine):
    def loop(h):
        return jax.lax.fori_loop(0, 3, lambda i, h: jnp.tanh(W @ h), h)

    return jax.lax.cond(refine, loop, lambda h: h, x)


def main():
    W = jnp.eye(32) * 0.5
    return maybe_refine(W, jnp.ones(32), jnp.array(True)).sum()
