"""Seed D done right: `eqx.nn.inference_mode` sets the Dropout flag statically before the scan."""
import equinox as eqx
import jax
import jax.numpy as jnp


class Net(eqx.Module):
    lin: eqx.nn.Linear
    drop: eqx.nn.Dropout

    def __init__(self, key):
        self.lin = eqx.nn.Linear(4, 4, key=key)
        self.drop = eqx.nn.Dropout(0.2)

    def __call__(self, x, key=None):
        return self.drop(jax.nn.relu(self.lin(x)), key=key)


@eqx.filter_jit
def evaluate(net, xs):
    def step(c, x):
        return c, net(x)

    return jax.lax.scan(step, 0.0, xs)[1]


def main():
    net = Net(jax.random.key(0))
    net = eqx.nn.inference_mode(net)
    return evaluate(net, jnp.ones((5, 4))).shape
