"""Classic: a Python `for` over 64 time steps inside `jit`: the RNN is unrolled into the graph
(slow compile; use `lax.scan`). The loop line and its body line are both right places."""
import jax
import jax.numpy as jnp


@jax.jit
def rnn(W, U, xs):
    h = jnp.zeros(W.shape[0])
    for t in range(xs.shape[0]):  # EXPECT JD505
        h = jnp.tanh(W @ h + U @ xs[t])  # EXPECT JD505
    return h


def main():
    return rnn(jnp.eye(8) * 0.5, jnp.ones((8, 3)), jnp.ones((64, 3)))
