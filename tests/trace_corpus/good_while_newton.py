"""A `while_loop` Newton iteration with a convergence test, under `jit` (not vmapped)."""
import jax
import jax.numpy as jnp


@jax.jit
def sqrt_newton(a):
    def cond(c):
        x, i = c
        return (jnp.abs(x * x - a) > 1e-5) & (i < 50)

    def body(c):
        x, i = c
        return 0.5 * (x + a / x), i + 1

    return jax.lax.while_loop(cond, body, (a, 0))[0]


def main():
    return sqrt_newton(jnp.float32(2.0))
