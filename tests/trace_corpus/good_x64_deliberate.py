"""x64 enabled on purpose for a float64 scientific computation that stays float64 throughout."""
import jax
import jax.numpy as jnp

jax.config.update("jax_enable_x64", True)


@jax.jit
def integrate(y0, dt):
    def step(y, _):
        return y + dt * (-0.5 * y), y

    return jax.lax.scan(step, y0, None, length=20)[0]


def main():
    y = integrate(jnp.ones(3, dtype=jnp.float64), jnp.float64(0.01))
    return y.dtype
