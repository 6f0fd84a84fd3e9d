"""E: raw `jax.lax.fori_loop` applying a Linen submodule repeatedly (weight-tied refinement)."""
import jax
import jax.numpy as jnp
import flax.linen as nn


class Refine(nn.Module):
    steps: int = 3

    @nn.compact
    def __call__(self, x):
        block = nn.Dense(x.shape[-1])
        return jax.lax.fori_loop(0, self.steps, lambda i, h: nn.tanh(block(h)), x)  # EXPECT JD201


def main():
    model = Refine()
    x = jnp.ones((2, 6))
    params = model.init(jax.random.key(0), x)
    return model.apply(params, x)
