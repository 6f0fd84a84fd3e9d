"""E done right: `nn.cond` whose branches take the module and create the same submodule
(`name="dense"`) through it, so both are initialised (the pattern of Flax's `nn.cond` docs)."""
import jax
import jax.numpy as jnp
import flax.linen as nn


class Gated(nn.Module):
    @nn.compact
    def __call__(self, x, flag):
        def true_fn(mdl, x):
            return nn.Dense(4, name="dense")(x)

        def false_fn(mdl, x):
            return -nn.Dense(4, name="dense")(x)

        return nn.cond(flag, true_fn, false_fn, self, x)


def main():
    model = Gated()
    x = jnp.ones((2, 3))
    params = model.init(jax.random.key(0), x, jnp.array(True))
    return model.apply(params, x, jnp.array(False)).shape
