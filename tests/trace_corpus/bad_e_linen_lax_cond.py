"""E: raw `jax.lax.cond` choosing between two Linen submodules (Mixtral-style expert routing,
the seed report): `init` returns leaked tracers, `apply` fails with UnexpectedTracerError."""
import jax
import jax.numpy as jnp
import flax.linen as nn


class Router(nn.Module):
    @nn.compact
    def __call__(self, x):
        expert_a = nn.Dense(4, name="expert_a")
        expert_b = nn.Dense(4, name="expert_b")
        use_a = x.mean() > 0
        return jax.lax.cond(use_a, lambda x: expert_a(x), lambda x: expert_b(x), x)  # EXPECT JD201


def main():
    model = Router()
    x = jnp.ones((2, 4))
    params = model.init(jax.random.key(0), x)
    return model.apply(params, x)
