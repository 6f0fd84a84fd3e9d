"""Classic: a jitted method stores an intermediate on `self` (a "last activations" cache for
debugging); using it later raises UnexpectedTracerError."""
import jax
import jax.numpy as jnp


class Model:
    def __init__(self):
        self.w = jnp.ones((3, 3))
        self.last_hidden = None

    def forward(self, x):
        h = jnp.tanh(self.w @ x)
        self.last_hidden = h  # EXPECT JD517
        return h.sum()


def main():
    m = Model()
    grad = jax.jit(jax.grad(m.forward))(jnp.ones(3))
    return grad + m.last_hidden * 2
