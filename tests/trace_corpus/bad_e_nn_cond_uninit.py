"""E: `nn.cond` whose branches each create a different submodule, so at `init` the two branches
define different variables ("cond branch outputs must have the same pytree structure")."""
import jax
import jax.numpy as jnp
import flax.linen as nn


class Gated(nn.Module):
    @nn.compact
    def __call__(self, x, use_big):
        def small(mdl, x):
            return nn.Dense(2, name="small")(x)

        def big(mdl, x):
            return nn.Dense(2, name="big")(nn.relu(nn.Dense(16, name="hidden")(x)))

        return nn.cond(use_big, big, small, self, x)  # EXPECT JD202


def main():
    model = Gated()
    x = jnp.ones((1, 3))
    params = model.init(jax.random.key(0), x, jnp.array(True))
    return model.apply(params, x, jnp.array(False))
