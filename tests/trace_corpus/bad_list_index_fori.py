"""Classic: indexing a Python list of layer weights with the traced loop index of `fori_loop`
(TracerIntegerConversionError: "__index__ ... on traced array")."""
import jax
import jax.numpy as jnp


def mlp(layers, x):
    def body(i, h):
        W = layers[i]  # EXPECT JD102
        return jnp.tanh(W @ h)

    return jax.lax.fori_loop(0, len(layers), body, x)


def main():
    layers = [jnp.eye(4) * 0.5 for _ in range(3)]
    return jax.jit(mlp)(layers, jnp.ones(4))
