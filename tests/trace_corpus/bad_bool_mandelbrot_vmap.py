"""Classic: Python `if` on a traced value inside a vmapped function (jax-ml/jax#24740,
a Mandelbrot escape-time loop)."""
import jax
import jax.numpy as jnp


def escape_time(c, max_iter):
    z = jnp.zeros_like(c)
    for i in range(max_iter):
        z = z * z + c
        if jnp.abs(z) > 2.0:  # EXPECT JD101
            return i
    return max_iter


def main():
    cs = jnp.array([-0.75 + 0.1j, 0.3 + 0.5j, -1.0 + 0.0j])
    return jax.vmap(escape_time, in_axes=(0, None))(cs, 10)
