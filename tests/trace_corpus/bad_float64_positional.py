"""Classic: with x64 enabled for one part of the program, NumPy float64 positional encodings
silently upcast a float32 model to float64."""
import jax
import jax.numpy as jnp
import numpy as np

jax.config.update("jax_enable_x64", True)


@jax.jit
def embed(tokens_emb):
    pos = np.arange(tokens_emb.shape[0])[:, None] / 10000 ** (np.arange(8)[None] / 8)
    return tokens_emb + np.sin(pos)  # EXPECT JD508


def main():
    x = jnp.ones((6, 8), dtype=jnp.float32)
    return embed(x).dtype
