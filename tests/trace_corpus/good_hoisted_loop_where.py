"""Seed A done right: the loop is hoisted out of the branch and the result selected with
`jnp.where`, so the broadcast weights stay unbatched under `vmap`."""
import jax
import jax.numpy as jnp


def refine_step(W, b, x):
    refined = jax.lax.fori_loop(0, 3, lambda i, h: jnp.tanh(W @ h + b), x)
    return jnp.where(jnp.linalg.norm(x) > 1.0, refined, x)


def main():
    W = jnp.eye(64) * 0.3
    xs = jnp.linspace(-1, 1, 8 * 64).reshape(8, 64)
    return jax.vmap(refine_step, in_axes=(None, None, 0))(W, jnp.zeros(64), xs).sum()
