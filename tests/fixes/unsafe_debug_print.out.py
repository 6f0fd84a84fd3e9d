import jax
import jax.numpy as jnp


@jax.jit
def step(x, y):
    jax.debug.print('x {}', x)
    jax.debug.print('loss={:.4f} y={!r}', jnp.mean(x), y)
    jax.debug.print('braces {{}} {}', x)
    print(x, file=None)  # sep/end/file: no fix
    return x + y
