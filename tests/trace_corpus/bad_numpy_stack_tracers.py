"""Classic: `np.array` on a list of traced values inside `jit` (TracerArrayConversionError)."""
import jax
import jax.numpy as jnp
import numpy as np


@jax.jit
def features(x):
    stats = [x.mean(), x.std(), x.max()]
    return np.array(stats)  # EXPECT JD102


def main():
    return features(jnp.arange(6.0))
