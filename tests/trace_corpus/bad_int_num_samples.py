"""Classic: `int()` on a traced value to build a shape inside `jit`
("Shapes must be 1D sequences of concrete values of integer type")."""
import jax
import jax.numpy as jnp


@jax.jit
def sample_noise(key, scale):
    n = int(scale * 10)  # EXPECT JD102
    return jax.random.normal(key, (n,))


def main():
    return sample_noise(jax.random.key(0), jnp.float32(0.5))
