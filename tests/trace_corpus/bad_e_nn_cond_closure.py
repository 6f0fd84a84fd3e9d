"""E: `nn.cond` whose branches close over submodules created outside them instead of using the
module they are given (the first version of good_linen_nn_cond.py, written by the corpus author,
who made exactly this mistake): UnexpectedTracerError at `init`."""
import jax
import jax.numpy as jnp
import flax.linen as nn


class Gated(nn.Module):
    @nn.compact
    def __call__(self, x, flag):
        a = nn.Dense(4, name="a")
        b = nn.Dense(4, name="b")

        def true_fn(mdl, x):
            return a(x) + 0 * b(x)  # EXPECT JD202

        def false_fn(mdl, x):
            return b(x) + 0 * a(x)

        return nn.cond(flag, true_fn, false_fn, self, x)


def main():
    model = Gated()
    x = jnp.ones((2, 3))
    params = model.init(jax.random.key(0), x, jnp.array(True))
    return model.apply(params, x, jnp.array(False)).shape
