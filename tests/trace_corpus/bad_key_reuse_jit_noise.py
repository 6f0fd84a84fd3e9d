"""Classic: a jitted augmentation draws two "independent" noises from one key (no split):
the two noises are identical."""
import jax
import jax.numpy as jnp


@jax.jit
def augment(x, key):
    shift = jax.random.normal(key, x.shape) * 0.1
    scale = 1.0 + jax.random.normal(key, x.shape) * 0.1  # EXPECT JD503
    return x * scale + shift


def main():
    return augment(jnp.ones((4, 3)), jax.random.key(0))
