"""Failure mode E: raw JAX transforms around submodule calls inside a Flax Linen module, and
`nn.cond` branches that don't take the module or don't initialise the same variables.

A small mixture-of-experts layer (as in the Mixtral port of the user report) routes each token
to one of two experts, and a recurrent encoder scans a cell over time.

What happens today: Flax no longer raises its documented `JaxTransformError` ("Jax transforms and
Flax models cannot be mixed"). `init()` succeeds and returns params that are leaked tracers, and
`apply()` later fails with `UnexpectedTracerError` pointing into flax. The `nn.cond` whose
branches call different experts fails at `init()` with `cond branch outputs must have the same
pytree structure`; branches that close over `self` fail with an `AttributeError` from flax.

The fix: use Linen's lifted transforms (`nn.cond`, `nn.scan`, `nn.vmap`, `nn.remat`), write
branches as `def branch(mdl, x)` using `mdl.<submodule>`, and make sure every branch's
submodules exist before the `cond` (call them once under `if self.is_initializing():`).
"""

import flax.linen as nn
import jax
import jax.numpy as jnp


class TwoExperts(nn.Module):
    features: int

    def setup(self):
        self.router = nn.Dense(2)
        self.expert_a = nn.Dense(self.features)
        self.expert_b = nn.Dense(self.features)

    def __call__(self, x):
        use_a = self.router(x).argmax() == 0
        return jax.lax.cond(use_a, lambda x: self.expert_a(x), lambda x: self.expert_b(x), x)


class LiftedButWrong(nn.Module):
    features: int

    def setup(self):
        self.expert_a = nn.Dense(self.features)
        self.expert_b = nn.Dense(self.features)

    def __call__(self, x, use_a):
        y = nn.cond(use_a, lambda x: self.expert_a(x), lambda x: self.expert_b(x), x)
        z = nn.cond(use_a, lambda m, x: m.expert_a(x), lambda m, x: m.expert_b(x), self, x)
        return y + z


class Encoder(nn.Module):
    hidden: int

    @nn.compact
    def __call__(self, xs):
        cell = nn.Dense(self.hidden)

        def step(h, x):
            h = nn.tanh(cell(jnp.concatenate([h, x])))
            return h, h

        _, hs = jax.lax.scan(step, jnp.zeros(self.hidden), xs)
        return hs


def main():
    x = jnp.ones((4,))
    model = TwoExperts(4)
    variables = model.init(jax.random.key(0), x)  # "works": the params are leaked tracers
    print(model.apply(variables, x))  # UnexpectedTracerError


if __name__ == "__main__":
    main()
