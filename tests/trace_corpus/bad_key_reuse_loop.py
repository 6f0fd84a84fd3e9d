"""Classic: key reuse across a scan: the body draws dropout noise from the same closed-over key
at every step (every step gets the same mask), and the key is used again after the scan.
Either marked line is a right place to report it."""
import jax
import jax.numpy as jnp


@jax.jit
def noisy_rnn(W, xs, key):
    def step(h, x):
        mask = jax.random.bernoulli(key, 0.9, h.shape)  # EXPECT JD503
        h = jnp.tanh(W @ h + x) * mask
        return h, h

    h, _ = jax.lax.scan(step, jnp.zeros(4), xs)
    eps = jax.random.normal(key, h.shape)  # EXPECT JD503
    return h + eps


def main():
    return noisy_rnn(jnp.eye(4), jnp.ones((5, 4)), jax.random.key(0))
