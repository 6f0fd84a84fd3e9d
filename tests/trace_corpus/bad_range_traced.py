"""Classic: `range()` over a traced integer inside `jit` ("ConcretizationTypeError ... The
problem arose with the `int` function")."""
import jax
import jax.numpy as jnp


@jax.jit
def poly(x, degree):
    out = jnp.zeros_like(x)
    for k in range(degree):  # EXPECT JD102
        out = out + x**k
    return out


def main():
    return poly(jnp.linspace(0, 1, 4), 3)
