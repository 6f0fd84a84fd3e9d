"""B: mixed precision: the scan carry starts in bfloat16 but the body mixes it with float32
weights, so the carry comes back float32 ("scan carry output and input must have identical
types")."""
import jax
import jax.numpy as jnp


@jax.jit
def run(W, xs):
    def step(h, x):
        h = jnp.tanh(W @ h + x)
        return h, h

    h0 = jnp.zeros(8, jnp.bfloat16)
    return jax.lax.scan(step, h0, xs)  # EXPECT JD107


def main():
    return run(jnp.eye(8), jnp.ones((4, 8)))
