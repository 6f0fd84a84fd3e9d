"""B: an LSTM-style scan whose carry is `(h, c)` but whose body returns only `h` as the new carry."""
import jax
import jax.numpy as jnp


def lstm_scan(W, xs):
    def step(carry, x):
        h, c = carry
        z = jnp.tanh(W @ jnp.concatenate([h, x]))
        c = 0.9 * c + 0.1 * z
        h = jnp.tanh(c)
        return h, h

    h0 = jnp.zeros(4)
    return jax.lax.scan(step, (h0, h0), xs)  # EXPECT JD107


def main():
    W = jnp.ones((4, 7)) * 0.1
    xs = jnp.ones((5, 3))
    return lstm_scan(W, xs)
