"""A per-example stopping test under `vmap` with the shared matrix in the `while_loop` carry
(power iteration). Written as a bad program of mode A, but JAX 0.10 forwards a carry the body
returns unchanged as a loop constant (the fix described in the seed report), so `M` is not
copied per example: nothing to report."""
import jax
import jax.numpy as jnp


def power_iteration(M, v0, tol):
    def cond(c):
        _, v, i, err = c
        return (err > tol) & (i < 20)

    def body(c):
        M, v, i, _ = c
        w = M @ v
        w = w / jnp.linalg.norm(w)
        return M, w, i + 1, jnp.abs(w - v).max()

    _, v, _, _ = jax.lax.while_loop(cond, body, (M, v0, 0, jnp.inf))
    return v


def main():
    M = jnp.diag(jnp.arange(1.0, 33.0))
    v0 = jnp.ones((6, 32))
    tols = jnp.array([1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6])
    return jax.vmap(power_iteration, in_axes=(None, 0, 0))(M, v0, tols).shape
