"""Classic: jitting a function and feeding variable-length sequences without padding: one
compilation per length (jax-ml/jax#4390-style "why is my loop slow")."""
import jax
import jax.numpy as jnp


@jax.jit
def encode(tokens):  # EXPECT JD510
    emb = jnp.sin(tokens[:, None] * jnp.arange(8.0))
    return emb.mean(0)


def main():
    sentences = [jnp.arange(n, dtype=jnp.float32) for n in (3, 5, 4, 7, 6, 9, 2)]
    return sum(encode(s) for s in sentences)
