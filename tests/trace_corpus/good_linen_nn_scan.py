"""E done right: Linen's lifted `nn.scan` over an LSTM cell (params broadcast, carry scanned)."""
import jax
import jax.numpy as jnp
import flax.linen as nn


class RNN(nn.Module):
    @nn.compact
    def __call__(self, xs):
        cell = nn.scan(nn.OptimizedLSTMCell, variable_broadcast="params", split_rngs={"params": False},
                       in_axes=1, out_axes=1)(features=8)
        carry = cell.initialize_carry(jax.random.key(0), xs[:, 0].shape)
        return cell(carry, xs)[1]


def main():
    model = RNN()
    xs = jnp.ones((2, 5, 3))
    params = model.init(jax.random.key(1), xs)
    return model.apply(params, xs).shape
