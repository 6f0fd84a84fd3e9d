"""E done right: Linen's lifted `nn.vmap` mapping a Dense over tokens with shared params."""
import jax
import jax.numpy as jnp
import flax.linen as nn


class PerToken(nn.Module):
    @nn.compact
    def __call__(self, tokens):
        VDense = nn.vmap(nn.Dense, variable_axes={"params": None}, split_rngs={"params": False},
                         in_axes=0, out_axes=0)
        return VDense(8)(tokens)


def main():
    model = PerToken()
    x = jnp.ones((5, 3))
    v = model.init(jax.random.key(0), x)
    return model.apply(v, x).shape
