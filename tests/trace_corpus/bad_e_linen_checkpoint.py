"""E: raw `jax.checkpoint` (remat) around a submodule call inside a Linen module, instead of
`nn.remat` (flax issues about "Jax transforms and Flax models cannot be mixed")."""
import jax
import jax.numpy as jnp
import flax.linen as nn


class Block(nn.Module):
    @nn.compact
    def __call__(self, x):
        dense = nn.Dense(x.shape[-1])
        return jax.checkpoint(lambda h: nn.gelu(dense(h)))(x)  # EXPECT JD201


def main():
    model = Block()
    x = jnp.ones((2, 4))
    params = model.init(jax.random.key(0), x)
    return model.apply(params, x)
