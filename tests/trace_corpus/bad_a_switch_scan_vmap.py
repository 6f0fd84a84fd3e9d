"""A with `lax.switch`: a per-example solver choice (batched index) under `vmap`, one branch
runs a `scan` over the shared matrix. Users report the memory blow-up of vmapped conds
(jax-ml/jax discussions on cond-under-vmap converting to select)."""
import jax
import jax.numpy as jnp


def solve(A, x, method):
    def jacobi(v):
        def body(v, _):
            return 0.5 * (v + A @ v), None
        return jax.lax.scan(body, v, None, length=5)[0]

    def identity(v):
        return v

    def scaled(v):
        return 2.0 * v

    return jax.lax.switch(method, [identity, jacobi, scaled], x)  # EXPECT JD501


def main():
    A = jnp.eye(48) * 0.9
    xs = jnp.ones((10, 48))
    methods = jnp.arange(10) % 3
    return jax.vmap(solve, in_axes=(None, 0, 0))(A, xs, methods).sum()
