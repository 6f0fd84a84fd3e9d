"""Seed A: a `fori_loop` inside a `cond` branch, under `vmap` with the weights broadcast.

    jaxdoctor trace examples/trace_cond_loop.py:step \
        --inputs "f32[1024,1024], f32[1024], bool[]" --vmap "None,0,0" --batch 64

The predicate `flag` is batched, so `vmap` turns the `cond` into "run both branches and select":
the loop inside the branch then carries a copy of `W` per batch element (64 x 4 MiB = 256 MiB).
"""

import jax
import jax.numpy as jnp


def step(W, x, flag):
    def refine(x):
        return jax.lax.fori_loop(0, 4, lambda i, h: jnp.tanh(W @ h), x)

    return jax.lax.cond(flag, refine, lambda x: x, x)  # JD501


def main():
    W = jnp.eye(256) * 0.5
    xs = jnp.ones((8, 256))
    flags = jnp.arange(8) % 2 == 0
    return jax.vmap(step, in_axes=(None, 0, 0))(W, xs, flags)


if __name__ == "__main__":
    print(main().shape)
