import jax
import jax.numpy as jnp


@jax.jit
def step(x, y):
    print("x", x)
    print(f"loss={jnp.mean(x):.4f} y={y!r}")
    print("braces {}", x)
    print(x, file=None)  # sep/end/file: no fix
    return x + y
