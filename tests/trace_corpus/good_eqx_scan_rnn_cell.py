"""Equinox GRU cell scanned over a sequence inside `eqx.filter_jit`."""
import equinox as eqx
import jax
import jax.numpy as jnp


class RNN(eqx.Module):
    cell: eqx.nn.GRUCell

    def __call__(self, xs):
        def step(h, x):
            h = self.cell(x, h)
            return h, h

        return jax.lax.scan(step, jnp.zeros(self.cell.hidden_size), xs)[1]


@eqx.filter_jit
def run(model, xs):
    return model(xs)


def main():
    model = RNN(eqx.nn.GRUCell(3, 5, key=jax.random.key(0)))
    return run(model, jnp.ones((7, 3))).shape
