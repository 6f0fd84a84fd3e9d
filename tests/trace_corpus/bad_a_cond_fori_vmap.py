"""A: a refinement `fori_loop` inside a `cond` branch, vmapped with the weights broadcast.
Modelled on google/flax#4709 (plain-JAX form): the predicate depends on each example."""
import jax
import jax.numpy as jnp


def refine_step(W, b, x):
    def refine(h):
        return jax.lax.fori_loop(0, 3, lambda i, h: jnp.tanh(W @ h + b), h)

    needs_refine = jnp.linalg.norm(x) > 1.0
    return jax.lax.cond(needs_refine, refine, lambda h: h, x)  # EXPECT JD501


def main():
    W = jnp.eye(64) * 0.3
    b = jnp.zeros(64)
    xs = jnp.linspace(-1, 1, 8 * 64).reshape(8, 64)
    out = jax.vmap(refine_step, in_axes=(None, None, 0))(W, b, xs)
    return out.sum()
