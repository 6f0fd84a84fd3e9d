"""Failure mode A: a loop inside a `cond` branch, under `vmap`, with the model broadcast.

A per-example "refinement" step runs a few iterations of the model only for inputs whose norm
is too large. Written for one example, it is then mapped over the batch with the model shared
(`in_axes=(None, 0, 0)`), as in google/flax#4709.

What happens today: older JAX raised `vmap has mapped output but out_axes is None`. Now it runs,
but the predicate depends on batched data, so `vmap` turns `cond` into "run both branches and
select": the loop runs for every example, and the weights carried through it are copied once
per batch element (measured: 256 MiB of scratch instead of 0.5 MiB for B=64, D=1024). Nothing
fails; the program is just slow and memory-hungry.

The fix: hoist the loop out of the branch and select the result with `jnp.where`, or keep the
predicate unbatched (decide per batch, not per example).
"""

import jax
import jax.numpy as jnp
from flax import nnx


class Refiner(nnx.Module):
    def __init__(self, dim: int, rngs: nnx.Rngs):
        self.linear = nnx.Linear(dim, dim, rngs=rngs)

    def __call__(self, x):
        return jnp.tanh(self.linear(x))


def refine(model: Refiner, x, threshold):
    def run_loop(model, x):
        def body(i, carry):
            x, model = carry
            return model(x), model

        x, _ = nnx.fori_loop(0, 8, body, (x, model))
        return x

    too_large = jnp.linalg.norm(x) > threshold
    return nnx.cond(too_large, run_loop, lambda model, x: x, model, x)


# the model is broadcast, the inputs and thresholds are batched
refine_batch = nnx.jit(nnx.vmap(refine, in_axes=(None, 0, 0)))


def main():
    model = Refiner(256, nnx.Rngs(0))
    xs = jax.random.normal(jax.random.key(1), (64, 256))
    thresholds = jnp.full((64,), 10.0)
    print(refine_batch(model, xs, thresholds).shape)


if __name__ == "__main__":
    main()
